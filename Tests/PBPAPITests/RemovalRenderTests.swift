import ChangeStream
import JSON
import LongPoll
import Testing

@testable import PBPAPI

/// An event that reaches a viewer only as a removal goes out as a delete of
/// its old row, and the new row's content is never in the bytes sent.
@Suite struct RemovalRenderTests {
  static let alice = [Subscription(table: "notes", owner: OwnerCondition(column: "owner", value: "alice"))]

  func render(_ payload: String, for subscriptions: [Subscription]) throws -> (text: String, events: [JSONValue]) {
    let event = ChangeEvent(seq: 7, payload: Array(payload.utf8))
    #expect(!event.isRefused)
    let cursor = Cursor(epoch: 1, seq: 7)
    let matches = SubscriptionSet(subscriptions).judge(event)
    let response = PollAnswer.render(
      .events([MatchedEvent(event: event, cursor: cursor, matches)], through: cursor))
    #expect(response.status == 200)
    let body = try JSONParser.parse(response.body)
    guard case .array(let events)? = body["events"] else { throw RenderError.noEvents }
    return (String(decoding: response.body, as: UTF8.self), events)
  }

  enum RenderError: Error { case noEvents }

  @Test func aNoteMovedFromAliceToBobReachesAliceAsARemovalWithoutItsNewContent() throws {
    let (text, events) = try render(
      #"{"table" : "notes", "op" : "update", "key" : 5, "mtime" : "2024-01-01T00:00:00+00:00", "new" : {"id":5,"owner":"bob","body":"Bob's secret"}, "old" : {"id":5,"owner":"alice","body":"Alice's draft"}}"#,
      for: Self.alice)
    #expect(!text.contains("bob") && !text.contains("secret"), "the new row leaked: \(text)")
    #expect(events.count == 1)
    #expect(
      events.first
        == .object([
          "table": .string("notes"), "op": .string("delete"), "key": .number("5"),
          "mtime": .string("2024-01-01T00:00:00+00:00"), "new": .null,
          "old": .object(["id": .number("5"), "owner": .string("alice"), "body": .string("Alice's draft")]),
          "cursor": .string("0000000000000001:7"), "matches": .array([.number("0")]),
        ]))
    #expect(
      text
        == #"{"cursor":"0000000000000001:7","events":[{"table":"notes","op":"delete","key":5,"mtime":"2024-01-01T00:00:00+00:00","new":null,"old":{"id":5,"owner":"alice","body":"Alice's draft"},"cursor":"0000000000000001:7","matches":[0]}]}"#
    )
  }

  @Test func aNoteMovedFromBobToAliceReachesAliceAsAnInsertWithoutItsOldContent() throws {
    let (text, events) = try render(
      #"{"table" : "notes", "op" : "update", "key" : 5, "mtime" : "2024-01-01T00:00:00+00:00", "new" : {"id":5,"owner":"alice","body":"now Alice's"}, "old" : {"id":5,"owner":"bob","body":"Bob's secret"}}"#,
      for: Self.alice)
    #expect(!text.contains("bob") && !text.contains("secret"), "the old row leaked: \(text)")
    #expect(
      events
        == [
          .object([
            "table": .string("notes"), "op": .string("insert"), "key": .number("5"),
            "mtime": .string("2024-01-01T00:00:00+00:00"),
            "new": .object(["id": .number("5"), "owner": .string("alice"), "body": .string("now Alice's")]),
            "old": .null, "cursor": .string("0000000000000001:7"), "matches": .array([.number("0")]),
          ])
        ])
    // Key-only, the old owner's name is not told either.
    let (keyOnly, _) = try render(
      #"{"table":"notes","op":"update","key":5,"mtime":"m","new":{"owner":"alice"},"old":{"owner":"bob"},"truncated":true}"#,
      for: Self.alice)
    #expect(!keyOnly.contains("bob") && keyOnly.contains(#""op":"insert""#), "\(keyOnly)")
  }

  @Test func aKeyOnlyMoveIsAKeyOnlyRemoval() throws {
    let (text, events) = try render(
      #"{"table":"notes","op":"update","key":"k\"5","mtime":"m","new":{"owner":"bob"},"old":{"owner":"alice"},"truncated":true}"#,
      for: Self.alice)
    #expect(!text.contains("bob"), "the new owner leaked: \(text)")
    #expect(
      events
        == [
          .object([
            "table": .string("notes"), "op": .string("delete"), "key": .string(#"k"5"#), "mtime": .string("m"),
            "new": .null, "old": .object(["owner": .string("alice")]), "truncated": .bool(true),
            "cursor": .string("0000000000000001:7"), "matches": .array([.number("0")]),
          ])
        ])
  }

  @Test func theNewOwnerGetsTheRowAsAnArrival() throws {
    let payload =
      #"{"table":"notes","op":"update","key":5,"mtime":"m","new":{"id":5,"owner":"bob","body":"b"},"old":{"id":5,"owner":"alice","body":"a"}}"#
    let (_, events) = try render(
      payload, for: [Subscription(table: "notes", owner: OwnerCondition(column: "owner", value: "bob"))])
    #expect(events.count == 1 && events.first?["op"] == .string("insert"))
    #expect(events.first?["new"]?["body"] == .string("b") && events.first?["old"] == .null)
  }

  /// Subscriptions of one table with different conditions in one poll (the
  /// API gives a poll one viewer, so only a poll built otherwise has them):
  /// the event goes out once per form, the removal first, then the arrival, each with its own
  /// subscriptions, so that each replica gets what its subscription says.
  @Test func aPollReachedBothWaysGetsTheRemovalThenTheArrival() throws {
    let payload =
      #"{"table":"notes","op":"update","key":5,"mtime":"m","new":{"id":5,"owner":"bob","body":"b"},"old":{"id":5,"owner":"alice","body":"a"}}"#
    let subscriptions = [
      Subscription(table: "notes", owner: OwnerCondition(column: "owner", value: "bob")),
      Subscription(table: "notes", owner: OwnerCondition(column: "owner", value: "alice")),
      Subscription(table: "notes", filters: ["id": "5"], owner: OwnerCondition(column: "owner", value: "alice")),
    ]
    let (_, events) = try render(payload, for: subscriptions)
    #expect(events.map { $0["op"] } == [.string("delete"), .string("insert")])
    #expect(events.map { $0["matches"] } == [.array([.number("1"), .number("2")]), .array([.number("0")])])
    #expect(events[0]["new"] == .null && events[1]["new"]?["body"] == .string("b"))
    #expect(events.map { $0["cursor"] } == [.string("0000000000000001:7"), .string("0000000000000001:7")])
  }
}
