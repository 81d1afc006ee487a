import ChangeStream
import Testing

struct Numbered: Sequenced, Equatable {
  let seq: UInt64
}

@Suite struct ChangeRingTests {
  @Test func returnsEverythingAfterAPositionItStillHolds() {
    var ring = ChangeRing<Numbered>(capacity: 3)
    for seq in 1...5 { ring.append(Numbered(seq: UInt64(seq))) }
    #expect(ring.events(after: 5) == [])
    #expect(ring.events(after: 3) == [Numbered(seq: 4), Numbered(seq: 5)])
    #expect(ring.events(after: 2) == [Numbered(seq: 3), Numbered(seq: 4), Numbered(seq: 5)])
  }

  @Test func saysWhenAPositionIsGone() {
    var ring = ChangeRing<Numbered>(capacity: 3)
    for seq in 1...5 { ring.append(Numbered(seq: UInt64(seq))) }
    #expect(ring.events(after: 1) == nil)
    #expect(ring.events(after: 6) == nil, "a position from the future")
  }

  @Test func resetContinuesFromTheGivenPosition() {
    var ring = ChangeRing<Numbered>(capacity: 3)
    ring.append(Numbered(seq: 1))
    ring.reset(newestSeq: 10)
    #expect(ring.events(after: 10) == [])
    #expect(ring.events(after: 1) == nil)
    ring.append(Numbered(seq: 11))
    #expect(ring.events(after: 10) == [Numbered(seq: 11)])
  }
}

@Suite struct ChangeRingLookupTests {
  @Test func findsEventsBySequenceNumberWhileHeld() {
    var ring = ChangeRing<Numbered>(capacity: 3)
    for seq in 1...5 { ring.append(Numbered(seq: UInt64(seq))) }
    #expect(ring.element(withSeq: 2) == nil)
    #expect(ring.element(withSeq: 3) == Numbered(seq: 3))
    #expect(ring.element(withSeq: 5) == Numbered(seq: 5))
    #expect(ring.element(withSeq: 6) == nil)
    #expect(ring.covers(after: 2) && ring.covers(after: 5))
    #expect(!ring.covers(after: 1) && !ring.covers(after: 6))
  }
}
