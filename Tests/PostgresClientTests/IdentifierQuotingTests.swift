import PostgresClient
import Testing

@Suite struct IdentifierQuotingTests {
  @Test func wrapsInDoubleQuotesAndDoublesEachOne() {
    #expect(PostgresConnection.quoteIdentifier("testtype") == "\"testtype\"")
    #expect(PostgresConnection.quoteIdentifier("a\"b") == "\"a\"\"b\"")
    #expect(PostgresConnection.quoteIdentifier("\"") == "\"\"\"\"")
    #expect(PostgresConnection.quoteIdentifier("") == "\"\"")
  }

  /// A `"` followed by a combining mark is one Character (grapheme cluster)
  /// in Swift, but PostgreSQL reads bytes: its quote must be doubled too.
  @Test func doublesAQuoteThatAMarkCombinesWith() {
    let name = "x\"\u{301}y"
    #expect(PostgresConnection.quoteIdentifier(name) == "\"x\"\"\u{301}y\"")
    #expect(PostgresConnection.quoteIdentifier("\"\u{301}") == "\"\"\"\u{301}\"")
    let quoted = PostgresConnection.quoteIdentifier(name)
    let quotes = quoted.utf8.filter { $0 == UInt8(ascii: "\"") }.count
    #expect(quotes == 4, "the two around it and the doubled one")
  }

  @Test func keepsEveryOtherByte() {
    let name = "é\u{0}🙂\u{301}"
    #expect(Array(PostgresConnection.quoteIdentifier(name).utf8.dropFirst().dropLast()) == Array(name.utf8))
  }
}
