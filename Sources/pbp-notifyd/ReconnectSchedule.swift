import DaemonSupport

/// Capped exponential backoff with jitter for reconnecting to PostgreSQL.
struct ReconnectSchedule {
  static let first: Duration = .milliseconds(100)
  static let cap: Duration = .seconds(10)

  private var delay: Duration = first
  private(set) var nextAttempt: Duration = .zero

  mutating func succeeded() { delay = Self.first }

  /// The connection just dropped: try again at once, since a restart is the usual cause.
  mutating func lost() {
    delay = Self.first
    nextAttempt = MonotonicClock.now()
  }

  /// An attempt failed: wait the current delay (with ±25 % jitter), then double it.
  mutating func failed() -> Duration {
    let jitter = Double.random(in: 0.75...1.25)
    let wait = delay * jitter
    nextAttempt = MonotonicClock.now() + wait
    delay = min(delay * 2, Self.cap)
    return wait
  }
}
