import Testing
import WorkerPool

@Suite struct KeptConnectionsTests {
  typealias Machine = KeptConnections<Int>

  @Test func aCleanlyFinishedRequestThatAskedToKeepWaitsIdle() {
    var kept = Machine(limit: 4)
    #expect(kept.requestEnded(1, keepAsked: true, endedCleanly: true, now: .zero) == .watch)
    #expect(kept.idleCount == 1)
  }

  @Test func aRequestThatDidNotAskToKeepOrEndedBadlyIsClosed() {
    var kept = Machine(limit: 4)
    #expect(
      kept.requestEnded(1, keepAsked: false, endedCleanly: true, now: .zero) == .close, "no FCGI_KEEP_CONN: close")
    #expect(
      kept.requestEnded(2, keepAsked: true, endedCleanly: false, now: .zero) == .close,
      "a body left unread or a failed write: what follows on the connection cannot be trusted")
    #expect(kept.idleCount == 0)
  }

  @Test func readableIdleConnectionIsServedOnceAndLeavesTheIdleSet() {
    var kept = Machine(limit: 4)
    _ = kept.requestEnded(1, keepAsked: true, endedCleanly: true, now: .zero)
    #expect(kept.woke(1, readable: true, hungUp: false) == .serve)
    #expect(kept.idleCount == 0)
    #expect(kept.woke(1, readable: true, hungUp: false) == .ignore, "not idle any more: another thread has it")
  }

  @Test func anIdleConnectionNginxClosedIsFreedEvenIfReadable() {
    var kept = Machine(limit: 4)
    _ = kept.requestEnded(1, keepAsked: true, endedCleanly: true, now: .zero)
    // nginx's close reads as readable (EOF) and hung up together.
    #expect(kept.woke(1, readable: true, hungUp: true) == .free)
    #expect(kept.idleCount == 0)
    #expect(kept.woke(7, readable: false, hungUp: true) == .ignore, "unknown: nothing to free")
  }

  @Test func theIdleSetIsBounded() {
    var kept = Machine(limit: 2)
    #expect(kept.requestEnded(1, keepAsked: true, endedCleanly: true, now: .zero) == .watch)
    #expect(kept.requestEnded(2, keepAsked: true, endedCleanly: true, now: .zero) == .watch)
    // Closing it could meet a request nginx is sending on it (a POST it
    // would not retry): it is released for nginx to close.
    #expect(kept.requestEnded(3, keepAsked: true, endedCleanly: true, now: .zero) == .release, "over the limit")
    #expect(kept.expired(now: .seconds(1)).isEmpty)
    #expect(kept.expired(now: .seconds(2)) == [3], "closed when nginx left it the grace")
    _ = kept.woke(1, readable: true, hungUp: false)
    #expect(
      kept.requestEnded(4, keepAsked: true, endedCleanly: true, now: .zero) == .watch, "room again once one is taken")
  }

  @Test func aDrainReleasesEveryIdleConnectionAtOnceForNginxToClose() {
    var kept = Machine(limit: 8, releaseGrace: .seconds(2))
    _ = kept.requestEnded(1, keepAsked: true, endedCleanly: true, now: .zero)
    _ = kept.requestEnded(2, keepAsked: true, endedCleanly: true, now: .zero)
    _ = kept.requestEnded(3, keepAsked: true, endedCleanly: true, now: .zero)
    _ = kept.woke(3, readable: true, hungUp: false)
    #expect(
      Set(kept.drain(now: .seconds(10))) == [1, 2],
      "the idle ones are released, not closed: nginx may be sending on one just now (and retries no POST)")
    #expect(kept.isDraining)
    #expect(kept.idleCount == 2, "watched until nginx closes them")
    #expect(kept.woke(1, readable: true, hungUp: true) == .free, "nginx dropped it")
    #expect(kept.drain(now: .seconds(10)).isEmpty)
  }

  @Test func whileDrainingARequestNginxSentOnAReleasedConnectionIsServedAndItIsReleasedAgain() {
    var kept = Machine(limit: 8, releaseGrace: .seconds(2))
    _ = kept.requestEnded(1, keepAsked: true, endedCleanly: true, now: .zero)
    _ = kept.drain(now: .seconds(1))
    #expect(
      kept.woke(1, readable: true, hungUp: false) == .serve, "nginx had sent a request before it read the release")
    #expect(kept.requestEnded(1, keepAsked: true, endedCleanly: true, now: .seconds(2)) == .release)
    #expect(kept.requestEnded(2, keepAsked: true, endedCleanly: true, now: .seconds(2)) == .release)
    #expect(
      kept.requestEnded(3, keepAsked: false, endedCleanly: true, now: .seconds(2)) == .close,
      "not kept: nginx sends nothing more on it")
    #expect(kept.requestEnded(4, keepAsked: true, endedCleanly: false, now: .seconds(2)) == .close)
  }

  @Test func aReleasedConnectionNginxDoesNotCloseIsClosedAfterTheGrace() {
    var kept = Machine(limit: 8, releaseGrace: .seconds(2))
    #expect(kept.nextDeadline == nil)
    _ = kept.requestEnded(1, keepAsked: true, endedCleanly: true, now: .zero)
    _ = kept.drain(now: .seconds(10))
    _ = kept.requestEnded(2, keepAsked: true, endedCleanly: true, now: .seconds(11))
    #expect(kept.nextDeadline == .seconds(12))
    #expect(kept.expired(now: .seconds(11)).isEmpty)
    #expect(kept.expired(now: .seconds(12)) == [1])
    #expect(kept.idleCount == 1)
    #expect(kept.woke(1, readable: false, hungUp: true) == .ignore, "closed already")
    #expect(kept.expired(now: .seconds(13)) == [2])
    #expect(kept.idleCount == 0)
    #expect(kept.nextDeadline == nil)
  }

  @Test func aReleasedConnectionThatIsServedAgainHasANewGrace() {
    var kept = Machine(limit: 8, releaseGrace: .seconds(2))
    _ = kept.requestEnded(1, keepAsked: true, endedCleanly: true, now: .zero)
    _ = kept.drain(now: .zero)
    _ = kept.woke(1, readable: true, hungUp: false)
    #expect(kept.expired(now: .seconds(5)).isEmpty, "being served: not released")
    _ = kept.requestEnded(1, keepAsked: true, endedCleanly: true, now: .seconds(5))
    #expect(kept.expired(now: .seconds(6)).isEmpty)
    #expect(kept.expired(now: .seconds(7)) == [1])
  }
}
