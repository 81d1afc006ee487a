import ChangeStream
import LongPoll
import Testing

@testable import PBPAPI

@Suite struct ChangePollTests {
  let limits = ChangePoll.Limits(
    maximumSubscriptions: 3, defaultTimeout: .seconds(25), maximumTimeout: .seconds(55), maximumFilterBytes: 2500,
    maximumFilters: 20)
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
      Array(poll.subscriptions) == [
        Subscription(table: "testtype"), Subscription(table: "testtype", filters: ["id": "5"]),
      ])
    #expect(poll.timeout == .seconds(2))
  }

  @Test func filtersWithinTheLimitsAreTaken() throws {
    let poll = try parse(
      "{\"subscriptions\":[{\"table\":\"testtype\",\"where\":{\"\(String(repeating: "c", count: 256))\":\"\(String(repeating: "v", count: 1024))\"}}]}"
    )
    #expect(poll.subscriptions.count == 1)
    #expect(throws: APIError.self) {
      try ChangePoll.parse(
        query: [("table", "testtype"), ("where.\(String(repeating: "c", count: 257))", "1")], limits: limits,
        isKnownTable: known)
    }
  }

  @Test func aPollBodyOverItsLimitIsRefusedUnparsed() {
    let body = "{\"subscriptions\":[{\"table\":\"testtype\"}]," + String(repeating: " ", count: 200_000) + "}"
    #expect(throws: APIError.tooLarge(limit: 64 * 1024)) {
      try ChangePoll.parse(json: Array(body.utf8), limits: ChangePoll.Limits(), isKnownTable: known)
    }
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
    (
      "{\"subscriptions\":["
        + Array(
          repeating: "{\"table\":\"testtype\",\"where\":{" + (0..<8).map { "\"c\($0)\":1" }.joined(separator: ",")
            + "}}", count: 3
        ).joined(separator: ",") + "]}",
      "too_many_filters"
    ),
    (#"{"subscriptions":[{"table":"testtype","where":{"id":{"a":1}}}]}"#, "invalid_subscription"),
    (#"{"subscriptions":[{"table":"testtype"}],"timeout":"-1"}"#, "invalid_timeout"),
    (
      #"{"subscriptions":[{"table":"testtype","where":{"a":1,"b":1,"c":1,"d":1,"e":1,"f":1,"g":1,"h":1,"i":1,"j":1,"k":1,"l":1,"m":1,"n":1,"o":1,"p":1,"q":1}}]}"#,
      "too_many_filters"
    ),
    (
      "{\"subscriptions\":[{\"table\":\"testtype\",\"where\":{\"\(String(repeating: "c", count: 257))\":1}}]}",
      "filter_too_long"
    ),
    (
      "{\"subscriptions\":[{\"table\":\"testtype\",\"where\":{\"c\":\"\(String(repeating: "v", count: 1025))\"}}]}",
      "filter_too_long"
    ),
    (
      "{\"subscriptions\":["
        + Array(
          repeating: "{\"table\":\"testtype\",\"where\":{\"c\":\"\(String(repeating: "v", count: 1000))\"}}", count: 3
        ).joined(separator: ",") + "]}",
      "filters_too_large"
    ),
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
