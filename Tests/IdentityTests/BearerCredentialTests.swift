import Identity
import Testing

@Suite struct BearerCredentialTests {
  @Test func noHeaderIsAbsent() {
    #expect(BearerCredential(authorizationHeader: nil) == .absent)
  }

  @Test func theSchemeIsCaseInsensitiveAndSpacesAreTrimmed() {
    for header in ["Bearer abc.def.ghi", "bearer abc.def.ghi", "BEARER   abc.def.ghi", " Bearer\tabc.def.ghi  "] {
      #expect(BearerCredential(authorizationHeader: header) == .token("abc.def.ghi"), "\(header)")
    }
  }

  @Test func anythingElseIsMalformedNotAbsent() {
    for header in [
      "", "   ", "Bearer", "Bearer ", "Basic YWxpY2U6c2VjcmV0", "Token abc", "Bearerabc.def.ghi",
      "Bearer abc def", "Bearer abc\u{0}def", "Bearer ab\"c", "Bearer éé", "Bearer, abc",
    ] {
      guard case .malformed = BearerCredential(authorizationHeader: header) else {
        Issue.record("\(header.debugDescription) was not malformed")
        continue
      }
    }
  }
}
