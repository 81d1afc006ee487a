/// Why a bearer token was refused. Every case answers `401 invalid_token`;
/// the reason goes to the log and to `error_description`, never changes the status.
public struct InvalidToken: Error, Equatable, Sendable, CustomStringConvertible {
  public enum Reason: Equatable, Sendable {
    /// Not a compact JWS: parts, base64url, JSON, or a claim of the wrong type.
    case malformed(String)
    /// `alg` names an algorithm this server has no key for (`none` among them).
    case unsupportedAlgorithm(String)
    /// `kid` names a key of the JWKS for another algorithm than the token's `alg`.
    case algorithmMismatch(keyID: String, keyAlgorithm: String, tokenAlgorithm: String)
    case unknownKeyID(String)
    /// Several keys could have signed the token and it does not say which.
    case missingKeyID(algorithm: String)
    case badSignature
    case missingExpiration
    case expired
    case notYetValid
    case issuedInFuture
    case wrongAudience
  }

  public let reason: Reason

  public init(_ reason: Reason) { self.reason = reason }

  public var description: String {
    switch reason {
    case .malformed(let detail): return "the token is malformed: \(detail)"
    case .unsupportedAlgorithm(let algorithm): return "tokens signed with \(algorithm) are not accepted here"
    case .algorithmMismatch(let keyID, let keyAlgorithm, let tokenAlgorithm):
      return "key \(keyID) is for \(keyAlgorithm), not \(tokenAlgorithm)"
    case .unknownKeyID(let keyID): return "no key has the id \(keyID)"
    case .missingKeyID(let algorithm):
      return "the token names no key id (kid) and several \(algorithm) keys are configured"
    case .badSignature: return "the token's signature does not verify"
    case .missingExpiration: return "the token has no expiry (exp)"
    case .expired: return "the token has expired"
    case .notYetValid: return "the token is not valid yet (nbf)"
    case .issuedInFuture: return "the token is issued in the future (iat)"
    case .wrongAudience: return "the token is not meant for this audience (aud)"
    }
  }
}
