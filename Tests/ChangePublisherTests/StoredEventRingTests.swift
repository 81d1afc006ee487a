import ChangePublisher
import ChangeStream
import Testing

@Suite struct StoredEventRingTests {
  func event(_ seq: UInt64, payloadSize: Int) -> StoredEvent {
    StoredEvent(seq: seq, payload: [UInt8](repeating: UInt8(ascii: "p"), count: payloadSize))
  }

  @Test func anEventCostsItsFrameAndTheBookkeepingAroundIt() {
    let stored = event(1, payloadSize: 1000)
    #expect(stored.frame.count == 1017, "length, type, position, payload")
    #expect(stored.storedBytes == stored.frame.capacity + StoredEvent.bookkeepingBytes)
    #expect(stored.frame.capacity < stored.frame.count + 32, "no growth slack kept per event, only malloc's rounding")
  }

  @Test func theOldestEventsGoWhenTheBytesExceedTheBudget() {
    // Each event's storage as malloc gave it: equal payloads may get
    // capacities a few bytes apart, so the budget is the largest three.
    let events = (1...5).map { event(UInt64($0), payloadSize: 1000) }
    let largest = events.map(\.storedBytes).max()!
    var ring = StoredEventRing(capacity: 100, byteBudget: 3 * largest)
    for stored in events { ring.append(stored) }
    #expect(ring.count == 3)
    #expect(ring.byteCount == events[2...].reduce(0) { $0 + $1.storedBytes })
    #expect(ring.element(withSeq: 2) == nil)
    #expect(ring.element(withSeq: 3)?.seq == 3)
    #expect(ring.covers(after: StreamPosition(major: 2)), "events 3, 4 and 5 are all held")
    #expect(!ring.covers(after: StreamPosition(major: 1)), "event 2 is gone")
  }

  @Test func coveringStaysExactWithEventsOfEverySize() {
    var ring = StoredEventRing(capacity: 1000, byteBudget: 20_000)
    var sizes: [UInt64: Int] = [:]
    for seq in UInt64(1)...400 {
      let payloadSize = Int(seq * 37 % 3000)
      let stored = event(seq, payloadSize: payloadSize)
      ring.append(stored)
      sizes[seq] = stored.storedBytes
      let oldest = seq - UInt64(ring.count) + 1
      #expect(ring.byteCount == (oldest...seq).reduce(0) { $0 + sizes[$1]! })
      #expect(ring.byteCount <= 20_000)
      #expect(ring.covers(after: StreamPosition(major: oldest - 1)))
      #expect(oldest == 1 || !ring.covers(after: StreamPosition(major: oldest - 2)))
      #expect(oldest == 1 || ring.byteCount + sizes[oldest - 1]! > 20_000, "nothing was evicted early")
    }
  }

  @Test func theCountStillBoundsTheRing() {
    var ring = StoredEventRing(capacity: 2, byteBudget: 1 << 30)
    let events = (1...5).map { event(UInt64($0), payloadSize: 10) }
    for stored in events { ring.append(stored) }
    #expect(ring.count == 2)
    #expect(ring.covers(after: StreamPosition(major: 3)) && !ring.covers(after: StreamPosition(major: 2)))
    #expect(ring.byteCount == events[3].storedBytes + events[4].storedBytes)
  }

  @Test func anEventOverTheWholeBudgetIsStillKeptAsTheNewest() {
    var ring = StoredEventRing(capacity: 10, byteBudget: 500)
    ring.append(event(1, payloadSize: 100))
    ring.append(event(2, payloadSize: 8000))
    #expect(ring.count == 1)
    #expect(ring.element(withSeq: 2) != nil)
    #expect(ring.covers(after: StreamPosition(major: 1)) && !ring.covers(after: StreamPosition(major: 0)))
    let small = event(3, payloadSize: 10)
    ring.append(small)
    #expect(ring.count == 1, "the big one goes as soon as a newer event exists")
    #expect(ring.byteCount == small.storedBytes)
  }

  @Test func aResetForgetsTheBytesToo() {
    var ring = StoredEventRing(capacity: 10, byteBudget: 1 << 20)
    for seq in 1...3 { ring.append(event(UInt64(seq), payloadSize: 100)) }
    ring.reset(at: .zero)
    #expect(ring.count == 0 && ring.byteCount == 0 && ring.nextSeq == 4, "its own numbering goes on")
    #expect(ring.covers(after: StreamPosition(major: 0)) && !ring.covers(after: StreamPosition(major: 1)))
  }
}

@Suite struct StoredEventRingUsageTests {
  @Test func usageSaysEventsAndMebibytesOfTheBudget() {
    var ring = StoredEventRing(capacity: 10, byteBudget: 128 << 20)
    #expect(ring.usage == "ring 0 events, 0.0 of 128.0 MiB")
    ring.append(StoredEvent(seq: 1, payload: [UInt8](repeating: 0, count: 3 << 20)))
    #expect(ring.usage == "ring 1 events, 3.0 of 128.0 MiB")
  }
}

@Suite struct StoredEventRingPositionTests {
  func event(_ seq: UInt64, at position: StreamPosition) -> StoredEvent {
    StoredEvent(seq: seq, position: position, payload: Array("{}".utf8))
  }

  @Test func findsTheFirstEventAfterAnyPositionAndWhereReplaysBegin() {
    var ring = StoredEventRing(capacity: 3, byteBudget: 1 << 20, at: StreamPosition(major: 100))
    let positions = [(200, 1), (200, 2), (300, 1), (450, 1)].map { StreamPosition(major: $0.0, minor: $0.1) }
    for (index, position) in positions.enumerated() { ring.append(event(UInt64(index + 1), at: position)) }
    #expect(ring.floor == positions[0] && ring.oldest?.seq == 2)
    #expect(ring.firstSeq(after: positions[0]) == 2)
    #expect(ring.firstSeq(after: StreamPosition(major: 300)) == 3, "a boundary before a transaction")
    #expect(ring.firstSeq(after: StreamPosition(major: 350)) == 4)
    #expect(ring.firstSeq(after: positions[3]) == 5, "nothing after the newest: the next number")
    #expect(ring.position(before: 0) == positions[3])
    #expect(ring.position(before: 2) == positions[1])
    #expect(ring.position(before: 3) == positions[0] && ring.position(before: 9) == positions[0])
    #expect(ring.covers(after: positions[0]) && !ring.covers(after: StreamPosition(major: 200)))
  }
}
