/// Whether the pool's database connections fit the server's limits: each
/// accepting thread holds one connection, and so does each worker's catalog
/// reader; during a reload two generations hold theirs at once, so the pool
/// needs workers × (threads + 1) × 2, plus pbp-notifyd's LISTEN connection, within what
/// `max_connections` leaves to ordinary roles (and within the role's own
/// `CONNECTION LIMIT`, when it has one).
///
/// With several app hosts on one database the others' pools are open
/// already: what other sessions hold when a pool starts (`heldByOthers`, and
/// of the same role, `heldByRole`) is not left for it. A pool's own
/// connections are never in those counts (they are measured before it opens
/// any, and a reload keeps the figures of the start).
///
/// pbp-fcgi refuses to start (or to reload) when they do not fit, rather than
/// sizing itself down: a pool smaller than configured would be a surprise
/// found only under load, while the message names the numbers to change.
public struct ConnectionBudget: Equatable, Sendable {
  public var maxConnections: Int
  /// `superuser_reserved_connections` (and PostgreSQL 16's `reserved_connections`): not for ordinary roles.
  public var reservedConnections: Int
  /// The API role's `rolconnlimit`; nil when unlimited (-1).
  public var roleConnectionLimit: Int?
  /// Client connections other sessions held when the pool started (other
  /// hosts' pools and notifyd LISTEN connections, anyone else's).
  public var heldByOthers: Int
  /// Those of them logged in as the API's role, which share its `CONNECTION LIMIT`.
  public var heldByRole: Int
  /// Connections of PBP that are not the pool's: pbp-notifyd's one LISTEN connection.
  public static let otherConnections = 1

  public init(
    maxConnections: Int, reservedConnections: Int, roleConnectionLimit: Int? = nil, heldByOthers: Int = 0,
    heldByRole: Int = 0
  ) {
    self.maxConnections = maxConnections
    self.reservedConnections = reservedConnections
    self.roleConnectionLimit = roleConnectionLimit
    self.heldByOthers = heldByOthers
    self.heldByRole = heldByRole
  }

  /// The most connections the pool may hold, during a reload included: each
  /// worker's accepting threads and its catalog reader (the threads that
  /// answer polls hold none).
  public static func poolNeeds(workers: Int, threads: Int) -> Int { workers * (threads + 1) * 2 }

  /// Why `workers` × `threads` do not fit, or nil when they do.
  public func refusal(workers: Int, threads: Int) -> String? {
    let needed = Self.poolNeeds(workers: workers, threads: threads)
    let available = maxConnections - reservedConnections
    if needed + Self.otherConnections + heldByOthers > available {
      let others = heldByOthers > 0 ? ", and \(heldByOthers) held now by other sessions (other hosts' pools?)" : ""
      return """
        \(workers) workers × (\(threads) threads + 1) need up to \(needed) database connections (twice the pool, \
        during a reload) plus \(Self.otherConnections) for pbp-notifyd\(others), but the server allows \(available) \
        (max_connections \(maxConnections) minus \(reservedConnections) reserved): lower --workers or \
        --threads, or raise max_connections
        """
    }
    if let roleConnectionLimit, needed + heldByRole > roleConnectionLimit {
      let others = heldByRole > 0 ? ", \(heldByRole) of which other sessions of the role hold now" : ""
      return """
        \(workers) workers × (\(threads) threads + 1) need up to \(needed) database connections (twice the pool, \
        during a reload), but the API's role has CONNECTION LIMIT \(roleConnectionLimit)\(others): lower --workers \
        or --threads, or raise the role's limit
        """
    }
    return nil
  }
}
