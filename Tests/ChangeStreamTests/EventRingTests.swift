import ChangeStream
import Testing

func rowEvent(_ seq: UInt64, table: String = "t", val: String = "v") -> ChangeEvent {
  ChangeEvent(
    seq: seq,
    payload: Array(
      #"{"table":"\#(table)","op":"insert","key":\#(seq),"mtime":"x","new":{"id":\#(seq),"val":"\#(val)"},"old":null}"#
        .utf8))
}

@Suite struct EventRingTests {
  @Test func evictsByCountExactlyWhateverTheChunks() {
    var ring = EventRing(capacity: 5, chunkSize: 2)
    for seq in 1...9 { ring.append(rowEvent(UInt64(seq))) }
    #expect(ring.count == 5 && ring.oldestSeq == 5 && ring.newestSeq == 9)
    #expect(ring.covers(after: 4) && ring.covers(after: 9))
    #expect(!ring.covers(after: 3) && !ring.covers(after: 10))
    let all = SubscriptionSet([Subscription(table: "t")])
    #expect(
      ring.snapshot.scan(after: 4, for: all, budget: 100, maximumMatches: 100).matched.map(\.event.seq) == [
        5, 6, 7, 8, 9,
      ])
  }

  @Test func evictsByBytesAndSaysSoExactly() {
    let size = rowEvent(1).retainedBytes
    var ring = EventRing(capacity: 1000, byteBudget: 40 * size, chunkSize: 8)
    for seq in 1...100 { ring.append(rowEvent(UInt64(seq))) }
    #expect(ring.retainedBytes <= 40 * size, "within its budget, its index included")
    #expect(ring.count < 40 && ring.count > 16)
    #expect(ring.covers(after: ring.oldestSeq - 1) && !ring.covers(after: ring.oldestSeq - 2))
    let all = SubscriptionSet([Subscription(table: "t")])
    let scanned = ring.snapshot.scan(after: ring.oldestSeq - 1, for: all, budget: 1000, maximumMatches: 1000)
    #expect(scanned.matched.map(\.event.seq) == Array(ring.oldestSeq...100))
  }

  @Test func anEventLargerThanTheBudgetStaysAloneAndTheRingKeepsCounting() {
    var ring = EventRing(capacity: 10, byteBudget: 1, chunkSize: 4)
    for seq in 1...3 { ring.append(rowEvent(UInt64(seq))) }
    #expect(ring.count == 1 && ring.oldestSeq == 3)
    ring.reset(newestSeq: 50)
    #expect(ring.count == 0 && ring.retainedBytes == 0 && ring.covers(after: 50) && !ring.covers(after: 3))
  }

  @Test func aSnapshotIsUnchangedByLaterAppendsAndEvictions() {
    var ring = EventRing(capacity: 4, chunkSize: 2)
    for seq in 1...4 { ring.append(rowEvent(UInt64(seq))) }
    let snapshot = ring.snapshot
    for seq in 5...20 { ring.append(rowEvent(UInt64(seq))) }
    let all = SubscriptionSet([Subscription(table: "t")])
    let scanned = snapshot.scan(after: 0, for: all, budget: 100, maximumMatches: 100)
    #expect(scanned.matched.map(\.event.seq) == [1, 2, 3, 4] && scanned.through == 4)
  }

  @Test func aScanVisitsOnlyItsTablesAndStopsHonestlyAtItsBudget() {
    var ring = EventRing(capacity: 100, chunkSize: 4)
    for seq in 1...30 { ring.append(rowEvent(UInt64(seq), table: seq % 3 == 0 ? "a" : "b", val: "\(seq % 2)")) }
    let watching = SubscriptionSet([Subscription(table: "a", filters: ["val": "1"])])
    let snapshot = ring.snapshot
    let whole = snapshot.scan(after: 0, for: watching, budget: 100, maximumMatches: 100)
    #expect(whole.examined == 10, "the ten events of table a, none of b's")
    #expect(whole.matched.map(\.event.seq) == [3, 9, 15, 21, 27] && whole.through == 30)
    // Four examined at most per answer: following `through` finds each match once, skipping none.
    var found: [UInt64] = []
    var cursor: UInt64 = 0
    while cursor < 30 {
      let part = snapshot.scan(after: cursor, for: watching, budget: 4, maximumMatches: 100)
      #expect(part.examined <= 4 && part.through > cursor)
      found += part.matched.map(\.event.seq)
      cursor = part.through
    }
    #expect(found == [3, 9, 15, 21, 27])
    let capped = snapshot.scan(after: 0, for: watching, budget: 100, maximumMatches: 2)
    #expect(capped.matched.map(\.event.seq) == [3, 9] && capped.through == 9)
    let both = SubscriptionSet([Subscription(table: "b", filters: ["val": "0"]), Subscription(table: "a")])
    #expect(
      snapshot.scan(after: 20, for: both, budget: 100, maximumMatches: 100).matched.map(\.event.seq)
        == [21, 22, 24, 26, 27, 28, 30])
  }
}
