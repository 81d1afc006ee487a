import ChangeStream
import Testing

@Suite struct CursorTests {
  @Test func textFormRoundTrips() {
    let cursor = Cursor(epoch: 0xABC, seq: 42)
    #expect(cursor.description == "0000000000000abc:42")
    #expect(Cursor(parsing: cursor.description) == cursor)
  }

  @Test(arguments: [
    "", "abc", "0000000000000abc", "0000000000000abc:", "0000000000000ABC:1", "0000000000000abc:01",
    "0000000000000000:1", "000000000000abc:1", "0000000000000abc:-1", "0000000000000abc:1 ",
    "0000000000000abc:99999999999999999999", "zzzzzzzzzzzzzzzz:1",
    // Found by fuzzing: a combining mark after the colon was skipped with it.
    "0000000000000abc:\u{301}1", "fe46ffffffffffff:\u{730}185",
  ])
  func rejectsForgedAndTruncatedText(_ text: String) {
    #expect(Cursor(parsing: text) == nil)
  }

  @Test func newEpochsDiffer() {
    #expect(Cursor.newEpoch() != Cursor.newEpoch())
  }
}
