import Identity
import LongPoll

/// Who a request acts for: decided afresh for every request, long-polls
/// included, so that a token that expired or no longer verifies stops
/// receiving within one poll.
extension APIApplication {
  func identity(of request: APIRequest) throws(APIError) -> RequestIdentity {
    let decision = authenticator.decide(authorizationHeader: request.headers["authorization"], at: .now())
    switch decision {
    case .actAs(let role, let subject, let claims):
      return RequestIdentity(role: role, subject: subject, claims: claims)
    case .unauthorized:
      throw Self.refusal(decision, "this API needs a token: send Authorization: Bearer <token>")
    case .invalidToken(let reason):
      throw Self.refusal(decision, "the token is not valid: \(reason)")
    case .forbidden(let reason):
      throw Self.refusal(decision, reason)
    }
  }

  private static func refusal(_ decision: RoleDecision, _ message: String) -> APIError {
    var error = APIError(status: decision.status ?? 401, code: decision.errorCode ?? "unauthorized", message: message)
    if let challenge = decision.wwwAuthenticate {
      error.extraHeaders = [HeaderField(name: "WWW-Authenticate", value: challenge)]
    }
    return error
  }

  /// A poll may subscribe only to tables its role may read. Until the
  /// worker judges events by a table's row rule, a table with one is not
  /// served to polls at all: its events would reach whoever asked.
  func checkSubscriptions(_ poll: ChangePoll, identity: RequestIdentity, session: DatabaseSession) throws(APIError) {
    for subscription in poll.subscriptions {
      let table = try tableInfo(subscription.table, session)
      guard table.mayBeRead(by: identity.role) else {
        throw APIError(
          status: 403, code: "forbidden", message: "role \(identity.role) may not read \(table.name), nor its events")
      }
      if table.rowRule != nil {
        throw APIError(
          status: 403, code: "forbidden", message: "the events of \(table.name), which has a row rule, are not served")
      }
    }
  }
}
