import ChangeStream
import Testing

@Suite struct SubscriptionSetTests {
  func event(_ payload: String) -> ChangeEvent { ChangeEvent(seq: 1, payload: Array(payload.utf8)) }

  let subscriptions = [
    Subscription(table: "t"),
    Subscription(table: "t", filters: ["val": "a"]),
    Subscription(table: "t", filters: ["val": "b"]),
    Subscription(table: "t", filters: ["id": "5", "val": "b"]),
    Subscription(table: "t", filters: ["id": "5", "val": "c"]),
    Subscription(table: "t", filters: ["id": "6"]),
    Subscription(table: "t", filters: ["nope": "5"]),
    Subscription(table: "u"),
    Subscription(table: "u", filters: ["id": "5"]),
    Subscription(table: "t", filters: ["val": "a"]),
    Subscription(table: "t", filters: ["val": #"a "q""#]),
  ]

  @Test(arguments: [
    Payloads.insert, Payloads.update, Payloads.delete, Payloads.truncatedRow, Payloads.truncate,
    #"{"table":"u","op":"insert","key":5,"mtime":"x","new":{"id":5,"flag":true},"old":null}"#, "not json",
  ])
  func agreesWithEachSubscriptionsOwnVerdict(_ payload: String) {
    let changed = event(payload)
    let set = SubscriptionSet(subscriptions)
    #expect(set.matches(changed) == subscriptions.indices.filter { subscriptions[$0].matches(changed) })
  }

  @Test func knowsItsTablesAndComparesByItsSubscriptions() {
    let set = SubscriptionSet(subscriptions)
    #expect(set.tableNames == ["t", "u"])
    #expect(set.watches(table: "u") && !set.watches(table: "v"))
    #expect(set == SubscriptionSet(subscriptions))
    #expect(set != SubscriptionSet(subscriptions.reversed()))
    #expect(Array(set) == subscriptions)
  }

  @Test func filtersCompareByText() {
    let changed = event(
      #"{"table":"u","op":"insert","key":5,"mtime":"x","new":{"id":5,"flag":true,"n":null},"old":null}"#)
    #expect(SubscriptionSet([Subscription(table: "u", filters: ["flag": "true", "id": "5"])]).matches(changed) == [0])
    #expect(SubscriptionSet([Subscription(table: "u", filters: ["n": "null"])]).matches(changed).isEmpty)
  }
}
