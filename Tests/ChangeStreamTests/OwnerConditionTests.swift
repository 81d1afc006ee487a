import ChangeStream
import Testing

/// Events obey the row rule: a subscription with an owner condition gets an
/// event as is when the new row is the viewer's, as a removal when only the
/// old row is, and not at all otherwise.
@Suite struct OwnerConditionTests {
  static func event(_ payload: String) -> ChangeEvent { ChangeEvent(seq: 1, payload: Array(payload.utf8)) }
  static func change(_ op: String, new: String?, old: String?, truncated: Bool = false) -> ChangeEvent {
    func row(_ owner: String?, body: String) -> String {
      guard let owner else { return "null" }
      return truncated ? #"{"owner":\#(owner)}"# : #"{"id":5,"owner":\#(owner),"body":"\#(body)"}"#
    }
    let flag = truncated ? #","truncated":true"# : ""
    return event(
      #"{"table":"notes","op":"\#(op)","key":5,"mtime":"m","new":\#(row(new, body: "new")),"old":\#(row(old, body: "old"))\#(flag)}"#
    )
  }

  static let alice = OwnerCondition(column: "owner", value: "alice")
  let mine = Subscription(table: "notes", owner: alice)

  @Test(arguments: [false, true])
  func theNewRowDecidesThenTheOldOne(truncated: Bool) {
    func form(_ op: String, new: String?, old: String?) -> EventForm? {
      mine.form(of: Self.change(op, new: new, old: old, truncated: truncated))
    }
    #expect(form("insert", new: #""alice""#, old: nil) == .asIs)
    #expect(form("insert", new: #""bob""#, old: nil) == nil)
    #expect(form("update", new: #""alice""#, old: #""alice""#) == .asIs)
    #expect(form("update", new: #""alice""#, old: #""bob""#) == .asArrival, "without Bob's old row")
    #expect(form("update", new: #""bob""#, old: #""alice""#) == .asRemoval)
    #expect(form("update", new: #""bob""#, old: #""carol""#) == nil)
    #expect(form("delete", new: nil, old: #""alice""#) == .asRemoval)
    #expect(form("delete", new: nil, old: #""bob""#) == nil)
    #expect(form("update", new: "null", old: #""alice""#) == .asRemoval, "a null owner is no one's")
  }

