import ChangePublisher
import DaemonSupport
import Glibc
import Testing

@Suite struct AcceptThrottleTests {
  let steady = Backoff(first: .milliseconds(50), cap: .milliseconds(200), jitter: 1...1)

  @Test func theListeningSocketIsWatchedUntilDescriptorsRunOut() {
    var throttle = AcceptThrottle(backoff: steady)
    let watched = throttle.watchesListeningSocket(now: .seconds(1))
    #expect(watched)
    #expect(throttle.nextDeadline == nil)
  }

  @Test func outOfDescriptorsItIsLeftAloneForAPauseThatGrowsWhileItLasts() {
    var throttle = AcceptThrottle(backoff: steady)
    let first = throttle.acceptFailed(errno: EMFILE, now: .seconds(1))
    #expect(first == .paused(for: .milliseconds(50), firstInARow: true))
    let duringThePause = throttle.watchesListeningSocket(now: .seconds(1) + .milliseconds(49))
    #expect(!duringThePause)
    #expect(throttle.nextDeadline == .seconds(1) + .milliseconds(50))
    let afterThePause = throttle.watchesListeningSocket(now: .seconds(1) + .milliseconds(50))
    #expect(afterThePause)
    let second = throttle.acceptFailed(errno: ENFILE, now: .seconds(2))
    let third = throttle.acceptFailed(errno: EMFILE, now: .seconds(3))
    let fourth = throttle.acceptFailed(errno: EMFILE, now: .seconds(4))
    #expect(second == .paused(for: .milliseconds(100), firstInARow: false))
    #expect(third == .paused(for: .milliseconds(200), firstInARow: false))
    #expect(fourth == .paused(for: .milliseconds(200), firstInARow: false), "capped")
  }

  @Test func aDescriptorGivenBackEndsThePauseAtOnce() {
    var throttle = AcceptThrottle(backoff: steady)
    _ = throttle.acceptFailed(errno: EMFILE, now: .seconds(1))
    throttle.descriptorReleased()
    let watched = throttle.watchesListeningSocket(now: .seconds(1))
    #expect(watched)
    #expect(throttle.nextDeadline == nil)
  }

  @Test func anAcceptStartsTheNextRunOfPausesFromTheShortest() {
    var throttle = AcceptThrottle(backoff: steady)
    _ = throttle.acceptFailed(errno: EMFILE, now: .seconds(1))
    _ = throttle.acceptFailed(errno: EMFILE, now: .seconds(2))
    let pausesBefore = throttle.accepted()
    let pausesSince = throttle.accepted()
    #expect(pausesBefore == 2, "reports how many pauses the run took")
    #expect(pausesSince == 0)
    let again = throttle.acceptFailed(errno: EMFILE, now: .seconds(3))
    #expect(again == .paused(for: .milliseconds(50), firstInARow: true))
  }

  @Test func otherFailuresLeaveTheSocketWatched() {
    var throttle = AcceptThrottle(backoff: steady)
    for code in [EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED, EPROTO] {
      let decision = throttle.acceptFailed(errno: code, now: .seconds(1))
      #expect(decision == .watching)
    }
    let watched = throttle.watchesListeningSocket(now: .seconds(1))
    #expect(watched)
  }

  @Test func kernelMemoryShortageIsTreatedLikeDescriptorsRunningOut() {
    var throttle = AcceptThrottle(backoff: steady)
    let noBuffers = throttle.acceptFailed(errno: ENOBUFS, now: .seconds(1))
    let noMemory = throttle.acceptFailed(errno: ENOMEM, now: .seconds(2))
    #expect(noBuffers != .watching)
    #expect(noMemory != .watching)
  }
}
