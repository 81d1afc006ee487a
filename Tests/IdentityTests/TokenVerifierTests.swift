import Foundation
import Identity
import JSON
import JWTKit
import Testing

/// 2026-01-01T00:00:00Z, the tests' "now".
let now = UnixTime(seconds: 1_767_225_600)
let inAnHour = Int(now.seconds) + 3600

private func claims(_ members: String = "", exp: Int? = inAnHour) -> String {
  var fields = [String]()
  if let exp { fields.append(#""exp":\#(exp)"#) }
  if !members.isEmpty { fields.append(members) }
  return "{" + fields.joined(separator: ",") + "}"
}

private func reason(_ body: () throws(InvalidToken) -> VerifiedClaims) -> InvalidToken.Reason? {
  do {
    _ = try body()
    return nil
  } catch {
    return error.reason
  }
}

@Suite struct TokenVerifierTests {
  @Test func hs256TokenGivesItsClaims() async throws {
    let key = try await TestKey.hmac()
    let verifier = try await TestKey.verifier(secret: TestKey.secret)
    let token = try key.token(claims: claims(#""sub":"alice","role":"pbp_user","name":"Ålice \"A\"""#))
    let verified = try verifier.verify(token, at: now)
    #expect(verified.subject == "alice")
    #expect(verified.role == "pbp_user")
    #expect(verified.expiration == Double(inAnHour))
    #expect(
      try JSONParser.parse(verified.json)
        == .object([
          "sub": .string("alice"), "role": .string("pbp_user"), "name": .string("Ålice \"A\""),
          "exp": .number(String(inAnHour)),
        ]))
  }

  @Test func rs256AndES256TokensVerifyAgainstTheirJWKSKeys() async throws {
    let rsa = try await TestKey.rs256(keyID: "rsa-1")
    let ec = try await TestKey.es256(keyID: "ec-1")
    let verifier = try await TestKey.verifier(jwks: [rsa, ec])
    #expect(verifier.keys.algorithms == ["RS256", "ES256"])
    #expect(try verifier.verify(try rsa.token(claims: claims(#""sub":"bob""#)), at: now).subject == "bob")
    #expect(try verifier.verify(try ec.token(claims: claims(#""sub":"carol""#)), at: now).subject == "carol")
  }

  @Test func anRSAKeyWithoutAlgIsTakenForRS256() async throws {
    let rsa = try await TestKey.rs256(keyID: "rsa-no-alg", declaresAlgorithm: false)
    let verifier = try await TestKey.verifier(jwks: [rsa])
    #expect(try verifier.verify(try rsa.token(claims: claims()), at: now).subject == nil)
  }

  @Test func aTokenWithoutKidUsesTheOnlyKeyOfItsAlgorithm() async throws {
    let ec = try await TestKey.es256(keyID: "ec-1")
    let verifier = try await TestKey.verifier(jwks: [ec])
    let token = try ec.token(claims: claims(), header: #"{"alg":"ES256"}"#)
    #expect(try verifier.verify(token, at: now).expiration == Double(inAnHour))
  }

  @Test func aTokenWithoutKidIsRefusedWhenSeveralKeysCouldHaveSignedIt() async throws {
    let first = try await TestKey.es256(keyID: "ec-1")
    let second = try await TestKey.es256(keyID: "ec-2")
    let verifier = try await TestKey.verifier(jwks: [first, second])
    let token = try second.token(claims: claims(), header: #"{"alg":"ES256"}"#)
    #expect(
      reason { () throws(InvalidToken) in try verifier.verify(token, at: now) } == .missingKeyID(algorithm: "ES256"))
    #expect(try verifier.verify(try second.token(claims: claims()), at: now).expiration == Double(inAnHour))
  }

  @Test func aTokenMadeByJWTKitsOwnSigningPathVerifies() async throws {
    let ec = try await TestKey.es256(keyID: "ec-standard")
    let verifier = try await TestKey.verifier(jwks: [ec])
    let payload = StandardPayload(
      sub: SubjectClaim(value: "dave"), exp: ExpirationClaim(value: Date(timeIntervalSince1970: Double(inAnHour))))
    let token = try await ec.collection.sign(payload, kid: JWKIdentifier(string: "ec-standard"))
    #expect(try verifier.verify(token, at: now).subject == "dave")
  }

  /// Made by PyJWT 2.15.1 through the tests' minting tool:
  /// `mint_token.mint(TestKey.secret, "erin", "pbp_user", 3600, now=1767225600)`.
  @Test func aTokenMintedByPyJWTVerifies() async throws {
    let verifier = try await TestKey.verifier(secret: TestKey.secret)
    let token =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3NjcyMjU2MDAsImV4cCI6MTc2NzIyOTIwMCwic3ViIjoiZXJpbiIsInJvbGUiOiJwYnBfdXNlciJ9.frc7KILdjdXrvdT2u9Lu44w4T9FV-ht1yoXQdpo8RWI"
    let verified = try verifier.verify(token, at: now)
    #expect(verified.subject == "erin")
    #expect(verified.role == "pbp_user")
  }

  // MARK: Refused

  @Test func aForgedSignatureIsRefused() async throws {
    let key = try await TestKey.hmac()
    let verifier = try await TestKey.verifier(secret: TestKey.secret)
    let genuine = try key.token(claims: claims(#""role":"pbp_user""#))
    let parts = genuine.split(separator: ".")
    // The genuine signature over claims that now name another role.
    let forged = parts[0] + "." + base64URL(Array(claims(#""role":"postgres""#).utf8)) + "." + parts[2]
    #expect(reason { () throws(InvalidToken) in try verifier.verify(String(forged), at: now) } == .badSignature)
    var flipped = Array(genuine.utf8)
    flipped[flipped.count - 2] = flipped[flipped.count - 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
    #expect(
      reason { () throws(InvalidToken) in try verifier.verify(String(decoding: flipped, as: UTF8.self), at: now) }
        == .badSignature)
  }

  @Test func aTokenSignedWithAnotherSecretIsRefused() async throws {
    let other = try await TestKey.hmac(TestKey.otherSecret)
    let verifier = try await TestKey.verifier(secret: TestKey.secret)
    #expect(
      reason { () throws(InvalidToken) in try verifier.verify(try! other.token(claims: claims()), at: now) }
        == .badSignature)
  }

  @Test func aTokenSignedWithAnotherKeyUnderAKnownKidIsRefused() async throws {
    let trusted = try await TestKey.es256(keyID: "ec-1")
    let impostor = try await TestKey.es256(keyID: "ec-1")
    let verifier = try await TestKey.verifier(jwks: [trusted])
    let token = try impostor.token(claims: claims())
    #expect(reason { () throws(InvalidToken) in try verifier.verify(token, at: now) } == .badSignature)
  }

  @Test func algNoneIsRefusedWhateverElseIsConfigured() async throws {
    let ec = try await TestKey.es256(keyID: "ec-1")
    let verifier = try await TestKey.verifier(secret: TestKey.secret, jwks: [ec])
    for header in [#"{"alg":"none"}"#, #"{"alg":"None","typ":"JWT"}"#, #"{"alg":"none","kid":"ec-1"}"#] {
      let token = unsignedToken(header: header, claims: claims(#""role":"pbp_user""#))
      let refusal = reason { () throws(InvalidToken) in try verifier.verify(token, at: now) }
      #expect(refusal == .unsupportedAlgorithm(header.contains("None") ? "None" : "none"))
    }
  }

  @Test func anAlgorithmWithoutAKeyIsRefused() async throws {
    let ec = try await TestKey.es256(keyID: "ec-1")
    let hmac = try await TestKey.hmac()
    let jwksOnly = try await TestKey.verifier(jwks: [ec])
    // HS256 "signed" with a public key's text is the classic confusion: no secret, no HS256.
    #expect(
      reason { () throws(InvalidToken) in try jwksOnly.verify(try! hmac.token(claims: claims()), at: now) }
        == .unsupportedAlgorithm("HS256"))
    let secretOnly = try await TestKey.verifier(secret: TestKey.secret)
    #expect(
      reason { () throws(InvalidToken) in try secretOnly.verify(try! ec.token(claims: claims()), at: now) }
        == .unsupportedAlgorithm("ES256"))
    let forHS512 = unsignedToken(header: #"{"alg":"HS512"}"#, claims: claims(), signature: "c2ln")
    #expect(
      reason { () throws(InvalidToken) in try secretOnly.verify(forHS512, at: now) } == .unsupportedAlgorithm("HS512"))
    let none = try await TestKey.verifier()
    #expect(
      reason { () throws(InvalidToken) in try none.verify(try! hmac.token(claims: claims()), at: now) }
        == .unsupportedAlgorithm("HS256"))
  }

  @Test func aKidOfAnotherAlgorithmOrUnknownIsRefused() async throws {
    let rsa = try await TestKey.rs256(keyID: "rsa-1")
    let ec = try await TestKey.es256(keyID: "ec-1")
    let verifier = try await TestKey.verifier(jwks: [rsa, ec])
    let mismatched = try ec.token(claims: claims(), header: #"{"alg":"ES256","kid":"rsa-1"}"#)
    #expect(
      reason { () throws(InvalidToken) in try verifier.verify(mismatched, at: now) }
        == .algorithmMismatch(keyID: "rsa-1", keyAlgorithm: "RS256", tokenAlgorithm: "ES256"))
    let unknown = try ec.token(claims: claims(), header: #"{"alg":"ES256","kid":"ec-9"}"#)
    #expect(reason { () throws(InvalidToken) in try verifier.verify(unknown, at: now) } == .unknownKeyID("ec-9"))
  }

  @Test func expiryIsRequiredAndHonouredWithTheSkew() async throws {
    let key = try await TestKey.hmac()
    let verifier = try await TestKey.verifier(secret: TestKey.secret, policy: .init(clockSkewSeconds: 30))
    let at = Int(now.seconds)
    func outcome(_ claimsText: String) -> InvalidToken.Reason? {
      reason { () throws(InvalidToken) in try verifier.verify(try! key.token(claims: claimsText), at: now) }
    }
    #expect(outcome(claims(exp: nil)) == .missingExpiration)
    #expect(outcome(claims(exp: at - 31)) == .expired)
    #expect(outcome(claims(exp: at - 30)) == .expired)
    #expect(outcome(claims(exp: at - 29)) == nil)
    #expect(outcome(#"{"exp":"tomorrow"}"#) == .malformed("its exp is not a number of seconds"))
    #expect(outcome(#"{"exp":1767229200.5}"#) == nil)
  }

  @Test func notBeforeAndIssuedAtInTheFutureAreRefusedBeyondTheSkew() async throws {
    let key = try await TestKey.hmac()
    let verifier = try await TestKey.verifier(secret: TestKey.secret, policy: .init(clockSkewSeconds: 30))
    let at = Int(now.seconds)
    func outcome(_ members: String) -> InvalidToken.Reason? {
      reason { () throws(InvalidToken) in try verifier.verify(try! key.token(claims: claims(members)), at: now) }
    }
    #expect(outcome(#""nbf":\#(at + 31)"#) == .notYetValid)
    #expect(outcome(#""nbf":\#(at + 30)"#) == nil)
    #expect(outcome(#""iat":\#(at + 31)"#) == .issuedInFuture)
    #expect(outcome(#""iat":\#(at - 600),"nbf":\#(at - 600)"#) == nil)
    let strict = try await TestKey.verifier(secret: TestKey.secret, policy: .init(clockSkewSeconds: 0))
    #expect(
      reason { () throws(InvalidToken) in
        try strict.verify(try! key.token(claims: claims(#""nbf":\#(at + 1)"#)), at: now)
      }
        == .notYetValid)
  }

  @Test func theAudienceIsCheckedOnlyWhenConfigured() async throws {
    let key = try await TestKey.hmac()
    let checking = try await TestKey.verifier(secret: TestKey.secret, policy: .init(audience: "pbp"))
    let open = try await TestKey.verifier(secret: TestKey.secret)
    func outcome(_ verifier: TokenVerifier, _ members: String) -> InvalidToken.Reason? {
      reason { () throws(InvalidToken) in try verifier.verify(try! key.token(claims: claims(members)), at: now) }
    }
    #expect(outcome(checking, #""aud":"pbp""#) == nil)
    #expect(outcome(checking, #""aud":["other","pbp"]"#) == nil)
    #expect(outcome(checking, #""aud":"other""#) == .wrongAudience)
    #expect(outcome(checking, #""aud":["other"]"#) == .wrongAudience)
    #expect(outcome(checking, "") == .wrongAudience)
    #expect(outcome(open, #""aud":"other""#) == nil)
  }

  @Test func garbageIsMalformed() async throws {
    let key = try await TestKey.hmac()
    let verifier = try await TestKey.verifier(secret: TestKey.secret)
    let signed = try key.token(claims: claims())
    let cases = [
      "", "garbage", "a.b", "a.b.c.d", "...", "!!!.???.***",
      unsignedToken(header: "not json", claims: claims()),
      unsignedToken(header: "[1,2]", claims: claims()),
      unsignedToken(header: #"{"typ":"JWT"}"#, claims: claims()),
      unsignedToken(header: #"{"alg":7}"#, claims: claims()),
      unsignedToken(header: #"{"alg":"HS256","kid":5}"#, claims: claims()),
      signed + "*", signed + "xy",
      String(repeating: "a", count: TokenVerifier.maximumTokenBytes + 1),
    ]
    for token in cases {
      let refusal = reason { () throws(InvalidToken) in try verifier.verify(token, at: now) }
      guard case .malformed = refusal else {
        Issue.record("\(token.prefix(40)): \(String(describing: refusal))")
        continue
      }
    }
  }

  @Test func signedClaimsOfTheWrongShapeAreMalformed() async throws {
    let key = try await TestKey.hmac()
    let verifier = try await TestKey.verifier(secret: TestKey.secret)
    for claimsText in [
      "[1]", "\"text\"", claims(#""sub":42"#), claims(#""role":["a"]"#), "{\"exp\":1e999}",
      claims(#""deep":"# + String(repeating: "[", count: 40) + String(repeating: "]", count: 40)),
    ] {
      let refusal = reason { () throws(InvalidToken) in try verifier.verify(try! key.token(claims: claimsText), at: now)
      }
      guard case .malformed = refusal else {
        Issue.record("\(claimsText): \(String(describing: refusal))")
        continue
      }
    }
  }

  @Test func aCriticalHeaderExtensionIsRefused() async throws {
    let key = try await TestKey.hmac()
    let verifier = try await TestKey.verifier(secret: TestKey.secret)
    let token = try key.token(claims: claims(), header: #"{"alg":"HS256","crit":["exp"],"exp":1}"#)
    guard case .malformed = reason({ () throws(InvalidToken) in try verifier.verify(token, at: now) }) else {
      Issue.record("a token with crit was not refused as malformed")
      return
    }
  }
}

/// A payload as jwt-kit's users declare one, to sign through `JWTKeyCollection.sign`.
private struct StandardPayload: JWTPayload {
  var sub: SubjectClaim
  var exp: ExpirationClaim

  // jwt-kit calls this on its own (async) verifying path only, which PBP does not take.
  func verify(using algorithm: some JWTAlgorithm) async throws { try exp.verifyNotExpired() }
}
