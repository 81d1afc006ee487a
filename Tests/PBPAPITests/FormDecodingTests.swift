import Testing

@testable import PBPAPI

@Suite struct FormDecodingTests {
  @Test func decodesPlusAndPercentEscapes() throws {
    let pairs = try FormDecoding.decode("val=a+b%20c%C3%A9&id=5&flag"[...])
    #expect(pairs.map(\.0) == ["val", "id", "flag"])
    #expect(pairs.map(\.1) == ["a b cé", "5", ""])
  }

  @Test(arguments: ["a=%", "a=%4", "a=%zz", "a=%ff", "a=1%00", "a%00=1"])
  func rejectsBrokenEscapes(_ text: String) {
    #expect(throws: APIError.self) { try FormDecoding.decode(text[...]) }
  }
}
