/// When to tell systemd's watchdog that the loop still turns. Only a turning
/// loop proves liveness: a dead database does not stop the keep-alives.
public struct WatchdogSchedule: Equatable, Sendable {
  public let interval: Duration
  public private(set) var nextDue: Duration

  public init(interval: Duration, now: Duration) {
    self.interval = interval
    self.nextDue = now + interval
  }

  /// Whether a keep-alive is due at `now`; if so, the next falls one interval later.
  public mutating func tick(now: Duration) -> Bool {
    guard now >= nextDue else { return false }
    nextDue += interval
    return true
  }
}
