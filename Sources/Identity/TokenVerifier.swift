import ExtrasBase64
import JSON
import JWTKit

/// Verifies a compact JWS token (RFC 7515, 7519) against the configured keys
/// and the time given, synchronously.
///
/// Threading: a `TokenVerifier` is an immutable `Sendable` value. `verify` makes
/// no `async` call and touches no actor (its cache, if any, is one short lock),
/// so any number of pbp-fcgi's request threads (plain threads, outside Swift
/// concurrency) may call it at once on the same value. The signature check is jwt-kit's
/// (`JWTAlgorithm.verify`); this type only takes the token apart, picks the key
/// by `alg` and `kid`, and judges the registered claims.
public struct TokenVerifier: Sendable {
  public struct Policy: Equatable, Sendable {
    /// When set, `aud` must be this string or an array holding it.
    public var audience: String?
    /// How far the clocks of the issuer and this host may disagree, for `exp`, `nbf` and `iat`.
    public var clockSkewSeconds: Double

    public init(audience: String? = nil, clockSkewSeconds: Double = 30) {
      self.audience = audience
      self.clockSkewSeconds = clockSkewSeconds
    }
  }

  /// Longer tokens are refused before any decoding: a header line is no place for a document.
  public static let maximumTokenBytes = 8192

  public let keys: VerificationKeys
  public let policy: Policy
  /// Tokens whose signature already checked out (shared by the copies of this value); nil: none kept.
  public let cache: VerifiedTokenCache?

  public init(keys: VerificationKeys, policy: Policy = Policy(), cache: VerifiedTokenCache? = nil) {
    self.keys = keys
    self.policy = policy
    self.cache = cache
  }

  public func verify(_ token: String, at now: UnixTime) throws(InvalidToken) -> VerifiedClaims {
    if let signed = cache?.signedClaims(of: token) {
      return try judge(signed.members, text: signed.text, at: now)
    }
    let signed = try verifySignature(token)
    let verified = try judge(signed.members, text: signed.text, at: now)
    cache?.keep(signed, of: token)
    return verified
  }

  /// The claims of a token whose signature holds with one of the keys.
  private func verifySignature(_ token: String) throws(InvalidToken) -> VerifiedTokenCache.SignedClaims {
    let bytes = Array(token.utf8)
    guard bytes.count <= Self.maximumTokenBytes else {
      throw InvalidToken(.malformed("it is longer than \(Self.maximumTokenBytes) bytes"))
    }
    let parts = try Self.split(bytes)
    let header = try Self.jsonObject(parts.header, part: "header").members
    let algorithm = try chooseKey(for: header)
    let signature = try Self.base64URLDecoded(parts.signature, part: "signature")
    let verified: Bool
    do {
      verified = try algorithm.verify(signature, signs: parts.signingInput)
    } catch {
      // jwt-kit throws for a signature it cannot even read (an ES256 signature of the wrong length).
      throw InvalidToken(.badSignature)
    }
    guard verified else { throw InvalidToken(.badSignature) }
    // Claims are read only once the signature holds: nothing of a forged token is judged.
    let claims = try Self.jsonObject(parts.payload, part: "claims")
    return VerifiedTokenCache.SignedClaims(members: claims.members, text: claims.text)
  }

  // MARK: Taking the token apart

  private struct Parts {
    let header: ArraySlice<UInt8>
    let payload: ArraySlice<UInt8>
    let signature: ArraySlice<UInt8>
    /// `header.payload`, what the signature covers.
    let signingInput: ArraySlice<UInt8>
  }

  private static func split(_ bytes: [UInt8]) throws(InvalidToken) -> Parts {
    let dot = UInt8(ascii: ".")
    guard let first = bytes.firstIndex(of: dot),
      let second = bytes[(first + 1)...].firstIndex(of: dot),
      !bytes[(second + 1)...].contains(dot)
    else {
      throw InvalidToken(.malformed("it is not three base64url parts joined by dots"))
    }
    return Parts(
      header: bytes[..<first], payload: bytes[(first + 1)..<second], signature: bytes[(second + 1)...],
      signingInput: bytes[..<second])
  }

  private static func base64URLDecoded(_ part: ArraySlice<UInt8>, part name: String) throws(InvalidToken) -> [UInt8] {
    do {
      return try Base64.decode(bytes: part, options: [.base64UrlAlphabet, .omitPaddingCharacter])
    } catch {
      throw InvalidToken(.malformed("its \(name) is not base64url"))
    }
  }

