import Identity
import Testing

private func claims(role: String?, subject: String? = "alice") -> VerifiedClaims {
  VerifiedClaims(subject: subject, role: role, expiration: 2e9, json: #"{"exp":2000000000,"sub":"alice"}"#)
}

@Suite struct RoleDecisionTests {
  let rules = RoleRules(
    anonymousRole: "pbp_anon", defaultTokenRole: "pbp_user", allowedTokenRoles: ["pbp_user", "pbp_admin"])

  @Test func noTokenActsAsTheAnonymousRoleWithEmptyClaims() {
    #expect(RoleDecision.decide(verified: nil, rules: rules) == .actAs(role: "pbp_anon", subject: nil, claims: "{}"))
  }

  @Test func noTokenAndNoAnonymousRoleIsUnauthorized() {
    let decision = RoleDecision.decide(verified: nil, rules: RoleRules())
    #expect(decision == .unauthorized)
    #expect(decision.status == 401)
    #expect(decision.errorCode == "unauthorized")
    #expect(decision.wwwAuthenticate == "Bearer")
  }

  @Test func aTokenActsAsItsRoleWithItsClaims() {
    #expect(
      RoleDecision.decide(verified: claims(role: "pbp_admin"), rules: rules)
        == .actAs(role: "pbp_admin", subject: "alice", claims: #"{"exp":2000000000,"sub":"alice"}"#))
  }

  @Test func aTokenWithoutRoleActsAsTheDefaultTokenRole() {
    guard case .actAs(let role, _, _) = RoleDecision.decide(verified: claims(role: nil), rules: rules) else {
      Issue.record("a token without role did not act as the default role")
      return
    }
    #expect(role == "pbp_user")
  }

  @Test func aTokenWithoutRoleAndNoDefaultIsForbiddenNotAnonymous() {
    let decision = RoleDecision.decide(verified: claims(role: nil), rules: RoleRules(anonymousRole: "pbp_anon"))
    guard case .forbidden = decision else {
      Issue.record("\(decision)")
      return
    }
    #expect(decision.status == 403)
    #expect(decision.errorCode == "forbidden")
    #expect(decision.wwwAuthenticate == nil)
  }

  @Test func aRoleOutsideTheAllowListOrEmptyIsForbidden() {
    for role in ["postgres", "pbp_anon", ""] {
      guard case .forbidden = RoleDecision.decide(verified: claims(role: role), rules: rules) else {
        Issue.record("role \(role.debugDescription) was not forbidden")
        continue
      }
    }
  }

  @Test func withoutAnAllowListPostgreSQLDecidesWhichRolesExist() {
    let open = RoleRules(anonymousRole: nil, defaultTokenRole: nil, allowedTokenRoles: nil)
    guard case .actAs(let role, _, _) = RoleDecision.decide(verified: claims(role: "anything"), rules: open) else {
      Issue.record("a role was refused without an allow-list")
      return
    }
    #expect(role == "anything")
  }

  @Test func theWholeRequestPathFromHeaderToDecision() async throws {
    let key = try await TestKey.hmac()
    let verifier = try await TestKey.verifier(secret: TestKey.secret)
    let authenticator = Authenticator(verifier: verifier, rules: rules)
    let good = try key.token(claims: #"{"exp":\#(inAnHour),"sub":"bob","role":"pbp_user"}"#)
    guard
      case .actAs("pbp_user", "bob", let claimsJSON) = authenticator.decide(
        authorizationHeader: "Bearer \(good)", at: now)
    else {
      Issue.record("a good token was not accepted")
      return
    }
    #expect(claimsJSON.contains(#""sub":"bob""#))
    #expect(
      authenticator.decide(authorizationHeader: nil, at: now) == .actAs(role: "pbp_anon", subject: nil, claims: "{}"))

    // A bad token is never served as anonymous, though anonymous is allowed.
    let expired = try key.token(claims: #"{"exp":\#(Int(now.seconds) - 3600),"role":"pbp_user"}"#)
    let decision = authenticator.decide(authorizationHeader: "Bearer \(expired)", at: now)
    #expect(decision == .invalidToken(reason: "the token has expired"))
    #expect(decision.status == 401)
    #expect(decision.errorCode == "invalid_token")
    #expect(decision.wwwAuthenticate == #"Bearer error="invalid_token", error_description="the token has expired""#)
    guard case .invalidToken = authenticator.decide(authorizationHeader: "Basic YWxpY2U6c2VjcmV0", at: now) else {
      Issue.record("a Basic header was not an invalid token")
      return
    }
    let otherRole = try key.token(claims: #"{"exp":\#(inAnHour),"role":"postgres"}"#)
    #expect(authenticator.decide(authorizationHeader: "Bearer \(otherRole)", at: now).status == 403)
  }

  @Test func theChallengeCarriesNoQuoteOrControlCharacterOfTheReason() {
    let decision = RoleDecision.invalidToken(reason: "no key has the id \"x\\\"\r\nSet-Cookie: a")
    #expect(
      decision.wwwAuthenticate == #"Bearer error="invalid_token", error_description="no key has the id xSet-Cookie: a""#
    )
  }
}
