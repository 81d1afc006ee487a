/// What a worker does with the FastCGI connections nginx keeps open
/// (`fastcgi_keep_conn on`): a connection whose request ended cleanly waits
/// idle in epoll, never in a thread; it is served again once it turns
/// readable, freed when nginx closes it, and released when the worker drains.
/// Pure: the worker's I/O acts on the decisions; time is passed in.
///
/// A drain never closes a kept connection itself: nginx may be sending a
/// request on it at that very moment, and it retries no POST it has sent (a
/// broken pipe failed it). It releases it instead: a record nginx reads, on
/// an idle connection, as a reason to close it (or, at the head of a response
/// to a request it had sent already, skips); then nginx closes it, or sends a
/// request that is served and the connection released again. One that nginx
/// neither closes nor uses within `releaseGrace` is closed.
///
/// Idle connections are bounded by `limit` (size it to nginx's `keepalive`
/// count times its workers): one more is released, as in a drain, since
/// nginx thinks it kept it and may be sending it a request. A connection is
/// known by `Token` while it is idle only.
public struct KeptConnections<Token: Hashable & Sendable>: Sendable {
  public enum Ending: Equatable, Sendable {
    /// Wait in the idle set for the next request.
    case watch
    case close
    /// Draining, or over the limit: ask nginx to drop it (the release
    /// record), and wait in the idle set for nginx's close or for a request
    /// it had sent already.
    case release
  }

  public enum Wake: Equatable, Sendable {
    /// A request is coming: a thread reads it.
    case serve
    /// nginx closed it (or it broke): close our end.
    case free
    /// Not idle (another thread took it, or it was closed): nothing to do.
    case ignore
  }

  public let limit: Int
  public let releaseGrace: Duration
  private var idle: Set<Token> = []
  /// Released connections still idle, and when each is closed if nginx has not closed it.
  private var releasedUntil: [Token: Duration] = [:]
  public private(set) var isDraining = false

  public init(limit: Int, releaseGrace: Duration = .seconds(2)) {
    self.limit = limit
    self.releaseGrace = releaseGrace
  }

  public var idleCount: Int { idle.count }

  /// A request on the connection is over at `now`. `keepAsked`: nginx set
  /// the keep flag; `endedCleanly`: its body was read to its end and its
  /// answer written, so the next bytes on the connection are the next request.
  public mutating func requestEnded(_ token: Token, keepAsked: Bool, endedCleanly: Bool, now: Duration) -> Ending {
    guard keepAsked, endedCleanly else { return .close }
    idle.insert(token)
    if isDraining || idle.count > limit {
      releasedUntil[token] = now + releaseGrace
      return .release
    }
    return .watch
  }

  /// epoll reported the idle connection; a hang-up wins over readability,
  /// since nginx's close makes the socket readable too.
  public mutating func woke(_ token: Token, readable: Bool, hungUp: Bool) -> Wake {
    guard idle.remove(token) != nil else { return .ignore }
    releasedUntil[token] = nil
    return hungUp || !readable ? .free : .serve
  }

  /// The worker stops at `now`: every idle connection is to be released
  /// now, and every connection whose request ends from here on too.
  public mutating func drain(now: Duration) -> [Token] {
    isDraining = true
    let releasing = idle.filter { releasedUntil[$0] == nil }
    for token in releasing { releasedUntil[token] = now + releaseGrace }
    return Array(releasing)
  }

  /// Released connections nginx neither closed nor used in time, to close
  /// now; they leave the idle set.
  public mutating func expired(now: Duration) -> [Token] {
    let closing = releasedUntil.filter { $0.value <= now }.map(\.key)
    for token in closing {
      releasedUntil[token] = nil
      idle.remove(token)
    }
    return closing
  }

  /// When the next released connection is to be closed, if any is waiting.
  public var nextDeadline: Duration? { releasedUntil.values.min() }
}
