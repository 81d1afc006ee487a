import Testing

@testable import PBPAPI

@Suite struct FormDecodingTests {
  @Test func decodesPlusAndPercentEscapes() throws {
    let pairs = try FormDecoding.decode("val=a+b%20c%C3%A9&id=5&flag"[...])
    #expect(pairs.map(\.0) == ["val", "id", "flag"])
    #expect(pairs.map(\.1) == ["a b cé", "5", ""])
  }

  @Test func splitsOnBytesEvenBeforeACombiningMark() throws {
    // Found by fuzzing: "&\u{301}" and "=\u{301}" are single Characters.
    let pairs = try FormDecoding.decode("a=1&\u{301}b=2&c=\u{301}3"[...])
    #expect(pairs.map(\.0) == ["a", "\u{301}b", "c"])
    #expect(pairs.map(\.1) == ["1", "2", "\u{301}3"])
  }

  @Test(arguments: ["a=%", "a=%4", "a=%zz", "a=%ff", "a=1%00", "a%00=1"])
  func rejectsBrokenEscapes(_ text: String) {
    #expect(throws: APIError.self) { try FormDecoding.decode(text[...]) }
  }
}
