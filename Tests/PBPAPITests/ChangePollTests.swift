import ChangeStream
import LongPoll
import Testing

@testable import PBPAPI

@Suite struct ChangePollTests {
  let limits = ChangePoll.Limits(
    maximumSubscriptions: 3, defaultTimeout: .seconds(25), maximumTimeout: .seconds(55), maximumFilterBytes: 2500,
    maximumFilters: 20)
  /// `testtype` as the catalog would describe it, with columns of several
  /// types, and one with the longest name the filter limits allow.
  static let testtype = TableInfo(
    name: "testtype",
    columns: [
      ColumnInfo(name: "id", type: "bigint", notNull: true, defaultExpression: "identity", isKey: true),
      ColumnInfo(name: "val", type: "text", notNull: true),
      ColumnInfo(name: "small", type: "smallint"),
      ColumnInfo(name: "done", type: "boolean"),
      ColumnInfo(name: "price", type: "numeric(10,2)"),
      ColumnInfo(name: "due", type: "date"),
      ColumnInfo(name: "tags", type: "text[]"),
      ColumnInfo(name: "meta", type: "jsonb"),
      ColumnInfo(name: String(repeating: "c", count: 256), type: "text"),
      ColumnInfo(name: "mtime", type: "timestamp with time zone", notNull: true, defaultExpression: "now()"),
    ])!
  let describe = { (name: String) throws(APIError) -> TableInfo in
    guard name == "testtype" else { throw .unknownTable(name) }
    return testtype
  }

  func parse(_ json: String) throws(APIError) -> ChangePoll {
    try ChangePoll.parse(json: Array(json.utf8), limits: limits, describe: describe)
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
        describe: describe)
    }
  }

  @Test func aPollBodyOverItsLimitIsRefusedUnparsed() {
    let body = "{\"subscriptions\":[{\"table\":\"testtype\"}]," + String(repeating: " ", count: 200_000) + "}"
    #expect(throws: APIError.tooLarge(limit: 64 * 1024)) {
      try ChangePoll.parse(json: Array(body.utf8), limits: ChangePoll.Limits(), describe: describe)
    }
  }

  @Test func parsesAQuery() throws {
    let poll = try ChangePoll.parse(
      query: [("table", "testtype"), ("where.val", "x y"), ("timeout", "999")], limits: limits, describe: describe)
    #expect(poll.cursor == nil)
    #expect(Array(poll.subscriptions) == [Subscription(table: "testtype", filters: ["val": "x y"])])
    #expect(poll.timeout == .seconds(55), "capped at the maximum")
  }

  @Test(arguments: ["1e20", "1e308", "9223372036854775807", "55.0001"])
  func hugeTimeoutsAreCappedNotTrapped(_ text: String) throws {
    #expect(try parse(#"{"subscriptions":[{"table":"testtype"}],"timeout":\#(text)}"#).timeout == .seconds(55))
    let query = try ChangePoll.parse(
      query: [("table", "testtype"), ("timeout", text)], limits: limits, describe: describe)
    #expect(query.timeout == .seconds(55))
  }

  @Test(arguments: [
    (#"{"subscriptions":[{"table":"nope"}]}"#, "unknown_table"),
    (#"{"subscriptions":[{"table":"testtype","where":{"nosuch":1}}]}"#, "unknown_column"),
    (#"{"subscriptions":[{"table":"testtype"},{"table":"testtype","where":{"id":"x"}}]}"#, "invalid_filter"),
    (#"{"subscriptions":[{"table":"testtype","where":{"id":"5.0"}}]}"#, "invalid_filter"),
    (#"{"subscriptions":[{"table":"testtype","where":{"small":40000}}]}"#, "invalid_filter"),
    (#"{"subscriptions":[{"table":"testtype","where":{"done":"yes"}}]}"#, "invalid_filter"),
    (#"{"subscriptions":[{"table":"testtype","where":{"price":"cheap"}}]}"#, "invalid_filter"),
    (#"{"subscriptions":[{"table":"testtype","where":{"tags":"a"}}]}"#, "invalid_filter"),
    (#"{"subscriptions":[{"table":"testtype","where":{"meta":"a"}}]}"#, "invalid_filter"),
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

  @Test func anIntegralNumberFiltersAnIntegerAsEventsWriteIt() throws {
    // JSON Schema's integer takes 5013.0 (schemathesis sent it): it is 5013.
    let poll = try parse(#"{"subscriptions":[{"table":"testtype","where":{"id":5013.0,"small":5e1,"val":1.0}}]}"#)
    #expect(poll.subscriptions.first?.filters == ["id": "5013", "small": "50", "val": "1.0"])
    #expect(throws: APIError.self) { try parse(#"{"subscriptions":[{"table":"testtype","where":{"id":"5013.0"}}]}"#) }
    #expect(throws: APIError.self) { try parse(#"{"subscriptions":[{"table":"testtype","where":{"id":5013.5}}]}"#) }
  }

  @Test func filtersOfEachTypeAreTakenAsEventsWriteThem() throws {
    let poll = try parse(
      #"{"subscriptions":[{"table":"testtype","where":{"id":-5,"val":"x","done":true,"price":"1.50","due":"2026-12-01","small":"-32768"}}]}"#
    )
    #expect(
      poll.subscriptions.first?.filters == [
        "id": "-5", "val": "x", "done": "true", "price": "1.50", "due": "2026-12-01", "small": "-32768",
      ])
    #expect(throws: APIError.self) {
      try ChangePoll.parse(query: [("table", "testtype"), ("where.nosuch", "1")], limits: limits, describe: describe)
    }
  }
}
