// The bearer token path every signed-in request takes: the `Authorization`
// header (BearerCredential) and the verifier (TokenVerifier, HS256 here).
// Properties:
// - the header never traps; a `.token(t)` is non-empty token68 and reads back
//   the same after "Bearer " in any letter case; an absent header alone is
//   `.absent`;
// - the input as a token never traps and is never accepted (nothing the
//   fuzzer writes carries the key's signature);
// - a token whose claims are the input's bytes, signed with the key: when it
//   is accepted, those bytes are a JSON object whose `exp` is a number not yet
//   past (with the skew), `sub` and `role` are its strings, and the claims
//   text is the input; it is never refused for its signature;
// - a verifier with a cache answers that token, twice, as one without;
// - that token with one byte changed (where and to what, from the input) is
//   refused, unless every part still decodes to what was signed.
import ExtrasBase64
import JSON
import JWTKit

@testable import Identity

private let now = UnixTime(seconds: 1_800_000_000)
private let policy = TokenVerifier.Policy(audience: nil, clockSkewSeconds: 30)
private let secret = Array("the fuzz target's HS256 secret, 32+ bytes".utf8)

/// Made once: jwt-kit hands out its keys only through its actor.
private let verifier: TokenVerifier = waitForAsync {
  do {
    return TokenVerifier(keys: try await VerificationKeys.make(secret: secret, jwks: nil).keys, policy: policy)
  } catch {
    fatalError("the fuzz key is refused: \(error)")
  }
}

/// The same keys with a cache, small so that it also starts over.
private let cachingVerifier = TokenVerifier(
  keys: verifier.keys, policy: policy, cache: VerifiedTokenCache(capacity: 64))

private func base64URL(_ bytes: some Collection<UInt8>) -> String {
  Base64.encodeToString(bytes: bytes, options: [.base64UrlAlphabet, .omitPaddingCharacter])
}

private func decoded(_ part: Substring) -> [UInt8]? {
  try? Base64.decode(bytes: Array(part.utf8), options: [.base64UrlAlphabet, .omitPaddingCharacter])
}

private func signed(claims: [UInt8]) -> String {
  let input = base64URL(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + "." + base64URL(claims)
  guard let signature = try? verifier.keys.hmac?.sign(Array(input.utf8)) else {
    fatalError("the fuzz key cannot sign")
  }
  return input + "." + base64URL(signature)
}

private func checkHeader(_ text: String) {
  let credential = BearerCredential(authorizationHeader: text)
  if case .token(let token) = credential {
    require(!token.isEmpty && !token.utf8.contains(0x20), "token \(token) from \(text)")
    for scheme in ["Bearer ", "bearer ", "BEARER\t"] {
      require(BearerCredential(authorizationHeader: scheme + token) == credential, "\(scheme)\(token) reads otherwise")
    }
  }
  require(BearerCredential(authorizationHeader: nil) == .absent, "no header is not absent")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzToken(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
  var input = FuzzInput(data, size)
  let position = Int(input.uint16())
  let replacement = input.byte()
  let bytes = input.rest()
  let text = String(decoding: bytes, as: UTF8.self)

  checkHeader(text)
  require((try? verifier.verify(text, at: now)) == nil, "an unsigned input was accepted: \(text)")

  let token = signed(claims: bytes)
  // The cache decides nothing: twice through it, as once without it.
  let uncached = Result { () throws(InvalidToken) in try verifier.verify(token, at: now) }
  for _ in 0..<2 {
    let cached = Result { () throws(InvalidToken) in try cachingVerifier.verify(token, at: now) }
    require(cached == uncached, "with the cache \(cached), without \(uncached), for \(token)")
  }
  do {
    let claims = try verifier.verify(token, at: now)
    guard case .object(let members)? = try? JSONParser.parse(bytes) else {
      require(false, "accepted claims that are not a JSON object: \(text)")
      return 0
    }
    guard case .number(let exp)? = members["exp"], let expiry = Double(exp) else {
      require(false, "accepted claims without a numeric exp: \(text)")
      return 0
    }
    require(now.seconds < expiry + policy.clockSkewSeconds && claims.expiration == expiry, "exp \(exp) accepted")
    require(claims.json == text, "the claims text changed: \(claims.json) from \(text)")
    let sub: String? = if case .string(let value)? = members["sub"] { value } else { nil }
    let role: String? = if case .string(let value)? = members["role"] { value } else { nil }
    require(claims.subject == sub && claims.role == role, "sub/role \(claims) from \(text)")
  } catch {
    require(error.reason != .badSignature, "a signed token was refused for its signature: \(token)")
  }

  var mutated = Array(token.utf8)
  let at = position % mutated.count
  guard mutated[at] != replacement else { return 0 }
  mutated[at] = replacement
  let changed = String(decoding: mutated, as: UTF8.self)
  if (try? verifier.verify(changed, at: now)) != nil {
    let original = token.split(separator: ".", omittingEmptySubsequences: false)
    let parts = changed.split(separator: ".", omittingEmptySubsequences: false)
    require(
      parts.count == 3 && zip(original, parts).allSatisfy { decoded($0) != nil && decoded($0) == decoded($1) },
      "a changed token was accepted: \(changed) (signed \(token))")
  }
  return 0
}