  @Test func theOwnerIsComparedAsDecodedTextByteForByte() {
    #expect(mine.form(of: Self.change("insert", new: #""al\u0069ce""#, old: nil)) == .asIs)
    #expect(mine.form(of: Self.change("insert", new: #""Alice""#, old: nil)) == nil)
    #expect(mine.form(of: Self.change("insert", new: #""alice ""#, old: nil)) == nil)
    // Canonically equivalent to U+00E9, but not the same text to PostgreSQL.
    let composed = Subscription(table: "notes", owner: OwnerCondition(column: "owner", value: "\u{E9}"))
    #expect(composed.form(of: Self.change("insert", new: "\"e\u{301}\"", old: nil)) == nil)
    #expect(composed.form(of: Self.change("insert", new: #""\u00e9""#, old: nil)) == .asIs)
    #expect(OwnerCondition(column: "owner", value: "\u{E9}") != OwnerCondition(column: "owner", value: "e\u{301}"))
    #expect(
      SubscriptionSet([composed])
        != SubscriptionSet([Subscription(table: "notes", owner: OwnerCondition(column: "owner", value: "e\u{301}"))]))
  }

  @Test func aNonStringOwnerOrAMissingClaimNeverMatches() {
    let numeric = Self.event(
      #"{"table":"notes","op":"insert","key":5,"mtime":"m","new":{"id":5,"owner":5},"old":null}"#)
    #expect(Subscription(table: "notes", owner: OwnerCondition(column: "owner", value: "5")).form(of: numeric) == nil)
    let noClaim = Subscription(table: "notes", owner: OwnerCondition(column: "owner", value: nil))
    #expect(noClaim.form(of: Self.change("insert", new: "null", old: nil)) == nil)
    #expect(noClaim.form(of: Self.change("delete", new: nil, old: #""alice""#)) == nil)
    let otherColumn = Subscription(table: "notes", owner: OwnerCondition(column: "author", value: "alice"))
    #expect(otherColumn.form(of: Self.change("insert", new: #""alice""#, old: nil)) == nil)
    // A key-only event without the owner (a table whose rule the triggers do not know) cannot be judged.
    #expect(mine.form(of: Self.event(#"{"table":"notes","op":"insert","key":5,"mtime":"m","truncated":true}"#)) == nil)
    #expect(!mine.matches(Self.change("insert", new: #""bob""#, old: nil)))
  }

  @Test func aTruncateReachesEveryOneAsIs() {
    let truncate = Self.event(#"{"table":"notes","op":"truncate","key":null,"mtime":"m"}"#)
    #expect(mine.form(of: truncate) == .asIs)
    #expect(
      Subscription(table: "notes", owner: OwnerCondition(column: "owner", value: nil)).form(of: truncate) == .asIs)
  }

  @Test func filtersStillApplyAndARemovalNeedsTheOldRowToPassThem() {
    let filtered = Subscription(table: "notes", filters: ["id": "5"], owner: Self.alice)
    #expect(filtered.form(of: Self.change("update", new: #""bob""#, old: #""alice""#)) == .asRemoval)
    #expect(
      Subscription(table: "notes", filters: ["id": "6"], owner: Self.alice).form(
        of: Self.change("update", new: #""alice""#, old: nil)) == nil)
    // The new row (now Bob's) passes the filter, the old one (Alice's) does not: Alice never had it.
    let moved = Self.event(
      #"{"table":"notes","op":"update","key":5,"mtime":"m","new":{"id":5,"owner":"bob","body":"b"},"old":{"id":5,"owner":"alice","body":"a"}}"#
    )
    #expect(Subscription(table: "notes", filters: ["body": "b"], owner: Self.alice).form(of: moved) == nil)
    #expect(Subscription(table: "notes", filters: ["body": "a"], owner: Self.alice).form(of: moved) == .asRemoval)
    let gained = Self.event(
      #"{"table":"notes","op":"update","key":5,"mtime":"m","new":{"id":5,"owner":"alice","body":"b"},"old":{"id":5,"owner":"bob","body":"a"}}"#
    )
    // An arrival is judged by its new row alone: the old one was Bob's.
    #expect(Subscription(table: "notes", filters: ["body": "b"], owner: Self.alice).form(of: gained) == .asArrival)
    #expect(Subscription(table: "notes", filters: ["body": "a"], owner: Self.alice).form(of: gained) == nil)
    // Key-only: filters are not judged (the client fetches the row), the owner is.
    let keyOnly = Self.change("update", new: #""bob""#, old: #""alice""#, truncated: true)
    #expect(Subscription(table: "notes", filters: ["body": "x"], owner: Self.alice).form(of: keyOnly) == .asRemoval)
  }

  @Test func aSubscriptionWithoutOwnerGetsEverythingAsIs() {
    #expect(Subscription(table: "notes").form(of: Self.change("update", new: #""bob""#, old: #""alice""#)) == .asIs)
    #expect(Subscription(table: "notes").owner == nil)
  }

  @Test func theOwnerIsPartOfASubscriptionsIdentity() {
    let bob = Subscription(table: "notes", owner: OwnerCondition(column: "owner", value: "bob"))
    #expect(mine != bob && mine != Subscription(table: "notes"))
    #expect(mine == Subscription(table: "notes", owner: OwnerCondition(column: "owner", value: "alice")))
    #expect(Set([mine, bob, Subscription(table: "notes"), mine]).count == 3)
    #expect(SubscriptionSet([mine]) != SubscriptionSet([bob]))
    #expect(SubscriptionSet([mine]).hashValue == SubscriptionSet([mine]).hashValue)
  }
}

@Suite struct SubscriptionSetOwnerTests {
  static let alice = OwnerCondition(column: "owner", value: "alice")
  static let bob = OwnerCondition(column: "owner", value: "bob")
  let subscriptions = [
    Subscription(table: "notes", owner: alice),
    Subscription(table: "notes", filters: ["id": "5"], owner: alice),
    Subscription(table: "notes", filters: ["body": "new"], owner: alice),
    Subscription(table: "notes", filters: ["body": "old"], owner: alice),
    Subscription(table: "notes", owner: bob),
    Subscription(table: "notes", filters: ["id": "5"], owner: bob),
    Subscription(table: "notes"),
    Subscription(table: "notes", filters: ["id": "6"]),
    Subscription(table: "notes", owner: OwnerCondition(column: "owner", value: nil)),
    Subscription(table: "other", owner: alice),
  ]

  @Test(arguments: [
    OwnerConditionTests.change("insert", new: #""alice""#, old: nil),
    OwnerConditionTests.change("update", new: #""bob""#, old: #""alice""#),
    OwnerConditionTests.change("update", new: #""alice""#, old: #""bob""#),
    OwnerConditionTests.change("update", new: #""carol""#, old: #""carol""#),
    OwnerConditionTests.change("delete", new: nil, old: #""bob""#),
    OwnerConditionTests.change("update", new: #""bob""#, old: #""alice""#, truncated: true),
    OwnerConditionTests.change("insert", new: "null", old: nil, truncated: true),
    OwnerConditionTests.event(#"{"table":"notes","op":"truncate","key":null,"mtime":"m"}"#),
    OwnerConditionTests.event(#"{"table":"notes","op":"insert","key":5,"mtime":"m","truncated":true}"#),
  ])
  func agreesWithEachSubscriptionsOwnForm(_ event: ChangeEvent) {
    let set = SubscriptionSet(subscriptions)
    let forms = subscriptions.map { $0.form(of: event) }
    var work = 0
    let judged = set.judge(event, work: &work)
    #expect(judged.asIs == subscriptions.indices.filter { forms[$0] == .asIs })
    #expect(judged.asRemoval == subscriptions.indices.filter { forms[$0] == .asRemoval })
    #expect(judged.asArrival == subscriptions.indices.filter { forms[$0] == .asArrival })
    #expect(set.matches(event) == subscriptions.indices.filter { forms[$0] != nil })
    #expect(work >= 1)
  }

  @Test func aMoveFromAliceToBobIsARemovalForAliceAndNewsForBob() {
    let set = SubscriptionSet(subscriptions)
    let judged = set.judge(OwnerConditionTests.change("update", new: #""bob""#, old: #""alice""#))
    #expect(judged == EventMatches(asIs: [6], asRemoval: [0, 1, 3], asArrival: [4, 5]))
    #expect(!judged.isEmpty && judged.all == [0, 1, 3, 4, 5, 6])
  }
}
