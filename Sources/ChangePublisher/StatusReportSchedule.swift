/// When notifyd reports its status (systemd's STATUS and a log line): at most
/// once an interval, and only when it changed since the last report, so that
/// the figures stay current without an idle daemon filling its log.
public struct StatusReportSchedule: Sendable {
  public let interval: Duration
  public private(set) var nextDue: Duration
  private var lastReported: String?

  public init(interval: Duration, now: Duration) {
    self.interval = interval
    self.nextDue = now + interval
  }

  /// Whether the status is to be looked at (and so computed) at `now`.
  public func isDue(now: Duration) -> Bool { now >= nextDue }

  /// The status when due: whether to report it. The next check is one interval later.
  public mutating func report(_ status: String, now: Duration) -> Bool {
    nextDue = now + interval
    guard status != lastReported else { return false }
    lastReported = status
    return true
  }
}
