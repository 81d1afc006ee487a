/// When a worker reads PostgreSQL's catalog again: a description is kept for
/// `maximumAge`, so that a table watched, unwatched or altered meanwhile is
/// seen within it; and a request that the description cannot serve (a table
/// or column it does not know, a statement that failed on a changed table)
/// is served by a reading that began after it (one from before may predate
/// the change that caused it), at once, or when the last reading is
/// `missInterval` old: a client asking for tables that do not exist costs
/// the database at most one small query per interval (its requests wait).
public struct CatalogRefreshPolicy: Equatable, Sendable {
  public var maximumAge: Duration
  public var missInterval: Duration

  public init(maximumAge: Duration = .seconds(5), missInterval: Duration = .milliseconds(50)) {
    self.maximumAge = maximumAge
    self.missInterval = missInterval
  }

  /// Why a request asks for the description.
  public enum Reason: Equatable, Sendable {
    /// An ordinary request: `mustReload` decides.
    case use
    /// A request the description failed: `missReading` decides.
    case miss
  }

  /// Whether a description read at `loadedAt` (nil: never read) must be read
  /// again now for an ordinary request.
  public func mustReload(loadedAt: ContinuousClock.Instant?, now: ContinuousClock.Instant) -> Bool {
    guard let loadedAt else { return true }
    return now - loadedAt >= maximumAge
  }

  /// When the reading that serves a miss at `failedAt` may begin: nil when
  /// the last one (begun at `lastReadingAt`) began since, and serves it.
  public func missReading(lastReadingAt: ContinuousClock.Instant?, failedAt: ContinuousClock.Instant)
    -> ContinuousClock.Instant?
  {
    guard let lastReadingAt else { return failedAt }
    if lastReadingAt >= failedAt { return nil }
    return max(failedAt, lastReadingAt + missInterval)
  }
}
