/// What a worker does with the FastCGI connections nginx keeps open
/// (`fastcgi_keep_conn on`): a connection whose request ended cleanly waits
/// idle in epoll, never in a thread; it is served again once it turns
/// readable, freed when nginx closes it, and closed at once when the worker
/// drains. Pure: the worker's I/O acts on the decisions.
///
/// Idle connections are bounded by `limit` (nginx keeps at most its
/// `keepalive` count per nginx worker; beyond that, closing is what nginx
/// would do anyway). A connection is known by `Token` while it is idle only.
public struct KeptConnections<Token: Hashable & Sendable>: Sendable {
  public enum Ending: Equatable, Sendable {
    /// Wait in the idle set for the next request.
    case watch
    case close
    /// Draining, but nginx has sent the next request already: serve it
    /// (through the idle set, which reports it at once), then close. Closing
    /// now would fail it (nginx retries no POST it has sent).
    case serveNext
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
  private var idle: Set<Token> = []
  public private(set) var isDraining = false

  public init(limit: Int) {
    self.limit = limit
  }

  public var idleCount: Int { idle.count }

  /// A request on the connection is over. `keepAsked`: nginx set the keep
  /// flag; `endedCleanly`: its body was read to its end and its answer
  /// written, so the next bytes on the connection are the next request;
  /// `nextRequestWaiting`: those bytes have arrived.
  public mutating func requestEnded(
    _ token: Token, keepAsked: Bool, endedCleanly: Bool, nextRequestWaiting: Bool = false
  ) -> Ending {
    guard keepAsked, endedCleanly else { return .close }
    if isDraining {
      guard nextRequestWaiting else { return .close }
      idle.insert(token)
      return .serveNext
    }
    guard idle.count < limit else { return .close }
    idle.insert(token)
    return .watch
  }

  /// epoll reported the idle connection; a hang-up wins over readability,
  /// since nginx's close makes the socket readable too.
  public mutating func woke(_ token: Token, readable: Bool, hungUp: Bool) -> Wake {
    guard idle.remove(token) != nil else { return .ignore }
    return hungUp || !readable ? .free : .serve
  }

  /// The worker stops: every idle connection is to be closed now, and none
  /// is kept from here on; except those whose next request has arrived
  /// (`waiting`), which stay to be served once, then closed.
  public mutating func drain(waiting: Set<Token> = []) -> [Token] {
    isDraining = true
    let closing = idle.subtracting(waiting)
    idle.subtract(closing)
    return Array(closing)
  }
}
