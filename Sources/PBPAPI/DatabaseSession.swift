import PostgresClient

/// The database connection of one accepting thread, opened on first use and
/// replaced after it breaks (a PostgreSQL restart, a killed backend).
///
/// Threading rule: owned by its thread, never shared.
public final class DatabaseSession {
  private let conninfo: String
  /// Bounds every statement, so that a locked table or a stuck server ends in
  /// a 503 rather than a request that never ends.
  private let statementTimeoutMilliseconds: Int
  /// Whom the connection acts for between requests (the anonymous role and
  /// its claims, where one is configured), set for the session when it
  /// connects: a request of that identity then runs its statement alone,
  /// without a transaction-local setup first. In a GET one row at 16
  /// connections the setup was about a fifth of PostgreSQL's and of the
  /// libpq wrapper's time. PBP's statements never change the session's
  /// role or claims; the transaction-local ones of other identities revert
  /// to these at every commit or rollback.
  private let restingIdentity: RequestIdentity?
  /// What the open connection rests as: nil if it has no resting identity
  /// (none configured, or PostgreSQL refused it, e.g. a role not granted:
  /// then every request sets its own, as for any identity, and is refused
  /// with the clear error that gives).
  private var connectionRestsAs: RequestIdentity?
  private var connection: PostgresConnection? {
    didSet {
      let delta = Int64(connection == nil ? 0 : 1) - Int64(oldValue == nil ? 0 : 1)
      if delta != 0 { onConnectionCountChange(delta) }
    }
  }
  /// The catalog as this thread last read it: taking the shared one's lock
  /// for every request of every thread showed up contended in profiles.
  var catalogSnapshot: TableCatalog.Snapshot?
  /// Told +1 and -1 as the connection opens and closes (for the scoreboard).
  private let onConnectionCountChange: (Int64) -> Void

  public init(
    conninfo: String, statementTimeoutMilliseconds: Int = 10_000, restingIdentity: RequestIdentity? = nil,
    onConnectionCountChange: @escaping (Int64) -> Void = { _ in }
  ) {
    self.conninfo = conninfo
    self.statementTimeoutMilliseconds = statementTimeoutMilliseconds
    self.restingIdentity = restingIdentity
    self.onConnectionCountChange = onConnectionCountChange
  }

  /// The open connection, or a new one if it broke. Before a write it asks
  /// the kernel whether the server has ended the session meanwhile (a write
  /// is not retried); a read skips that system call, since a read that meets
  /// a closed session is retried on a new connection anyway.
  func connected(beforeWrite: Bool = true) throws(APIError) -> PostgresConnection {
    if let connection, !(beforeWrite ? connection.hasUnsolicitedInput : connection.isKnownBroken) {
      return connection
    }
    connection = nil
    do {
      let fresh = try PostgresConnection(conninfo: conninfo)
      try fresh.executeSimple("SET statement_timeout = \(statementTimeoutMilliseconds)")
      connectionRestsAs = nil
      if let restingIdentity {
        do {
          try fresh.execute(RequestIdentity.sessionSetupSQL, [restingIdentity.role, restingIdentity.claims])
          connectionRestsAs = restingIdentity
        } catch let error where !error.isConnectionProblem {
          // Refused (the role is not granted): requests set it themselves and are refused clearly.
        }
      }
      connection = fresh
      return fresh
    } catch {
      throw .databaseUnavailable()
    }
  }

  /// After a table changed under a prepared statement whose result it
  /// changes ("cached plan must not change result type"): the statements are
  /// prepared again on next use.
  func forgetPreparedStatements() {
    guard let connection else { return }
    do {
      try connection.forgetPreparedStatements()
    } catch {
      self.connection = nil
    }
  }

  /// Runs `statement` on the connection, acting as `identity` when one is
  /// given (see ``ActingConnection``). A statement that only reads is tried
  /// once more on a new connection when the old one turns out to be broken,
  /// since a restart since the last use is the usual cause; a write is not,
  /// because it may have run.
  func run<T>(
    readOnly: Bool, as identity: RequestIdentity? = nil, _ statement: (ActingConnection) throws -> T
  ) throws(APIError) -> T {
    var attempts = readOnly ? 2 : 1
    while true {
      attempts -= 1
      let current = try connected(beforeWrite: !readOnly)
      do {
        return try statement(ActingConnection(connection: current, identity: identity, restsAs: connectionRestsAs))
      } catch let error as PostgresError where error.isConnectionProblem {
        connection = nil
        if attempts == 0 { throw APIError(databaseFailure: error) }
      } catch {
        throw APIError(databaseFailure: error)
      }
    }
  }
}

/// A connection lent to one statement of a request: with an identity other
/// than the one the connection rests as, the statement runs in one
/// transaction (and one round trip) after its role and claims are set for
/// that transaction alone, so the pooled connection keeps nothing of the
/// request. Without an identity it acts as the login role.
struct ActingConnection {
  let connection: PostgresConnection
  let identity: RequestIdentity?
  let restsAs: RequestIdentity?

  @discardableResult
  func execute(_ sql: String, _ parameters: [String?] = []) throws(PostgresError) -> PostgresResult {
    if identity == restsAs { return try connection.execute(sql, parameters) }
    guard let identity else {
      return try connection.execute(after: RequestIdentity.setupSQL, ["none", ""], sql, parameters)
    }
    return try connection.execute(
      after: RequestIdentity.setupSQL, [identity.role, identity.claims], sql, parameters)
  }
}
