import Identity
import Testing

/// A verifier with a cache checks a token's signature once; the times are
/// judged on every use, as without the cache.
@Suite struct VerifiedTokenCacheTests {
  private func verifier(capacity: Int = 8, policy: TokenVerifier.Policy = .init()) async throws -> TokenVerifier {
    let plain = try await TestKey.verifier(secret: TestKey.secret, policy: policy)
    return TokenVerifier(keys: plain.keys, policy: policy, cache: VerifiedTokenCache(capacity: capacity))
  }

  private func token(_ members: String) async throws -> String {
    try await TestKey.hmac().token(claims: "{" + members + "}")
  }

  @Test func aTokenSentAgainIsTakenFromTheCacheWithTheSameClaims() async throws {
    let verifier = try await verifier()
    let token = try await token(#""sub":"alice","role":"pbp_user","exp":\#(inAnHour)"#)
    let first = try verifier.verify(token, at: now)
    let second = try verifier.verify(token, at: now)
    #expect(first == second)
    #expect(verifier.cache?.statistics == .init(hits: 1, misses: 1, entries: 1))
  }

  @Test func aCachedTokenExpiresAsAnyOther() async throws {
    let verifier = try await verifier(policy: .init(clockSkewSeconds: 0))
    let token = try await token(#""sub":"alice","exp":\#(inAnHour)"#)
    _ = try verifier.verify(token, at: now)
    let later = UnixTime(seconds: Double(inAnHour) + 1)
    #expect(throws: InvalidToken(.expired)) { try verifier.verify(token, at: later) }
    #expect(verifier.cache?.statistics.hits == 1)
  }

  @Test func aCachedTokenIsNotValidBeforeItsTime() async throws {
    let verifier = try await verifier(policy: .init(clockSkewSeconds: 0))
    let notBefore = Int(now.seconds) + 60
    let token = try await token(#""exp":\#(inAnHour),"nbf":\#(notBefore)"#)
    _ = try verifier.verify(token, at: UnixTime(seconds: Double(notBefore)))
    #expect(throws: InvalidToken(.notYetValid)) { try verifier.verify(token, at: now) }
  }

  @Test func onlyTheSameTextIsAHitAndRefusedTokensAreNotKept() async throws {
    let verifier = try await verifier()
    let token = try await token(#""sub":"alice","exp":\#(inAnHour)"#)
    _ = try verifier.verify(token, at: now)
    var forged = Array(token.utf8)
    forged[forged.count - 2] = forged[forged.count - 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
    let forgedText = String(decoding: forged, as: UTF8.self)
    for _ in 0..<2 {
      #expect(throws: InvalidToken(.badSignature)) { try verifier.verify(forgedText, at: now) }
    }
    #expect(verifier.cache?.statistics == .init(hits: 0, misses: 3, entries: 1))
  }

  @Test func theCacheHoldsNoMoreThanItsCapacity() async throws {
    let verifier = try await verifier(capacity: 4)
    for user in 0..<10 {
      _ = try verifier.verify(try await token(#""sub":"user\#(user)","exp":\#(inAnHour)"#), at: now)
    }
    let statistics = try #require(verifier.cache?.statistics)
    #expect(statistics.entries <= 4 && statistics.entries >= 1)
    #expect(statistics.misses == 10)
  }
}
