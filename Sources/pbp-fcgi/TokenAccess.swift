import Identity
import PBPAPI

/// The API's access decision from Identity's: a verified token's role, the
/// anonymous role, or the refusal with its status, code and challenge.
extension Authenticator {
  @Sendable func access(authorizationHeader: String?) -> AccessDecision {
    let decision = decide(authorizationHeader: authorizationHeader, at: .now())
    switch decision {
    case .actAs(let role, let subject, let claims):
      return .actAs(RequestIdentity(role: role, subject: subject, claims: claims))
    case .unauthorized:
      return .refused(Self.refusal(decision, "this API needs a token: send Authorization: Bearer <token>"))
    case .invalidToken(let reason):
      return .refused(Self.refusal(decision, "the token is not valid: \(reason)"))
    case .forbidden(let reason):
      return .refused(Self.refusal(decision, reason))
    }
  }

  private static func refusal(_ decision: RoleDecision, _ message: String) -> APIError {
    var error = APIError(status: decision.status ?? 401, code: decision.errorCode ?? "unauthorized", message: message)
    if let challenge = decision.wwwAuthenticate {
      error.extraHeaders = [HeaderField(name: "WWW-Authenticate", value: challenge)]
    }
    return error
  }
}
