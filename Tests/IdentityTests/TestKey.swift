import ExtrasBase64
import Foundation
import Identity
import JWTKit

/// Keys that sign the tests' tokens, through jwt-kit's own signing code, and
/// the public halves a verifier gets (a JWKS, or the shared secret).
struct TestKey: Sendable {
  /// Signs: the private key (or the secret).
  let signer: any JWTAlgorithm
  let keyID: String?
  /// The public JWK, as JSON text, for a JWKS; nil for the HMAC secret.
  let publicJWK: String?
  /// The collection `signer` came from, for signing through jwt-kit's high-level API.
  let collection: JWTKeyCollection

  var algorithm: String { signer.name }

  static let secret = Array("the-tests-hs256-secret-0123456789abcdef".utf8)
  static let otherSecret = Array("another-hs256-secret-0123456789abcdefgh".utf8)

  static func hmac(_ secret: [UInt8] = TestKey.secret) async throws -> TestKey {
    let collection = JWTKeyCollection()
    await collection.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
    return TestKey(signer: try await collection.getKey(), keyID: nil, publicJWK: nil, collection: collection)
  }

  /// A fresh P-256 key pair.
  static func es256(keyID: String) async throws -> TestKey {
    let privateKey = ES256PrivateKey()
    let collection = JWTKeyCollection()
    await collection.add(ecdsa: privateKey, kid: JWKIdentifier(string: keyID))
    guard let parameters = privateKey.parameters else { throw TestKeyError("the P-256 key has no coordinates") }
    let jwk = """
      {"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"\(keyID)","x":"\(parameters.x)","y":"\(parameters.y)"}
      """
    return TestKey(
      signer: try await collection.getKey(for: JWKIdentifier(string: keyID)), keyID: keyID, publicJWK: jwk,
      collection: collection)
  }

  /// The fixture RSA key (generating one per test would cost a second). `declaresAlgorithm`
  /// false leaves `alg` out of the JWK, as many providers do for RSA keys.
  static func rs256(keyID: String, declaresAlgorithm: Bool = true) async throws -> TestKey {
    let privateKey = try Insecure.RSA.PrivateKey(pem: rsaPrivateKeyPEM)
    let collection = JWTKeyCollection()
    await collection.add(rsa: privateKey, digestAlgorithm: .sha256, kid: JWKIdentifier(string: keyID))
    let primitives = try privateKey.publicKey.getKeyPrimitives()
    let n = base64URL(Array(primitives.modulus))
    let e = base64URL(Array(primitives.publicExponent))
    let alg = declaresAlgorithm ? #","alg":"RS256""# : ""
    let jwk = #"{"kty":"RSA","kid":"\#(keyID)"\#(alg),"n":"\#(n)","e":"\#(e)"}"#
    return TestKey(
      signer: try await collection.getKey(for: JWKIdentifier(string: keyID)), keyID: keyID, publicJWK: jwk,
      collection: collection)
  }

  /// A verifier that trusts `keys`: the HMAC one by its secret, the others through a JWKS.
  static func verifier(
    secret: [UInt8]? = nil, jwks keys: [TestKey] = [], policy: TokenVerifier.Policy = .init()
  ) async throws -> TokenVerifier {
    let jwks = try JSONDecoder().decode(JWKS.self, from: Data(jwksJSON(keys).utf8))
    let made = try await VerificationKeys.make(secret: secret, jwks: keys.isEmpty ? nil : jwks)
    return TokenVerifier(keys: made.keys, policy: policy)
  }

  static func jwksJSON(_ keys: [TestKey]) -> String {
    #"{"keys":["# + keys.compactMap(\.publicJWK).joined(separator: ",") + "]}"
  }

  /// `header.claims.signature`, the signature made by this key over the first two parts.
  func token(claims: String, header: String? = nil) throws -> String {
    let kid = keyID.map { #","kid":"\#($0)""# } ?? ""
    let header = header ?? #"{"alg":"\#(algorithm)","typ":"JWT"\#(kid)}"#
    let signingInput = base64URL(Array(header.utf8)) + "." + base64URL(Array(claims.utf8))
    return signingInput + "." + base64URL(try signer.sign(Array(signingInput.utf8)))
  }
}

struct TestKeyError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}

func base64URL(_ bytes: [UInt8]) -> String {
  Base64.encodeToString(bytes: bytes, options: [.base64UrlAlphabet, .omitPaddingCharacter])
}

