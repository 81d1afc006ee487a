import DaemonSupport

/// The state of notifyd's LISTEN connection to PostgreSQL: when to (re)connect,
/// and when a quiet connection must prove it is alive.
///
/// A server that vanished without closing the socket (a dead host, a cut
/// network) is noticed within the liveness interval plus the timeout: a
/// connection quiet for the interval is sent a probe (`SELECT 1`), and one
/// whose probe goes unanswered for the timeout counts as lost.
public struct DatabaseLinkStateMachine {
  public enum State: Equatable, Sendable {
    /// No connection; the next attempt is due at `nextAttemptAt`.
    /// Can transition to: listening.
    case disconnected(nextAttemptAt: Duration)
    /// LISTEN is in place. `lastHeard`: when the server last sent anything;
    /// `probeSentAt`: when an unanswered probe went out.
    /// Can transition to: disconnected.
    case listening(lastHeard: Duration, probeSentAt: Duration?)
  }

  public enum Action: Equatable, Sendable {
    case none
    /// An attempt is due: connect and LISTEN, then report how it went.
    case connect
    /// The connection has been quiet for the interval: send a probe.
    case sendProbe
    /// The probe went unanswered for the timeout: close the connection (the
    /// next tick reconnects at once).
    case declareLost
  }

  public let livenessInterval: Duration
  public let livenessTimeout: Duration
  public private(set) var state: State = .disconnected(nextAttemptAt: .zero)
  private var backoff: Backoff

  public init(livenessInterval: Duration, livenessTimeout: Duration, backoff: Backoff = .reconnectToDatabase) {
    self.livenessInterval = livenessInterval
    self.livenessTimeout = livenessTimeout
    self.backoff = backoff
  }

  // MARK: Events

  public mutating func connectSucceeded(now: Duration) {
    state = .listening(lastHeard: now, probeSentAt: nil)
    backoff.reset()
  }

  /// Returns how long until the next attempt; its jitter is drawn from `random`.
  public mutating func connectFailed(now: Duration, random: inout some RandomNumberGenerator) -> Duration {
    let wait = backoff.next(using: &random)
    state = .disconnected(nextAttemptAt: now + wait)
    return wait
  }

  /// The connection broke (a read or a send failed). The usual cause is a
  /// database restart, so the next attempt is due at once.
  public mutating func connectionLost(now: Duration) {
    state = .disconnected(nextAttemptAt: now)
    backoff.reset()
  }

  /// The server sent something: the connection is alive.
  public mutating func inputReceived(now: Duration) {
    guard case .listening(_, let probeSentAt) = state else { return }
    state = .listening(lastHeard: now, probeSentAt: probeSentAt)
  }

  /// The probe's result arrived.
  public mutating func probeAnswered() {
    guard case .listening(let lastHeard, _) = state else { return }
    state = .listening(lastHeard: lastHeard, probeSentAt: nil)
  }

  public mutating func tick(now: Duration) -> Action {
    switch state {
    case .disconnected(let nextAttemptAt):
      return now >= nextAttemptAt ? .connect : .none
    case .listening(_, let probeSentAt?):
      guard now - probeSentAt >= livenessTimeout else { return .none }
      connectionLost(now: now)
      return .declareLost
    case .listening(let lastHeard, nil):
      guard now - lastHeard >= livenessInterval else { return .none }
      state = .listening(lastHeard: lastHeard, probeSentAt: now)
      return .sendProbe
    }
  }

  /// When ``tick(now:)`` next has something to do: the loop sleeps until then at most.
  public var nextDeadline: Duration {
    switch state {
    case .disconnected(let nextAttemptAt): nextAttemptAt
    case .listening(_, let probeSentAt?): probeSentAt + livenessTimeout
    case .listening(let lastHeard, nil): lastHeard + livenessInterval
    }
  }
}

extension Backoff {
  /// From 100 ms up to 10 s between attempts, each ±25 %, so that notifyd
  /// restarted together with the database does not hit it in lockstep.
  public static let reconnectToDatabase = Backoff(first: .milliseconds(100), cap: .seconds(10), jitter: 0.75...1.25)
}
