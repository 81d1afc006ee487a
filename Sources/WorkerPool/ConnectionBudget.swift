/// Whether the pool's database connections fit the server's limits: each
/// accepting thread holds one connection, and so does each worker's catalog
/// reader; during a reload two generations hold theirs at once, so the pool
/// needs workers × (threads + 1) × 2, plus pbp-notifyd's LISTEN connection, within what
/// `max_connections` leaves to ordinary roles (and within the role's own
/// `CONNECTION LIMIT`, when it has one).
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
  /// Connections of PBP that are not the pool's: pbp-notifyd's one LISTEN connection.
  public static let otherConnections = 1

  public init(maxConnections: Int, reservedConnections: Int, roleConnectionLimit: Int? = nil) {
    self.maxConnections = maxConnections
    self.reservedConnections = reservedConnections
    self.roleConnectionLimit = roleConnectionLimit
  }

  /// The most connections the pool may hold, during a reload included: each
  /// worker's accepting threads and its catalog reader (the threads that
  /// answer polls hold none).
  public static func poolNeeds(workers: Int, threads: Int) -> Int { workers * (threads + 1) * 2 }

  /// Why `workers` × `threads` do not fit, or nil when they do.
  public func refusal(workers: Int, threads: Int) -> String? {
    let needed = Self.poolNeeds(workers: workers, threads: threads)
    let available = maxConnections - reservedConnections
    if needed + Self.otherConnections > available {
      return """
        \(workers) workers × (\(threads) threads + 1) need up to \(needed) database connections (twice the pool, \
        during a reload) plus \(Self.otherConnections) for pbp-notifyd, but the server allows \(available) \
        (max_connections \(maxConnections) minus \(reservedConnections) reserved): lower --workers or \
        --threads, or raise max_connections
        """
    }
    if let roleConnectionLimit, needed > roleConnectionLimit {
      return """
        \(workers) workers × (\(threads) threads + 1) need up to \(needed) database connections (twice the pool, \
        during a reload), but the API's role has CONNECTION LIMIT \(roleConnectionLimit): lower --workers or \
        --threads, or raise the role's limit
        """
    }
    return nil
  }
}