  /// The object a part holds, and its text as the issuer wrote it.
  private static func jsonObject(_ part: ArraySlice<UInt8>, part name: String) throws(InvalidToken)
    -> (members: [String: JSONValue], text: String)
  {
    let decoded = try base64URLDecoded(part, part: name)
    let value: JSONValue
    do {
      value = try JSONParser.parse(decoded)
    } catch {
      throw InvalidToken(.malformed("its \(name) is not JSON (\(error))"))
    }
    guard case .object(let members) = value else {
      throw InvalidToken(.malformed("its \(name) is not a JSON object"))
    }
    return (members, String(decoding: decoded, as: UTF8.self))
  }

  // MARK: Choosing the key

  private func chooseKey(for header: [String: JSONValue]) throws(InvalidToken) -> any JWTAlgorithm {
    guard case .string(let name)? = header["alg"] else {
      throw InvalidToken(.malformed("its header has no alg string"))
    }
    // RFC 7515 §4.1.11: a critical extension this verifier does not know makes the token invalid.
    if header["crit"] != nil {
      throw InvalidToken(.malformed("its header has critical extensions (crit), which this server does not understand"))
    }
    let keyID: String?
    switch header["kid"] {
    case nil, .null?: keyID = nil
    case .string(let text)?: keyID = text
    default: throw InvalidToken(.malformed("its kid is not a string"))
    }

    if name == "HS256", let hmac = keys.hmac {
      // One shared secret: a kid, if the issuer sets one, has nothing to choose between.
      return hmac
    }
    guard VerificationKeys.publicKeyAlgorithms.contains(name), keys.algorithms.contains(name) else {
      throw InvalidToken(.unsupportedAlgorithm(name))
    }
    if let keyID {
      guard let key = keys.byKeyID[keyID] else { throw InvalidToken(.unknownKeyID(keyID)) }
      guard key.name == name else {
        throw InvalidToken(.algorithmMismatch(keyID: keyID, keyAlgorithm: key.name, tokenAlgorithm: name))
      }
      return key
    }
    guard let key = keys.soleKeyByAlgorithm[name] else { throw InvalidToken(.missingKeyID(algorithm: name)) }
    return key
  }

  // MARK: Judging the claims

  /// `text` is the claims' JSON as signed: strict JSON (the parser took it), so without
  /// a raw NUL, and with PostgreSQL's reading of a name given twice (the last counts),
  /// it goes to `request.jwt.claims` as it is; writing it anew would cost a fifth of the verification.
  private func judge(_ claims: [String: JSONValue], text: String, at now: UnixTime) throws(InvalidToken)
    -> VerifiedClaims
  {
    let skew = policy.clockSkewSeconds
    guard let expiration = try Self.numericDate(claims, "exp") else { throw InvalidToken(.missingExpiration) }
    // RFC 7519 §4.1.4: the token is good only *before* exp.
    guard now.seconds < expiration + skew else { throw InvalidToken(.expired) }
    if let notBefore = try Self.numericDate(claims, "nbf"), now.seconds + skew < notBefore {
      throw InvalidToken(.notYetValid)
    }
    if let issuedAt = try Self.numericDate(claims, "iat"), now.seconds + skew < issuedAt {
      throw InvalidToken(.issuedInFuture)
    }
    if let audience = policy.audience {
      guard Self.audiences(claims["aud"]).contains(audience) else { throw InvalidToken(.wrongAudience) }
    }
    return VerifiedClaims(
      subject: try Self.optionalString(claims, "sub"), role: try Self.optionalString(claims, "role"),
      expiration: expiration, json: text)
  }

  private static func numericDate(_ claims: [String: JSONValue], _ name: String) throws(InvalidToken) -> Double? {
    switch claims[name] {
    case nil: return nil
    case .number(let text)?:
      guard let seconds = Double(text), seconds.isFinite else {
        throw InvalidToken(.malformed("its \(name) is not a usable number"))
      }
      return seconds
    default: throw InvalidToken(.malformed("its \(name) is not a number of seconds"))
    }
  }

  private static func optionalString(_ claims: [String: JSONValue], _ name: String) throws(InvalidToken) -> String? {
    switch claims[name] {
    case nil: return nil
    case .string(let text)?: return text
    default: throw InvalidToken(.malformed("its \(name) is not a string"))
    }
  }

  /// RFC 7519 §4.1.3: one string or an array of strings.
  private static func audiences(_ value: JSONValue?) -> [String] {
    switch value {
    case .string(let text)?: return [text]
    case .array(let elements)?: return elements.compactMap { if case .string(let text) = $0 { text } else { nil } }
    default: return []
    }
  }
}
