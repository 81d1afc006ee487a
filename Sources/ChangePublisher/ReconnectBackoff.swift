/// Capped exponential backoff for reconnecting to PostgreSQL.
public struct ReconnectBackoff: Equatable, Sendable {
  public static let first: Duration = .milliseconds(100)
  public static let cap: Duration = .seconds(10)
  /// The factor a wait is multiplied by, drawn per attempt, so that notifyd
  /// restarted together with the database does not hit it in lockstep.
  public static let jitter: ClosedRange<Double> = 0.75...1.25

  /// The wait before the next attempt, before jitter.
  public private(set) var delay: Duration = first

  public init() {}

  /// An attempt failed: the wait before the next (`jitter` drawn from
  /// ``jitter``); the delay after it doubles, up to the cap.
  public mutating func failed(jitter: Double) -> Duration {
    let wait = delay * jitter
    delay = min(delay * 2, Self.cap)
    return wait
  }

  /// A connection was made: the next failure starts over from the first delay.
  public mutating func reset() {
    delay = Self.first
  }
}
