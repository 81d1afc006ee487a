/// What a token whose signature and times check out says.
public struct VerifiedClaims: Equatable, Sendable {
  /// `sub`: the user.
  public let subject: String?
  /// `role`: the PostgreSQL role the token asks to act as.
  public let role: String?
  /// `exp`, in seconds since the epoch.
  public let expiration: Double
  /// The whole claims object as the issuer signed it (valid JSON, no NUL byte),
  /// for `request.jwt.claims`.
  public let json: String

  public init(subject: String?, role: String?, expiration: Double, json: String) {
    self.subject = subject
    self.role = role
    self.expiration = expiration
    self.json = json
  }
}
