// Verification cost per token (issue 15), CPU time of this thread. Not a
// target of Package.swift (a release build of jwt-kit and swift-crypto costs
// minutes); to run it, copy this file to Sources/identity-bench/main.swift, add
//   .executableTarget(name: "identity-bench", dependencies: ["Identity",
//     .product(name: "JWTKit", package: "jwt-kit"),
//     .product(name: "ExtrasBase64", package: "swift-extras-base64")]),
// to Package.swift's targets, and run `swift run -c release identity-bench [NAME-PREFIX]`.
import Glibc
import Identity
import JWTKit
import ExtrasBase64

func b64(_ bytes: [UInt8]) -> String { Base64.encodeToString(bytes: bytes, options: [.base64UrlAlphabet, .omitPaddingCharacter]) }
func monotonic() -> Double { var t = timespec(); clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9 }

let secret = Array("the-bench-hs256-secret-0123456789abcdef".utf8)
let hmacCollection = JWTKeyCollection()
await hmacCollection.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
let hmac = try await hmacCollection.getKey()
let ecKey = ES256PrivateKey()
let ecCollection = JWTKeyCollection()
await ecCollection.add(ecdsa: ecKey, kid: JWKIdentifier(string: "ec"))
let ec = try await ecCollection.getKey(for: JWKIdentifier(string: "ec"))
let p = ecKey.parameters!
let jwks = try JWKS(keys: [JWK.ecdsa(.es256, identifier: JWKIdentifier(string: "ec"), x: p.x, y: p.y, curve: .p256)])
let keys = try await VerificationKeys.make(secret: secret, jwks: jwks).keys
let verifier = TokenVerifier(keys: keys)
let authenticator = Authenticator(verifier: verifier, rules: RoleRules(anonymousRole: "pbp_anon", defaultTokenRole: "pbp_user"))

func token(_ alg: any JWTAlgorithm, header: String) throws -> String {
  let claims = #"{"sub":"alice","role":"pbp_user","exp":\#(Int(UnixTime.now().seconds) + 3600),"iat":\#(Int(UnixTime.now().seconds))}"#
  let input = b64(Array(header.utf8)) + "." + b64(Array(claims.utf8))
  return input + "." + b64(try alg.sign(Array(input.utf8)))
}
let hsToken = try token(hmac, header: #"{"alg":"HS256","typ":"JWT"}"#)
let esToken = try token(ec, header: #"{"alg":"ES256","typ":"JWT","kid":"ec"}"#)

let only = CommandLine.arguments.dropFirst().first
func measure(_ name: String, _ count: Int, _ body: () -> Void) {
  if let only, !name.hasPrefix(only) { return }
  for _ in 0..<(count / 10) { body() }
  let start = monotonic()
  for _ in 0..<count { body() }
  let elapsed = monotonic() - start
  let micros: Double = (elapsed / Double(count) * 1e6 * 100).rounded() / 100
  print("\(name): \(micros) µs CPU per token (\(count) in \(elapsed) s)")
}
let now = UnixTime.now()
var sink = 0
measure("HS256 verify", 200_000) { sink &+= (try? verifier.verify(hsToken, at: now))?.json.utf8.count ?? 0 }
measure("ES256 verify", 20_000) { sink &+= (try? verifier.verify(esToken, at: now))?.json.utf8.count ?? 0 }
measure("HS256 decide (header, verify, role)", 200_000) {
  if case .actAs(_, _, let c) = authenticator.decide(authorizationHeader: "Bearer " + hsToken, at: now) { sink &+= c.utf8.count }
}
measure("ES256 decide (header, verify, role)", 20_000) {
  if case .actAs(_, _, let c) = authenticator.decide(authorizationHeader: "Bearer " + esToken, at: now) { sink &+= c.utf8.count }
}
print("sink \(sink)")
