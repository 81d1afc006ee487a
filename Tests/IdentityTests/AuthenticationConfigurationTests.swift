import Foundation
import Identity
import Testing

/// A directory of its own for each test's key files.
private struct KeyDirectory {
  let path: String

  init() throws {
    path = NSTemporaryDirectory() + "pbp-identity-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }

  func write(_ name: String, _ contents: String) throws -> String {
    let file = path + "/" + name
    try Data(contents.utf8).write(to: URL(fileURLWithPath: file))
    return file
  }

  func remove() { try? FileManager.default.removeItem(atPath: path) }
}

private func loadError(_ configuration: AuthenticationConfiguration) async -> String? {
  switch await configuration.load() {
  case .success: return nil
  case .failure(let error): return error.description
  }
}

@Suite struct AuthenticationConfigurationTests {
  @Test func theSecretFileIsItsTextLessTheFinalLineEnd() async throws {
    let directory = try KeyDirectory()
    defer { directory.remove() }
    let file = try directory.write("jwt.key", String(decoding: TestKey.secret, as: UTF8.self) + "\r\n")
    let authenticator = try await AuthenticationConfiguration(
      secretFile: file, roles: RoleRules(defaultTokenRole: "pbp_user")
    ).load().get()
    let token = try await TestKey.hmac().token(claims: #"{"exp":\#(inAnHour),"sub":"alice"}"#)
    #expect(
      authenticator.decide(authorizationHeader: "Bearer " + token, at: now)
        == .actAs(role: "pbp_user", subject: "alice", claims: #"{"exp":\#(inAnHour),"sub":"alice"}"#))
  }

  @Test func aMissingOrShortSecretFileIsAnErrorNamingIt() async throws {
    let directory = try KeyDirectory()
    defer { directory.remove() }
    let missing = directory.path + "/absent.key"
    let missingError = await loadError(AuthenticationConfiguration(secretFile: missing))
    #expect(missingError?.contains(missing) == true)
    #expect(missingError?.contains("No such file") == true)
    let short = try directory.write("short.key", "tooshort\n")
    let shortError = await loadError(AuthenticationConfiguration(secretFile: short))
    #expect(shortError?.contains("8 bytes; it needs at least 32") == true)
  }

  @Test func aJWKSFileIsLoadedAndItsUnusableKeysReported() async throws {
    let directory = try KeyDirectory()
    defer { directory.remove() }
    let ec = try await TestKey.es256(keyID: "ec-1")
    let rsa = try await TestKey.rs256(keyID: "rsa-1")
    let jwks = """
      {"keys":[\(ec.publicJWK!),\(rsa.publicJWK!),
        {"kty":"RSA","alg":"RS512","kid":"rsa-512","n":"AQAB","e":"AQAB"},
        {"kty":"EC","crv":"P-256","x":"AQAB","y":"AQAB"}]}
      """
    let file = try directory.write("jwks.json", jwks)
    let authenticator = try await AuthenticationConfiguration(jwksFile: file, audience: "pbp").load().get()
    #expect(authenticator.verifier.keys.keyIDs == ["ec-1", "rsa-1"])
    #expect(authenticator.verifier.policy.audience == "pbp")
    #expect(authenticator.skippedKeys.map(\.keyID) == ["rsa-512", nil])
    let token = try rsa.token(claims: #"{"exp":\#(inAnHour),"aud":"pbp","role":"pbp_user"}"#)
    #expect(try authenticator.verifier.verify(token, at: now).role == "pbp_user")
  }

  @Test func aBadJWKSFileIsAnError() async throws {
    let directory = try KeyDirectory()
    defer { directory.remove() }
    let ec = try await TestKey.es256(keyID: "ec-1")
    let cases: [(String, String)] = [
      ("not json", "is not a JWKS"),
      (#"{"kids":[]}"#, "is not a JWKS"),
      (#"{"keys":[\#(ec.publicJWK!),\#(ec.publicJWK!)]}"#, "two keys with kid ec-1"),
      (
        #"{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","kid":"e","x":"AQAB","y":"AQAB"}]}"#,
        "not a usable ES256 key"
      ),
      (
        #"{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","kid":"p","x":"AQAB","y":"AQAB","d":"AQAB"}]}"#,
        "private key"
      ),
    ]
    for (index, (contents, expected)) in cases.enumerated() {
      let file = try directory.write("jwks-\(index).json", contents)
      let error = await loadError(AuthenticationConfiguration(jwksFile: file))
      #expect(error?.contains(expected) == true, "\(contents): \(error ?? "loaded")")
    }
    let missing = await loadError(AuthenticationConfiguration(jwksFile: directory.path + "/none.json"))
    #expect(missing?.contains("the JWKS file: cannot open") == true)
  }

  @Test func inconsistentSettingsAreErrors() async {
    #expect(await loadError(AuthenticationConfiguration(clockSkewSeconds: -1))?.contains("clock skew") == true)
    #expect(await loadError(AuthenticationConfiguration(clockSkewSeconds: 3600))?.contains("clock skew") == true)
    #expect(await loadError(AuthenticationConfiguration(audience: ""))?.contains("audience") == true)
    #expect(
      await loadError(AuthenticationConfiguration(roles: RoleRules(anonymousRole: "")))?.contains("anonymous") == true)
    let outside = RoleRules(defaultTokenRole: "pbp_user", allowedTokenRoles: ["pbp_admin"])
    #expect(await loadError(AuthenticationConfiguration(roles: outside))?.contains("not among") == true)
    #expect(await loadError(AuthenticationConfiguration()) == nil)
  }

  /// pbp-fcgi loads on its main thread, outside Swift concurrency: the blocking
  /// load runs here on a thread of its own, as it would there.
  @Test func theBlockingLoadWorksFromAPlainThread() async throws {
    let directory = try KeyDirectory()
    defer { directory.remove() }
    let file = try directory.write("jwt.key", String(decoding: TestKey.secret, as: UTF8.self))
    let configuration = AuthenticationConfiguration(secretFile: file)
    let algorithms = await withCheckedContinuation { continuation in
      let thread = Thread {
        let loaded = configuration.loadBlocking()
        continuation.resume(returning: (try? loaded.get())?.verifier.keys.algorithms)
      }
      thread.start()
    }
    #expect(algorithms == ["HS256"])
  }
}
