import ChangePublisher
import DaemonSupport
import Testing

/// A repeatable random source (xorshift64*), so that a failing run can be repeated.
struct RepeatableRandom: RandomNumberGenerator {
  var state: UInt64
  mutating func next() -> UInt64 {
    state ^= state >> 12
    state ^= state << 25
    state ^= state >> 27
    return state &* 0x2545_F491_4F6C_DD1D
  }
}

extension DatabaseLinkStateMachine {
  /// A failed attempt whose wait has no jitter.
  mutating func connectFailed(now: Duration) -> Duration {
    var random = SystemRandomNumberGenerator()
    return connectFailed(now: now, random: &random)
  }
}

@Suite struct DatabaseLinkReconnectTests {
  func link() -> DatabaseLinkStateMachine {
    DatabaseLinkStateMachine(
      livenessInterval: .seconds(15), livenessTimeout: .seconds(10),
      backoff: Backoff(first: .milliseconds(100), cap: .seconds(10), jitter: 1...1))
  }

  @Test func theFirstAttemptIsDueAtOnce() {
    var link = link()
    #expect(link.tick(now: .seconds(1)) == .connect)
  }

  @Test func failedAttemptsWaitTwiceAsLongEachTimeUpToTheCap() {
    var link = link()
    let waits = (0..<10).map { _ in link.connectFailed(now: .seconds(100)) }
    #expect(
      waits == [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000].map { Duration.milliseconds($0) })
    #expect(link.state == .disconnected(nextAttemptAt: .seconds(110)))
  }

  @Test func reconnectingWaitsAQuarterMoreOrLessThanTheDelay() {
    var link = DatabaseLinkStateMachine(livenessInterval: .seconds(15), livenessTimeout: .seconds(10))
    var random = RepeatableRandom(state: 13)
    var waits: [Duration] = []
    for _ in 0..<8 { waits.append(link.connectFailed(now: .zero, random: &random)) }
    let delays = [100, 200, 400, 800, 1600, 3200, 6400, 10_000].map { Duration.milliseconds($0) }
    for (wait, delay) in zip(waits, delays) {
      #expect(wait >= delay * 0.75 && wait <= delay * 1.25)
    }
    #expect(Set(waits.indices.map { waits[$0] / delays[$0] }).count > 1, "the factor varies")
  }

  @Test func theNextAttemptIsDueWhenTheWaitIsOver() {
    var link = link()
    _ = link.connectFailed(now: .seconds(5))
    #expect(link.nextDeadline == .seconds(5) + .milliseconds(100))
    #expect(link.tick(now: .seconds(5) + .milliseconds(99)) == .none)
    #expect(link.tick(now: .seconds(5) + .milliseconds(100)) == .connect)
  }

  @Test func aConnectionStartsTheBackoffOver() {
    var link = link()
    for _ in 0..<4 { _ = link.connectFailed(now: .zero) }
    link.connectSucceeded(now: .seconds(1))
    #expect(link.state == .listening(lastHeard: .seconds(1), probeSentAt: nil))
    #expect(link.connectFailed(now: .seconds(2)) == .milliseconds(100))
  }

  @Test func aLostConnectionIsRetriedAtOnce() {
    var link = link()
    for _ in 0..<4 { _ = link.connectFailed(now: .zero) }
    link.connectSucceeded(now: .seconds(1))
    link.connectionLost(now: .seconds(50))
    #expect(link.nextDeadline == .seconds(50))
    #expect(link.tick(now: .seconds(50)) == .connect)
    #expect(link.connectFailed(now: .seconds(50)) == .milliseconds(100))
  }
}

@Suite struct DatabaseLinkLivenessTests {
  /// Listening since t = 0 s, probed after 15 s of quiet, lost 10 s after an unanswered probe.
  func listening() -> DatabaseLinkStateMachine {
    var link = DatabaseLinkStateMachine(livenessInterval: .seconds(15), livenessTimeout: .seconds(10))
    link.connectSucceeded(now: .zero)
    return link
  }

  @Test func aQuietConnectionIsProbedAfterTheInterval() {
    var link = listening()
    #expect(link.nextDeadline == .seconds(15))
    #expect(link.tick(now: .seconds(15) - .milliseconds(1)) == .none)
    #expect(link.tick(now: .seconds(15)) == .sendProbe)
    #expect(link.state == .listening(lastHeard: .zero, probeSentAt: .seconds(15)))
    #expect(link.tick(now: .seconds(16)) == .none, "one probe at a time")
  }

  @Test func anUnansweredProbeLosesTheConnectionAfterTheTimeout() {
    var link = listening()
    _ = link.tick(now: .seconds(15))
    #expect(link.nextDeadline == .seconds(25))
    #expect(link.tick(now: .seconds(25) - .milliseconds(1)) == .none)
    #expect(link.tick(now: .seconds(25)) == .declareLost)
    #expect(link.state == .disconnected(nextAttemptAt: .seconds(25)))
    #expect(link.tick(now: .seconds(25)) == .connect)
  }

  @Test func inputPostponesTheProbe() {
    var link = listening()
    link.inputReceived(now: .seconds(10))
    #expect(link.nextDeadline == .seconds(25))
    #expect(link.tick(now: .seconds(15)) == .none)
    #expect(link.tick(now: .seconds(25)) == .sendProbe)
  }

  @Test func anAnswerClearsTheProbe() {
    var link = listening()
    _ = link.tick(now: .seconds(15))
    link.inputReceived(now: .seconds(16))
    link.probeAnswered()
    #expect(link.state == .listening(lastHeard: .seconds(16), probeSentAt: nil))
    #expect(link.tick(now: .seconds(25)) == .none)
    #expect(link.tick(now: .seconds(31)) == .sendProbe)
  }

  @Test func inputWithoutTheAnswerLeavesTheProbeOutstanding() {
    var link = listening()
    _ = link.tick(now: .seconds(15))
    link.inputReceived(now: .seconds(20))
    #expect(link.nextDeadline == .seconds(25))
    #expect(link.tick(now: .seconds(25)) == .declareLost)
  }

  @Test func nothingIsHeardOrAnsweredWhileDisconnected() {
    var link = DatabaseLinkStateMachine(
      livenessInterval: .seconds(15), livenessTimeout: .seconds(10),
      backoff: Backoff(first: .milliseconds(100), cap: .seconds(10), jitter: 1...1))
    _ = link.connectFailed(now: .zero)
    link.inputReceived(now: .seconds(1))
    link.probeAnswered()
    #expect(link.state == .disconnected(nextAttemptAt: .milliseconds(100)))
  }
}
