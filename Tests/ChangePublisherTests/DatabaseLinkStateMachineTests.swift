import ChangePublisher
import Testing

@Suite struct DatabaseLinkReconnectTests {
  func link() -> DatabaseLinkStateMachine {
    DatabaseLinkStateMachine(livenessInterval: .seconds(15), livenessTimeout: .seconds(10))
  }

  @Test func theFirstAttemptIsDueAtOnce() {
    var link = link()
    #expect(link.tick(now: .seconds(1)) == .connect)
  }

  @Test func failedAttemptsWaitTwiceAsLongEachTimeUpToTheCap() {
    var link = link()
    let waits = (0..<10).map { _ in link.connectFailed(now: .seconds(100), jitter: 1) }
    #expect(
      waits == [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000].map { Duration.milliseconds($0) })
    #expect(link.state == .disconnected(nextAttemptAt: .seconds(110)))
  }

  @Test func jitterScalesTheWaitButNotTheNextDelay() {
    var link = link()
    #expect(link.connectFailed(now: .zero, jitter: 0.75) == .milliseconds(75))
    #expect(link.connectFailed(now: .zero, jitter: 1.25) == .milliseconds(250))
  }

  @Test func theNextAttemptIsDueWhenTheWaitIsOver() {
    var link = link()
    _ = link.connectFailed(now: .seconds(5), jitter: 1)
    #expect(link.nextDeadline == .seconds(5) + .milliseconds(100))
    #expect(link.tick(now: .seconds(5) + .milliseconds(99)) == .none)
    #expect(link.tick(now: .seconds(5) + .milliseconds(100)) == .connect)
  }

  @Test func aConnectionStartsTheBackoffOver() {
    var link = link()
    for _ in 0..<4 { _ = link.connectFailed(now: .zero, jitter: 1) }
    link.connectSucceeded(now: .seconds(1))
    #expect(link.backoff.delay == ReconnectBackoff.first)
    #expect(link.state == .listening(lastHeard: .seconds(1), probeSentAt: nil))
  }

  @Test func aLostConnectionIsRetriedAtOnce() {
    var link = link()
    for _ in 0..<4 { _ = link.connectFailed(now: .zero, jitter: 1) }
    link.connectSucceeded(now: .seconds(1))
    link.connectionLost(now: .seconds(50))
    #expect(link.nextDeadline == .seconds(50))
    #expect(link.tick(now: .seconds(50)) == .connect)
    #expect(link.connectFailed(now: .seconds(50), jitter: 1) == .milliseconds(100))
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
    var link = DatabaseLinkStateMachine(livenessInterval: .seconds(15), livenessTimeout: .seconds(10))
    _ = link.connectFailed(now: .zero, jitter: 1)
    link.inputReceived(now: .seconds(1))
    link.probeAnswered()
    #expect(link.state == .disconnected(nextAttemptAt: .milliseconds(100)))
  }
}
