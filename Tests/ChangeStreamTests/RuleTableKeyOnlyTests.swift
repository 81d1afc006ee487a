import ChangeStream
import JSON
import Testing

/// Key-only events of a table with a row rule carry the owner column of the
/// new and the old row (sql/01-pbp.sql, pbp_private.key_only_event), so that a
/// worker judges them by the rule as it judges whole ones.
@Suite struct RuleTableKeyOnlyTests {
  func event(_ payload: String) -> ChangeEvent { ChangeEvent(seq: 1, payload: Array(payload.utf8)) }

  @Test(arguments: [
    #"{"table" : "notes", "op" : "insert", "key" : 5, "mtime" : "m", "new" : {"owner" : "alice"}, "old" : null, "truncated" : true}"#,
    #"{"table" : "notes", "op" : "update", "key" : 5, "mtime" : "m", "new" : {"owner" : "bob"}, "old" : {"owner" : "alice"}, "truncated" : true}"#,
    #"{"table" : "notes", "op" : "delete", "key" : 5, "mtime" : "m", "new" : null, "old" : {"owner" : "alice"}, "truncated" : true}"#,
    #"{"table" : "notes", "op" : "update", "key" : 5, "mtime" : "m", "new" : {"owner" : null}, "old" : {"owner" : "alice"}, "truncated" : true}"#,
  ])
  func theOwnerOnlyShapeIsAccepted(_ payload: String) throws {
    let accepted = event(payload)
    #expect(accepted.refusal == nil, "refused: \(payload)")
    #expect(accepted.truncated && accepted.table == "notes" && accepted.key == .number("5"))
    let members = String(decoding: accepted.answerMembers, as: UTF8.self)
    #expect(try JSONParser.parse("{" + members + "}") == JSONParser.parse(payload))
  }

  @Test func theOwnerColumnsTextIsFoundInBothRows() {
    let moved = event(
      #"{"table":"notes","op":"update","key":5,"mtime":"m","new":{"owner":"bob"},"old":{"owner":"al\u0069ce"},"truncated":true}"#
    )
    #expect(moved.stringValue(ofColumn: "owner", new: true) == "bob")
    #expect(moved.stringValue(ofColumn: "owner", new: false) == "alice")
    #expect(moved.stringValue(ofColumn: "id", new: true) == nil)
    #expect(moved.row(new: true) == .object(["owner": .string("bob")]))
    let inserted = event(
      #"{"table":"notes","op":"insert","key":5,"mtime":"m","new":{"owner":null},"old":null,"truncated":true}"#)
    #expect(inserted.stringValue(ofColumn: "owner", new: true) == nil)
    #expect(inserted.stringValue(ofColumn: "owner", new: false) == nil)
  }

  @Test func aWholeRowsOwnerIsItsStringOnly() {
    let whole = event(
      #"{"table":"notes","op":"update","key":5,"mtime":"m","new":{"id":5,"owner":"bob","n":5},"old":{"id":5,"owner":"alice","n":5}}"#
    )
    #expect(whole.stringValue(ofColumn: "owner", new: true) == "bob")
    #expect(whole.stringValue(ofColumn: "owner", new: false) == "alice")
    #expect(whole.stringValue(ofColumn: "n", new: true) == nil, "a number is not a string")
  }

  @Test(arguments: [
    // More than the owner column, or none.
    #"{"table":"notes","op":"insert","key":5,"mtime":"m","new":{"owner":"alice","body":"secret"},"old":null,"truncated":true}"#,
    #"{"table":"notes","op":"insert","key":5,"mtime":"m","new":{},"old":null,"truncated":true}"#,
    // The rows do not fit the op.
    #"{"table":"notes","op":"delete","key":5,"mtime":"m","new":{"owner":"alice"},"old":{"owner":"alice"},"truncated":true}"#,
    #"{"table":"notes","op":"update","key":5,"mtime":"m","new":{"owner":"alice"},"old":null,"truncated":true}"#,
    #"{"table":"notes","op":"insert","key":5,"mtime":"m","new":null,"old":{"owner":"alice"},"truncated":true}"#,
    #"{"table":"notes","op":"update","key":5,"mtime":"m","new":null,"old":null,"truncated":true}"#,
    // New and old name different columns, or the same one twice.
    #"{"table":"notes","op":"update","key":5,"mtime":"m","new":{"owner":"a"},"old":{"author":"a"},"truncated":true}"#,
    #"{"table":"notes","op":"insert","key":5,"mtime":"m","new":{"owner":"a","owner":"b"},"old":null,"truncated":true}"#,
    // An owner that is not text (the rule's column is text or varchar).
    #"{"table":"notes","op":"insert","key":5,"mtime":"m","new":{"owner":5},"old":null,"truncated":true}"#,
    #"{"table":"notes","op":"insert","key":5,"mtime":"m","new":{"owner":{"sub":"a"}},"old":null,"truncated":true}"#,
    // Rows that are not objects, a flag that is not true, a member too many or missing.
    #"{"table":"notes","op":"insert","key":5,"mtime":"m","new":"alice","old":null,"truncated":true}"#,
    #"{"table":"notes","op":"insert","key":5,"mtime":"m","new":{"owner":"a"},"old":null,"truncated":false}"#,
    #"{"table":"notes","op":"insert","key":5,"mtime":"m","new":{"owner":"a"},"old":null,"truncated":true,"cursor":"x"}"#,
    #"{"table":"notes","op":"insert","key":5,"mtime":"m","new":{"owner":"a"},"truncated":true}"#,
    #"{"table":"notes","op":"insert","key":null,"mtime":"m","new":{"owner":"a"},"old":null,"truncated":true}"#,
    #"{"table":"notes","op":"truncate","key":null,"mtime":"m","new":null,"old":null,"truncated":true}"#,
  ])
  func anythingElseIsRefused(_ payload: String) {
    let refused = event(payload)
    #expect(refused.refusal != nil, "accepted: \(payload)")
    #expect(refused.table.isEmpty && refused.answerMembers.isEmpty)
  }
}
