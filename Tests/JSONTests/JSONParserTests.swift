import JSON
import Testing

@Suite struct JSONParserTests {
  @Test func parsesEveryKindOfValue() throws {
    let value = try JSONParser.parse(#"{"a": [1, -2.5e3, true, false, null], "b": "x\"y\u00e9\ud83d\ude00"}"#)
    #expect(value["a"] == .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null]))
    #expect(value["b"] == .string("x\"yé😀"))
  }

  @Test func keepsNumbersAsWritten() throws {
    #expect(try JSONParser.parse("9223372036854775807") == .number("9223372036854775807"))
  }

  @Test(arguments: [
    "", "{", "[1,]", "{\"a\":}", "01", "1.", "-", "tru", "\"\\x\"", "\"a", "{} {}", "{\"a\" 1}",
    "\"\\ud800\"", "\"\\u0000\"", "[1 2]", "\"tab\there\"",
  ])
  func rejectsMalformedText(_ text: String) {
    #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
  }

  @Test func rejectsInvalidUTF8() {
    #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xFF, 0x22]) }
  }

  @Test func limitsNesting() throws {
    let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
    #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
    let fine = String(repeating: "[", count: 10) + String(repeating: "]", count: 10)
    _ = try JSONParser.parse(fine)
  }

  @Test func writerRoundTrips() throws {
    let value = JSONValue.object(["k": .string("line\nbreak \"q\" \u{01}"), "n": .number("5"), "a": .array([.null])])
    #expect(try JSONParser.parse(JSONWriter.serialize(value)) == value)
  }
}
