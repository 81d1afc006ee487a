import ChangeStream
import Testing

@Suite struct SubscriptionTests {
  func event(_ payload: String) -> ChangeEvent { ChangeEvent(seq: 1, payload: Array(payload.utf8)) }

  @Test func matchesTableAndFiltersOnOldAndNewRows() {
    let update = event(
      #"{"table":"t","op":"update","key":5,"mtime":"2024-01-01T00:00:00Z","new":{"id":5,"val":"b"},"old":{"id":5,"val":"a"}}"#
    )
    #expect(Subscription(table: "t").matches(update))
    #expect(!Subscription(table: "u").matches(update))
    #expect(Subscription(table: "t", filters: ["id": "5"]).matches(update))
    #expect(!Subscription(table: "t", filters: ["id": "6"]).matches(update))
    #expect(Subscription(table: "t", filters: ["val": "a"]).matches(update), "a row leaving the filter is reported")
    #expect(Subscription(table: "t", filters: ["val": "b"]).matches(update))
    #expect(!Subscription(table: "t", filters: ["val": "c"]).matches(update))
  }

  @Test func aTruncatedEventGoesToEverySubscriptionOnItsTable() {
    let truncated = event(#"{"table":"t","op":"insert","key":5,"mtime":"2024-01-01T00:00:00Z","truncated":true}"#)
    #expect(truncated.truncated)
    #expect(Subscription(table: "t", filters: ["val": "x"]).matches(truncated))
    #expect(!Subscription(table: "u").matches(truncated))
  }

  @Test func aForeignPayloadMatchesNothing() {
    let foreign = event("hello")
    #expect(!Subscription(table: "t").matches(foreign))
  }
}

@Suite struct TruncateTests {
  @Test func aTruncateReachesEverySubscriptionOnItsTable() {
    let truncate = ChangeEvent(
      seq: 1, payload: Array(#"{"table":"t","op":"truncate","key":null,"mtime":"2024-01-01T00:00:00Z"}"#.utf8))
    #expect(Subscription(table: "t", filters: ["id": "5"]).matches(truncate))
    #expect(!Subscription(table: "u").matches(truncate))
  }
}
