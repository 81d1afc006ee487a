import ChangeStream
import JSON
import Testing

/// Payloads as PostgreSQL's json_build_object writes them (with its spacing).
enum Payloads {
  static let insert =
    #"{"table" : "t", "op" : "insert", "key" : 5, "mtime" : "2024-01-01T00:00:00+00:00", "new" : {"id":5,"val":"a \"q\""}, "old" : null}"#
  static let update =
    #"{"table" : "t", "op" : "update", "key" : 5, "mtime" : "2024-01-01T00:00:00+00:00", "new" : {"id":5,"val":"b"}, "old" : {"id":5,"val":"a"}}"#
  static let delete =
    #"{"table" : "t", "op" : "delete", "key" : 5, "mtime" : "2024-01-01T00:00:00+00:00", "new" : null, "old" : {"id":5,"val":"a"}}"#
  static let truncatedRow =
    #"{"table" : "t", "op" : "update", "key" : 5, "mtime" : "2024-01-01T00:00:00+00:00", "truncated" : true}"#
  static let truncate = #"{"table" : "t", "op" : "truncate", "key" : null, "mtime" : "2024-01-01T00:00:00+00:00"}"#
}

@Suite struct TriggerPayloadTests {
  func event(_ payload: String) -> ChangeEvent { ChangeEvent(seq: 1, payload: Array(payload.utf8)) }

  @Test(arguments: [Payloads.insert, Payloads.update, Payloads.delete, Payloads.truncatedRow, Payloads.truncate])
  func theTriggersShapesAreAccepted(_ payload: String) {
    let accepted = event(payload)
    #expect(accepted.refusal == nil)
    #expect(accepted.table == "t")
    #expect(!accepted.answerMembers.isEmpty)
  }

  @Test func anAcceptedEventKeepsThePayloadOnceAndFindsItsParts() throws {
    let insert = event(Payloads.insert)
    #expect(insert.operation == .insert && insert.key == .number("5") && !insert.truncated)
    #expect(insert.row(new: true) == .object(["id": .number("5"), "val": .string(#"a "q""#)]))
    #expect(insert.row(new: false) == nil)
    let members = String(decoding: insert.answerMembers, as: UTF8.self)
    #expect(try JSONParser.parse("{" + members + "}") == JSONParser.parse(Payloads.insert))
    #expect(event(Payloads.truncatedRow).truncated)
    #expect(event(Payloads.truncate).operation == .truncate)
    #expect(insert.retainedBytes < Payloads.insert.utf8.count + 400, "one copy of the payload and its offsets")
  }

  @Test(arguments: [
    // A member the triggers never write, which would stand beside the server's in an answer.
    #"{"table":"t","op":"insert","key":5,"mtime":"x","new":{"id":5},"old":null,"cursor":"0000000000000001:9"}"#,
    #"{"table":"t","op":"insert","key":5,"mtime":"x","new":{"id":5},"old":null,"matches":[0]}"#,
    // A member given twice: readers disagree on which one counts.
    #"{"table":"t","op":"insert","key":5,"mtime":"x","new":{"id":5},"old":null,"key":6}"#,
    #"{"table":"t","op":"insert","key":5,"mtime":"x","new":{"id":5,"id":6},"old":null}"#,
    // Missing members, wrong types, ops and rows that do not fit the op.
    #"{"table":"t","op":"insert","key":5,"new":{"id":5},"old":null}"#,
    #"{"table":"t","op":"insert","key":5,"mtime":7,"new":{"id":5},"old":null}"#,
    #"{"table":5,"op":"insert","key":5,"mtime":"x","new":{"id":5},"old":null}"#,
    #"{"table":"","op":"insert","key":5,"mtime":"x","new":{"id":5},"old":null}"#,
    #"{"table":"t","op":"upsert","key":5,"mtime":"x","new":{"id":5},"old":null}"#,
    #"{"table":"t","op":"insert","key":5,"mtime":"x","new":null,"old":{"id":5}}"#,
    #"{"table":"t","op":"delete","key":5,"mtime":"x","new":{"id":5},"old":{"id":5}}"#,
    #"{"table":"t","op":"update","key":5,"mtime":"x","new":{"id":5},"old":null}"#,
    #"{"table":"t","op":"insert","key":null,"mtime":"x","new":{"id":5},"old":null}"#,
    #"{"table":"t","op":"insert","key":5,"mtime":"x","new":[5],"old":null}"#,
    #"{"table":"t","op":"insert","key":5,"mtime":"x","truncated":false}"#,
    #"{"table":"t","op":"truncate","key":5,"mtime":"x"}"#,
    #"{"table":"t","op":"truncate","key":null,"mtime":"x","truncated":true}"#,
    // Not an object at all.
    #"hello"#, #"["t"]"#, #"{"table":"t""#,
  ])
  func whatTheTriggersCannotProduceIsRefused(_ payload: String) {
    let refused = event(payload)
    #expect(refused.refusal != nil, "accepted: \(payload)")
    #expect(refused.table.isEmpty && refused.answerMembers.isEmpty)
    #expect(!Subscription(table: "t").matches(refused))
    #expect(SubscriptionSet([Subscription(table: "t")]).matches(refused).isEmpty)
  }

  /// A payload longer than a notifyd frame carries (whitespace before a
  /// trigger's shape, found by Fuzz/Targets/change-event.swift when the
  /// offsets were 16-bit) is refused, not a trap in a worker; one a frame
  /// carries is kept, a megabyte row of the wal source among them.
  @Test func aPayloadLongerThanAFrameCarriesIsRefused() {
    let padded = [UInt8](repeating: 0x20, count: StreamFrame.maximumLength) + Array(Payloads.insert.utf8)
    let refused = ChangeEvent(seq: 1, payload: padded)
    #expect(refused.refusal == .tooLarge(bytes: padded.count))
    #expect(refused.answerMembers.isEmpty && SubscriptionSet([Subscription(table: "t")]).matches(refused).isEmpty)
    let longest =
      [UInt8](repeating: 0x20, count: StreamFrame.maximumEventPayload - Payloads.insert.utf8.count)
      + Array(Payloads.insert.utf8)
    #expect(ChangeEvent(seq: 2, payload: longest).refusal == nil)
    let megabyte =
      #"{"table":"t","op":"insert","key":1,"mtime":"x","new":{"id":1,"val":""#
      + String(repeating: "m", count: 1 << 20) + #""},"old":null}"#
    let whole = ChangeEvent(seq: 3, payload: Array(megabyte.utf8))
    #expect(whole.refusal == nil && whole.row(new: true)?["val"] == .string(String(repeating: "m", count: 1 << 20)))
  }
}
