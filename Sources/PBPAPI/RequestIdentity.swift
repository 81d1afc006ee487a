import JSON

/// Whom a request acts for, as the token (or its absence) decided: the
/// PostgreSQL role and the claims. Every CRUD statement runs with both set
/// transaction-locally (PostgREST's convention: the setting `role` and
/// `request.jwt.claims`), so GRANTs and row security decide what it may do.
public struct RequestIdentity: Hashable, Sendable {
  public let role: String
  public let subject: String?
  /// The claims as JSON text: `{}` for an anonymous request.
  public let claims: String

  public init(role: String, subject: String?, claims: String) {
    self.role = role
    self.subject = subject
    self.claims = claims
  }

  /// The claims' scalar members as text, as `->>` reads them: what a row
  /// rule compares a row's owner column with. Read from the text when asked
  /// (a poll on a table with a row rule), not for every request: parsing the
  /// claims of each was the largest part of a token's cost.
  public var claimValues: [String: String] {
    guard case .object(let members)? = try? JSONParser.parse(claims) else { return [:] }
    return members.compactMapValues(\.scalarText)
  }

  /// Sets the role and the claims for the rest of the transaction; a role
  /// the login role is not granted is refused by PostgreSQL itself.
  static let setupSQL =
    "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)"

  /// Sets them for the session: what a pooled connection acts as between
  /// requests (``DatabaseSession``'s resting identity).
  static let sessionSetupSQL =
    "select set_config('role', $1, false), set_config('request.jwt.claims', $2, false)"
}
