import Testing
import WorkerPool

@Suite struct KeptConnectionsTests {
  typealias Machine = KeptConnections<Int>

  @Test func aCleanlyFinishedRequestThatAskedToKeepWaitsIdle() {
    var kept = Machine(limit: 4)
    #expect(kept.requestEnded(1, keepAsked: true, endedCleanly: true) == .watch)
    #expect(kept.idleCount == 1)
  }

  @Test func aRequestThatDidNotAskToKeepOrEndedBadlyIsClosed() {
    var kept = Machine(limit: 4)
    #expect(kept.requestEnded(1, keepAsked: false, endedCleanly: true) == .close, "no FCGI_KEEP_CONN: close")
    #expect(
      kept.requestEnded(2, keepAsked: true, endedCleanly: false) == .close,
      "a body left unread or a failed write: what follows on the connection cannot be trusted")
    #expect(kept.idleCount == 0)
  }

  @Test func readableIdleConnectionIsServedOnceAndLeavesTheIdleSet() {
    var kept = Machine(limit: 4)
    _ = kept.requestEnded(1, keepAsked: true, endedCleanly: true)
    #expect(kept.woke(1, readable: true, hungUp: false) == .serve)
    #expect(kept.idleCount == 0)
    #expect(kept.woke(1, readable: true, hungUp: false) == .ignore, "not idle any more: another thread has it")
  }

  @Test func anIdleConnectionNginxClosedIsFreedEvenIfReadable() {
    var kept = Machine(limit: 4)
    _ = kept.requestEnded(1, keepAsked: true, endedCleanly: true)
    // nginx's close reads as readable (EOF) and hung up together.
    #expect(kept.woke(1, readable: true, hungUp: true) == .free)
    #expect(kept.idleCount == 0)
    #expect(kept.woke(7, readable: false, hungUp: true) == .ignore, "unknown: nothing to free")
  }

  @Test func theIdleSetIsBounded() {
    var kept = Machine(limit: 2)
    #expect(kept.requestEnded(1, keepAsked: true, endedCleanly: true) == .watch)
    #expect(kept.requestEnded(2, keepAsked: true, endedCleanly: true) == .watch)
    #expect(kept.requestEnded(3, keepAsked: true, endedCleanly: true) == .close, "over the limit: closed")
    _ = kept.woke(1, readable: true, hungUp: false)
    #expect(kept.requestEnded(3, keepAsked: true, endedCleanly: true) == .watch, "room again once one is taken")
  }

  @Test func aDrainClosesEveryIdleConnectionAtOnceAndKeepsNoMore() {
    var kept = Machine(limit: 8)
    _ = kept.requestEnded(1, keepAsked: true, endedCleanly: true)
    _ = kept.requestEnded(2, keepAsked: true, endedCleanly: true)
    _ = kept.requestEnded(3, keepAsked: true, endedCleanly: true)
    _ = kept.woke(3, readable: true, hungUp: false)
    #expect(Set(kept.drain()) == [1, 2], "the idle ones; 3 is being served")
    #expect(kept.idleCount == 0)
    #expect(kept.isDraining)
    #expect(kept.requestEnded(3, keepAsked: true, endedCleanly: true) == .close, "served while draining: closed after")
    #expect(kept.drain().isEmpty)
  }

  @Test func whileDrainingARequestNginxHasSentAlreadyIsServedBeforeTheClose() {
    var kept = Machine(limit: 8)
    _ = kept.requestEnded(1, keepAsked: true, endedCleanly: true)
    _ = kept.requestEnded(2, keepAsked: true, endedCleanly: true)
    #expect(kept.drain(waiting: [2]) == [1], "2 has a request in: closing it would fail that request")
    #expect(kept.woke(2, readable: true, hungUp: false) == .serve)
    #expect(kept.requestEnded(2, keepAsked: true, endedCleanly: true, nextRequestWaiting: false) == .close)
    #expect(kept.requestEnded(3, keepAsked: true, endedCleanly: true, nextRequestWaiting: true) == .serveNext)
    #expect(kept.idleCount == 1, "served through the idle set")
    #expect(
      kept.requestEnded(4, keepAsked: false, endedCleanly: true, nextRequestWaiting: true) == .close,
      "not kept: nginx sends nothing more on it")
  }
}
