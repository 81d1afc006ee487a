import JWTKit

/// The keys tokens may be signed with, as jwt-kit's algorithm values, fixed
/// once at startup.
///
/// jwt-kit 5 hands out its algorithm values only through its `JWTKeyCollection`
/// actor, and verifies only through that actor's `async` methods. Asking the
/// actor once here, and keeping the values it returns, lets `TokenVerifier`
/// check signatures with jwt-kit's own code (`JWTAlgorithm.verify`, synchronous)
/// on pbp-fcgi's plain request threads, with no hop to the concurrency pool per request.
/// The values are immutable and `Sendable`: any thread may use them at once.
public struct VerificationKeys: Sendable {
  /// The HS256 key, from the shared secret.
  let hmac: (any JWTAlgorithm)?
  /// The JWKS's keys by `kid`.
  let byKeyID: [String: any JWTAlgorithm]
  /// For a token without `kid`: the one key of its algorithm, when there is only one.
  let soleKeyByAlgorithm: [String: any JWTAlgorithm]

  /// The algorithms a token may name (`HS256`, `RS256`, `ES256`).
  public var algorithms: Set<String> {
    Set(byKeyID.values.map(\.name)).union(hmac.map { [$0.name] } ?? [])
  }

  /// The JWKS's key ids, sorted.
  public var keyIDs: [String] { byKeyID.keys.sorted() }

  /// HS256 keys shorter than the hash (RFC 7518 §3.2) are refused.
  public static let minimumSecretBytes = 32

  /// The algorithms a JWKS key may be for. Others are skipped, and reported.
  public static let publicKeyAlgorithms: Set<String> = ["RS256", "ES256"]

  /// A JWKS key that was not taken, and why.
  public struct SkippedKey: Equatable, Sendable {
    public let keyID: String?
    public let reason: String
  }

  public struct SetupError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
  }

  /// `secret` signs HS256 tokens; `jwks` holds the RS256/ES256 public keys.
  /// Either may be absent; with neither, every token is refused.
  public static func make(secret: [UInt8]?, jwks: JWKS?) async throws(SetupError) -> (
    keys: VerificationKeys, skipped: [SkippedKey]
  ) {
    var hmac: (any JWTAlgorithm)? = nil
    if let secret {
      guard secret.count >= minimumSecretBytes else {
        throw SetupError("the HS256 secret has \(secret.count) bytes; it needs at least \(minimumSecretBytes)")
      }
      let collection = JWTKeyCollection()
      await collection.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
      hmac = try await key(from: collection, keyID: nil, algorithm: "HS256", context: "the HS256 secret")
    }

    var byKeyID: [String: any JWTAlgorithm] = [:]
    var skipped: [SkippedKey] = []
    for jwk in jwks?.keys ?? [] {
      guard let keyID = jwk.keyIdentifier?.string else {
        skipped.append(SkippedKey(keyID: nil, reason: "it has no kid"))
        continue
      }
      guard byKeyID[keyID] == nil else { throw SetupError("the JWKS has two keys with kid \(keyID)") }
      guard jwk.privateExponent == nil else {
        throw SetupError("JWKS key \(keyID) holds a private key (d); give pbp-fcgi the public keys only")
      }
      guard let algorithm = signatureAlgorithm(of: jwk) else {
        let named = jwk.algorithm?.rawValue ?? "kty \(jwk.keyType.rawValue)"
        skipped.append(SkippedKey(keyID: keyID, reason: "\(named) is not one of RS256, ES256"))
        continue
      }
      let collection = JWTKeyCollection()
      do {
        try await collection.add(jwk: jwk)
      } catch {
        throw SetupError("JWKS key \(keyID) is not a usable \(algorithm) key: \(error)")
      }
      byKeyID[keyID] = try await key(
        from: collection, keyID: jwk.keyIdentifier, algorithm: algorithm, context: "JWKS key \(keyID)")
    }

    var keysByAlgorithm: [String: [any JWTAlgorithm]] = [:]
    for key in byKeyID.values { keysByAlgorithm[key.name, default: []].append(key) }
    let soleKeyByAlgorithm = keysByAlgorithm.compactMapValues { $0.count == 1 ? $0[0] : nil }
    return (VerificationKeys(hmac: hmac, byKeyID: byKeyID, soleKeyByAlgorithm: soleKeyByAlgorithm), skipped)
  }

  /// RS256 or ES256, from the key's `alg`, or from its type when it has none
  /// (many JWKS publish RSA keys without `alg`); nil for anything else.
  private static func signatureAlgorithm(of jwk: JWK) -> String? {
    if let declared = jwk.algorithm {
      return publicKeyAlgorithms.contains(declared.rawValue) ? declared.rawValue : nil
    }
    switch jwk.keyType {
    case .rsa: return "RS256"
    case .ecdsa where jwk.curve == .ecdsa(.p256): return "ES256"
    default: return nil
    }
  }

  private static func key(
    from collection: JWTKeyCollection, keyID: JWKIdentifier?, algorithm: String, context: String
  ) async throws(SetupError) -> any JWTAlgorithm {
    let key: any JWTAlgorithm
    do {
      key = try await collection.getKey(for: keyID, alg: algorithm)
    } catch {
      throw SetupError("\(context) is not a usable \(algorithm) key: \(error)")
    }
    // The name is what a token's `alg` is compared with: it must be the algorithm asked for.
    guard key.name == algorithm else {
      throw SetupError("\(context) makes a \(key.name) key, not \(algorithm)")
    }
    return key
  }
}
