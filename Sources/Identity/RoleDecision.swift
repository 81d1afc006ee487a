/// Which roles requests may act as, before PostgreSQL (the final authority:
/// it refuses `SET ROLE` to a role the authenticator was not granted) has its say.
public struct RoleRules: Equatable, Sendable {
  /// The role of a request without a token; nil: such requests get `401 unauthorized`.
  public var anonymousRole: String?
  /// The role of a token that names none (no `role` claim); nil: such tokens get `403 forbidden`.
  public var defaultTokenRole: String?
  /// When set, the only roles a token may act as (its own `role` or `defaultTokenRole`).
  public var allowedTokenRoles: Set<String>?

  public init(anonymousRole: String? = nil, defaultTokenRole: String? = nil, allowedTokenRoles: Set<String>? = nil) {
    self.anonymousRole = anonymousRole
    self.defaultTokenRole = defaultTokenRole
    self.allowedTokenRoles = allowedTokenRoles
  }
}

/// What one request may do, decided from its `Authorization` header alone.
public enum RoleDecision: Equatable, Sendable {
  /// Run as `role`, with `claims` (a JSON object) as `request.jwt.claims`.
  /// Anonymous requests get `{}`, so the setting always parses as JSON.
  case actAs(role: String, subject: String?, claims: String)
  /// `401 unauthorized`: no token, and no anonymous role to fall back on.
  case unauthorized
  /// `401 invalid_token`: a token was sent and it does not hold. Never a fallback to anonymous.
  case invalidToken(reason: String)
  /// `403 forbidden`: the token holds but may not act as the role it asks for.
  case forbidden(reason: String)

  public static let anonymousClaims = "{}"

  /// The decision for a request whose header is `credential`: parsed, verified
  /// at `now`, then held against `rules`. Pure, apart from the work of verifying.
  public static func decide(
    _ credential: BearerCredential, verifier: TokenVerifier, rules: RoleRules, at now: UnixTime
  ) -> RoleDecision {
    switch credential {
    case .absent:
      return decide(verified: nil, rules: rules)
    case .malformed(let reason):
      return .invalidToken(reason: reason)
    case .token(let token):
      do {
        return decide(verified: try verifier.verify(token, at: now), rules: rules)
      } catch {
        return .invalidToken(reason: error.description)
      }
    }
  }

  /// The decision for a request that sent no token (`verified == nil`) or a token that verified.
  public static func decide(verified claims: VerifiedClaims?, rules: RoleRules) -> RoleDecision {
    guard let claims else {
      guard let anonymous = rules.anonymousRole else { return .unauthorized }
      return .actAs(role: anonymous, subject: nil, claims: anonymousClaims)
    }
    guard let role = claims.role ?? rules.defaultTokenRole else {
      return .forbidden(reason: "the token names no role and there is no default role for tokens")
    }
    guard !role.isEmpty else { return .forbidden(reason: "the token's role is empty") }
    if let allowed = rules.allowedTokenRoles, !allowed.contains(role) {
      return .forbidden(reason: "a token may not act as role \(role)")
    }
    return .actAs(role: role, subject: claims.subject, claims: claims.json)
  }

  /// The HTTP status this decision answers with, when it refuses.
  public var status: Int? {
    switch self {
    case .actAs: return nil
    case .unauthorized, .invalidToken: return 401
    case .forbidden: return 403
    }
  }

  /// The `error` code of the JSON body a refusal answers with.
  public var errorCode: String? {
    switch self {
    case .actAs: return nil
    case .unauthorized: return "unauthorized"
    case .invalidToken: return "invalid_token"
    case .forbidden: return "forbidden"
    }
  }

  /// The `WWW-Authenticate` value for a 401 (RFC 6750 §3), nil otherwise.
  public var wwwAuthenticate: String? {
    switch self {
    case .unauthorized: return "Bearer"
    case .invalidToken(let reason):
      // A quoted-string may not hold `"` or `\` unescaped, nor control characters: keep it plain.
      let description = String(
        reason.unicodeScalars.filter { $0.value >= 0x20 && $0.value < 0x7F && $0 != "\"" && $0 != "\\" })
      return "Bearer error=\"invalid_token\", error_description=\"\(description)\""
    case .actAs, .forbidden: return nil
    }
  }
}