/// A token without a signature, for `alg: none` and its like.
func unsignedToken(header: String, claims: String, signature: String = "") -> String {
  base64URL(Array(header.utf8)) + "." + base64URL(Array(claims.utf8)) + "." + signature
}

/// A 2048-bit RSA key made for these tests with `openssl genrsa 2048`; it signs nothing else.
let rsaPrivateKeyPEM = """
  -----BEGIN PRIVATE KEY-----
  MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC+GOOKAIwJ8kg0
  FTURnK3AYZhQ+x4gPcuPdZhO4tMyfS+tSIrSjI5/cs5ZlgZUg18SExa82OXGB5LS
  wNz4cykuunsD282j1L4E90L8OUgwbBwGx71TvzBK3L3riY2+hBkqmJlSOfRq0f0U
  EsiBPgGyD6NU/gSF2VRGK0X0/h+j9JBws1rdsr626sr5TScR9jamnKZnCrcgO7mw
  GrejuyQn9EnX/IQuwDdF0AVrL8CPNpjcxRaRNnD+Eawt42mkuW6qs5CA4IsrvyXe
  jyPw/fP7pY8qna1pIHfmqbTCM4UctRi1hgPTCAzGaZRGvrCnIso2DToHGNumP7+d
  cQ/qbf0NAgMBAAECggEAGm+npRdyYie5dtTELpDVcP2hixGBHQa6+lZmOgI9ULYs
  HTMLa0B0yLCUlczRUIt8ey0Aan7XZXTELF752+tX/NGeLekxbek2C8a/IAhvS5yd
  QSwh3jWmZ6LPHqRge/Au98eE+vRoUzqksVfzXlXbMoIOOtGgm2Sf3apC7lEw4UHy
  NK+fbx2od7GWast/A+gNwNPcFWy1QvBM7J67Wl0iKeuQUvPJtiB8bj1FR98KElT6
  DVJMqQH4+HA6lTzpBa+pSeqYzfoCJRcomTBrA9/+cguSOZrZ1vpotk0qWa53T6f1
  TRRyXMqEzAd/8Ws/QjPHTAkOeSWiGI2FeR6FNd7AWQKBgQDldUomNcnBwARbU35x
  sDXu1o4/Wkqf+8u2L+D4emSVFv1ROba5y26UAHgpNVWBqRQ+32ER0yFlmFXwLa63
  lor2aRDOTJOwJ7zD+UEy0eQiFOFp5rvWflzihxZlqBz6rrT5zkzrJ01eqGPlBSVV
  DMcRtum//ZQLOdel8AIoTfN2YwKBgQDUFgs3uZNF9P0SjReFB6s5PPBSc+0DUljC
  lxlyDjDZW/gWfXZAwYXPkwt4+BrLh0cGRvkdFjTlzaCvNRU6mw4VkJFvjSZe451U
  Apm4JkNh05v4oJnHld+DJuVdoMc/Jg7P8edfwat3uOUL3eg2NE+oGRxT8XjQP+zK
  Vk1p7n+hzwKBgCRTMBzicQE6K7ZlfmPzGGaqErTWz2+KRhKee8f6YEf17r5YG6RI
  H0ZQ2LT1W4b+RFU7ubs/qE7UEe7G3Jz1uSQPN/jgyJSfhdOkdvzbm3kFwzWnsF7h
  fETkS9hmB8hrtfzB+w1TGH1+vOm5qdJQBoe4ZELfmvs3+fqsBztoM72vAoGBAMhE
  jJExRnVP0s16t9Phmviwp4pkd1Gkp7YQMnH2HoCRjOHH1Stu0mlhQ/sV5U99TT8L
  M98YghjiJDJuIL63fgQ1AHBiy/HcY0raLcerMgOla2nKVYwW5PmWeA4CbUMfL+uC
  VOaiHcUurfKXt9e/a9yi4ZIOufOD+ZhTCETYdmMXAoGBAK2QMMQBnk2Rb9BZuE6J
  QhcsuKyxPIDOsZABoqTDUJe5sEtFsfURE96T1nhabu+fbb6wlgoDdMv9T9wIYvZd
  n7/tUhHc6Gb8nwnCkM2l5c1THqxIoD0wKutBkc1kGbUWnmz4Nfe9bs5TVZOHULrg
  s7yB/Pr0FW51tqUkTe2IqOxi
  -----END PRIVATE KEY-----
  """
