import ChangeStream
import Testing

func rowEvent(_ seq: UInt64, table: String = "t", val: String = "v") -> ChangeEvent {
  ChangeEvent(seq: seq, payload: rowPayload(seq, table: table, val: val))
}

func rowPayload(_ id: UInt64, table: String = "t", val: String = "v") -> [UInt8] {
  Array(
    #"{"table":"\#(table)","op":"insert","key":\#(id),"mtime":"x","new":{"id":\#(id),"val":"\#(val)"},"old":null}"#.utf8
  )
}

func p(_ major: UInt64, _ minor: UInt32 = 0) -> StreamPosition { StreamPosition(major: major, minor: minor) }

@Suite struct EventRingTests {
  @Test func evictsByCountExactlyWhateverTheChunks() {
    var ring = EventRing(capacity: 5, chunkSize: 2)
    for seq in 1...9 { ring.append(rowEvent(UInt64(seq))) }
    #expect(ring.count == 5 && ring.oldestSeq == 5 && ring.newestSeq == 9)
    #expect(ring.covers(after: p(4)) && ring.covers(after: p(9)))
    #expect(!ring.covers(after: p(3)) && !ring.covers(after: p(10)))
    let all = SubscriptionSet([Subscription(table: "t")])
    #expect(
      ring.snapshot.scan(after: p(4), for: all, budget: 100, maximumMatches: 100).matched.map(\.event.seq) == [
        5, 6, 7, 8, 9,
      ])
  }

  @Test func evictsByBytesAndSaysSoExactly() {
    let size = rowEvent(1).retainedBytes
    var ring = EventRing(capacity: 1000, byteBudget: 40 * size, chunkSize: 8)
    for seq in 1...100 { ring.append(rowEvent(UInt64(seq))) }
    #expect(ring.retainedBytes <= 40 * size, "within its budget, its index included")
    #expect(ring.count < 40 && ring.count > 16)
    #expect(ring.covers(after: p(ring.oldestSeq - 1)) && !ring.covers(after: p(ring.oldestSeq - 2)))
    let all = SubscriptionSet([Subscription(table: "t")])
    let scanned = ring.snapshot.scan(after: p(ring.oldestSeq - 1), for: all, budget: 1000, maximumMatches: 1000)
    #expect(scanned.matched.map(\.event.seq) == Array(ring.oldestSeq...100))
  }

  @Test func anEventLargerThanTheBudgetStaysAloneAndTheRingKeepsCounting() {
    var ring = EventRing(capacity: 10, byteBudget: 1, chunkSize: 4)
    for seq in 1...3 { ring.append(rowEvent(UInt64(seq))) }
    #expect(ring.count == 1 && ring.oldestSeq == 3)
    ring.reset(at: p(50))
    #expect(ring.count == 0 && ring.retainedBytes == 0 && ring.covers(after: p(50)) && !ring.covers(after: p(3)))
    ring.append(rowEvent(51))
    #expect(ring.newestSeq == 4 && ring.oldestSeq == 4, "its own numbering goes on across a reset")
  }

  @Test func aSnapshotIsUnchangedByLaterAppendsAndEvictions() {
    var ring = EventRing(capacity: 4, chunkSize: 2)
    for seq in 1...4 { ring.append(rowEvent(UInt64(seq))) }
    let snapshot = ring.snapshot
    for seq in 5...20 { ring.append(rowEvent(UInt64(seq))) }
    let all = SubscriptionSet([Subscription(table: "t")])
    let scanned = snapshot.scan(after: .zero, for: all, budget: 100, maximumMatches: 100)
    #expect(scanned.matched.map(\.event.seq) == [1, 2, 3, 4] && scanned.through == p(4))
  }

  @Test func aScanVisitsOnlyItsTablesAndStopsHonestlyAtItsBudget() {
    var ring = EventRing(capacity: 100, chunkSize: 4)
    for seq in 1...30 { ring.append(rowEvent(UInt64(seq), table: seq % 3 == 0 ? "a" : "b", val: "\(seq % 2)")) }
    let watching = SubscriptionSet([Subscription(table: "a", filters: ["val": "1"])])
    let snapshot = ring.snapshot
    let whole = snapshot.scan(after: .zero, for: watching, budget: 100, maximumMatches: 100)
    #expect(whole.examined == 10, "the ten events of table a, none of b's")
    #expect(whole.matched.map(\.event.seq) == [3, 9, 15, 21, 27] && whole.through == p(30))
    // Four examined at most per answer: following `through` finds each match once, skipping none.
    var found: [UInt64] = []
    var cursor = StreamPosition.zero
    while cursor < p(30) {
      let part = snapshot.scan(after: cursor, for: watching, budget: 4, maximumMatches: 100)
      #expect(part.examined <= 4 && part.through > cursor)
      found += part.matched.map(\.event.seq)
      cursor = part.through
    }
    #expect(found == [3, 9, 15, 21, 27])
    let capped = snapshot.scan(after: .zero, for: watching, budget: 100, maximumMatches: 2)
    #expect(capped.matched.map(\.event.seq) == [3, 9] && capped.through == p(9))
    let both = SubscriptionSet([Subscription(table: "b", filters: ["val": "0"]), Subscription(table: "a")])
    #expect(
      snapshot.scan(after: p(20), for: both, budget: 100, maximumMatches: 100).matched.map(\.event.seq)
        == [21, 22, 24, 26, 27, 28, 30])
  }

  /// The wal source's positions: commit LSNs far apart, several events in a
  /// transaction, the boundary before a transaction at minor 0.
  @Test func positionsNeedNotBeConsecutive() {
    var ring = EventRing(capacity: 4, chunkSize: 2, at: p(1000))
    let positions = [p(1200, 1), p(1200, 2), p(1200, 3), p(1500, 1), p(1900, 1), p(1900, 2)]
    for (index, position) in positions.enumerated() {
      ring.append(ChangeEvent(position: position, payload: rowPayload(UInt64(index + 1))))
    }
    #expect(ring.count == 4 && ring.floor == p(1200, 2) && ring.newestPosition == p(1900, 2))
    #expect(ring.covers(after: p(1200, 2)) && ring.covers(after: p(1500)) && ring.covers(after: p(1900, 2)))
    #expect(!ring.covers(after: p(1200, 1)) && !ring.covers(after: p(1200)) && !ring.covers(after: p(1900, 3)))
    let all = SubscriptionSet([Subscription(table: "t")])
    let snapshot = ring.snapshot
    #expect(
      snapshot.scan(after: p(1200, 2), for: all, budget: 100, maximumMatches: 100).matched.map(\.event.position)
        == Array(positions[2...]))
    // A boundary between transactions, not an event's position, is a cursor too.
    #expect(
      snapshot.scan(after: p(1500, 0), for: all, budget: 100, maximumMatches: 100).matched.map(\.event.position)
        == Array(positions[3...]))
    #expect(
      snapshot.scan(after: p(1600), for: all, budget: 100, maximumMatches: 100).matched.map(\.event.position)
        == Array(positions[4...]))
    #expect(snapshot.scan(after: p(1900, 2), for: all, budget: 100, maximumMatches: 100).matched.isEmpty)
  }
}
