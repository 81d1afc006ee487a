/// When a worker reads PostgreSQL's catalog again: a description is kept for
/// `maximumAge`, so that a table watched, unwatched or altered meanwhile is
/// seen within it; and a request that the description cannot serve (a table
/// or column it does not know, a statement that failed on a changed table)
/// reads it again at once, unless it is younger than `missInterval`, so that
/// a client asking for tables that do not exist costs the database at most
/// one small query per interval.
public struct CatalogRefreshPolicy: Equatable, Sendable {
  public var maximumAge: Duration
  public var missInterval: Duration

  public init(maximumAge: Duration = .seconds(5), missInterval: Duration = .milliseconds(50)) {
    self.maximumAge = maximumAge
    self.missInterval = missInterval
  }

  public enum Reason: Equatable, Sendable {
    /// An ordinary request.
    case use
    /// A request the description failed.
    case miss
  }

  /// Whether a description read at `loadedAt` (nil: never read) must be read again now.
  public func mustReload(loadedAt: ContinuousClock.Instant?, now: ContinuousClock.Instant, reason: Reason) -> Bool {
    guard let loadedAt else { return true }
    let age = now - loadedAt
    switch reason {
    case .use: return age >= maximumAge
    case .miss: return age >= missInterval
    }
  }
}
