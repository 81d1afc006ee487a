import ChangeStream
import LongPoll
import Testing

@testable import PBPAPI

@Suite struct ChangePollTests {
  let limits = ChangePoll.Limits(maximumSubscriptions: 3, defaultTimeout: .seconds(25), maximumTimeout: .seconds(55))
  let known = { (name: String) in name == "testtype" }

  func parse(_ json: String) throws(APIError) -> ChangePoll {
    try ChangePoll.parse(json: Array(json.utf8), limits: limits, isKnownTable: known)
  }

  @Test func parsesABodyWithFilters() throws {
    let poll = try parse(
      #"{"cursor":"00000000000000e1:5","subscriptions":[{"table":"testtype"},{"table":"testtype","where":{"id":5}}],"timeout":2}"#
    )
    #expect(poll.cursor == Cursor(epoch: 0xE1, seq: 5))
    #expect(
      Array(poll.subscriptions) == [Subscription(table: "testtype"), Subscription(table: "testtype", filters: ["id": "5"])])
    #expect(poll.timeout == .seconds(2))
  }

  @Test func parsesAQuery() throws {
    let poll = try ChangePoll.parse(
      query: [("table", "testtype"), ("where.val", "x y"), ("timeout", "999")], limits: limits, isKnownTable: known)
    #expect(poll.cursor == nil)
    #expect(Array(poll.subscriptions) == [Subscription(table: "testtype", filters: ["val": "x y"])])
    #expect(poll.timeout == .seconds(55), "capped at the maximum")
  }

  @Test(arguments: ["1e20", "1e308", "9223372036854775807", "55.0001"])
  func hugeTimeoutsAreCappedNotTrapped(_ text: String) throws {
    #expect(try parse(#"{"subscriptions":[{"table":"testtype"}],"timeout":\#(text)}"#).timeout == .seconds(55))
    let query = try ChangePoll.parse(
      query: [("table", "testtype"), ("timeout", text)], limits: limits, isKnownTable: known)
    #expect(query.timeout == .seconds(55))
  }

  @Test(arguments: [
    (#"{"subscriptions":[{"table":"nope"}]}"#, "unknown_table"),
    (
      #"{"subscriptions":[{"table":"testtype"},{"table":"testtype"},{"table":"testtype"},{"table":"testtype"}]}"#,
      "too_many_subscriptions"
    ),
    (#"{"cursor":"x","subscriptions":[{"table":"testtype"}]}"#, "invalid_cursor"),
    (#"{"subscriptions":[{"table":"testtype","where":{"id":{"a":1}}}]}"#, "invalid_subscription"),
    (#"{"subscriptions":[{"table":"testtype"}],"timeout":"-1"}"#, "invalid_timeout"),
    (#"{"subscriptions":[{"table":"testtype"}],"timeout":[5]}"#, "invalid_timeout"),
    (#"{"subscriptions":[{"table":"testtype"}],"timeout":{"s":5}}"#, "invalid_timeout"),
    (#"{"subscriptions":[{"table":"testtype"}],"timeout":true}"#, "invalid_timeout"),
    (#"[]"#, "invalid_poll"),
    (#"{"#, "invalid_json"),
  ])
  func rejects(_ json: String, code: String) {
    #expect(throws: APIError.self) { try parse(json) }
    do {
      _ = try parse(json)
    } catch {
      #expect(error.code == code)
    }
  }
}
