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

  /// What parse threw for `bytes`, or nil where it accepted.
  private func parseError(_ bytes: [UInt8]) -> JSONParseError? {
    do throws(JSONParseError) {
      _ = try JSONParser.parse(bytes)
      return nil
    } catch {
      return error
    }
  }

  private func validationError(_ bytes: [UInt8]) -> JSONParseError? {
    do throws(JSONParseError) {
      try JSONParser.validate(bytes)
      return nil
    } catch {
      return error
    }
  }

  @Test(arguments: [
    #"{"a": [1, -2.5e3, true, false, null], "b": "x\"y\u00e9\ud83d\ude00", "c": {"d": "é"}}"#,
    "", "{", "[1,]", "{\"a\":}", "01", "1.", "-", "tru", "\"\\x\"", "\"a", "{} {}", "{\"a\" 1}",
    "\"\\ud800\"", "\"\\u0000\"", "[1 2]", "\"tab\there\"",
  ])
  func validatesAsParseJudges(_ text: String) {
    let bytes = Array(text.utf8)
    #expect(validationError(bytes) == parseError(bytes))
  }

  /// Invalid UTF-8 is reported after the closing quote, as parse reports
  /// it, even when an escape or a later error follows in the same string.
  @Test(
    arguments: [
      [0x22, 0xFF, 0x22], [0x22, 0x41, 0xC0, 0xAF, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22],
      [0x22, 0xFF, 0x5C, 0x6E, 0x41, 0x22], [0x22, 0xFF, 0x5C, 0x78, 0x22], [0x22, 0xFF, 0x5C, 0x6E, 0x01, 0x22],
      [0x22, 0xFF, 0x5C, 0x6E], [0x5B, 0x22, 0xC3, 0xA9, 0x22, 0x5D],
    ] as [[UInt8]])
  func validatesUTF8AsParseJudgesIt(_ bytes: [UInt8]) {
    #expect(validationError(bytes) == parseError(bytes))
  }

  @Test func validationLimitsNestingAsParseDoes() {
    let deep = Array((String(repeating: "[", count: 40) + String(repeating: "]", count: 40)).utf8)
    #expect(validationError(deep) == parseError(deep))
    #expect(validationError(deep)?.reason == .tooDeep(limit: JSONParser.defaultMaximumDepth))
  }
}
