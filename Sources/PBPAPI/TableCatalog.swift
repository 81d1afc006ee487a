import DaemonSupport
import PostgresClient
import Synchronization

/// The tables the API serves: every table watched with `pbp_watch()` (the
/// catalog that sql/01-pbp.sql keeps), or those of them that `--tables`
/// names, as PostgreSQL's catalog describes them.
///
/// Read with a connection of its own (one per worker, opened on first use):
/// the threads that answer polls hold no connection, and a request thread's
/// connection may be in the middle of its own work. Descriptions are read
/// again as ``CatalogRefreshPolicy`` says.
public final class TableCatalog: Sendable {
  /// One reading of the catalog.
  public struct Snapshot: Sendable {
    public let tables: [String: TableInfo]
    public let loadedAt: ContinuousClock.Instant
    /// The served tables, sorted by name.
    public var sorted: [TableInfo] { tables.values.sorted { $0.name < $1.name } }
  }

  /// nil serves every watched table.
  public let restriction: Set<String>?
  public let policy: CatalogRefreshPolicy
  private let latest = Mutex<Snapshot?>(nil)
  /// Held while reading the catalog: one reader at a time, on the catalog's own connection.
  private let reader: Mutex<DatabaseSession>

  public init(
    conninfo: String, restriction: Set<String>? = nil, policy: CatalogRefreshPolicy = .init(),
    statementTimeoutMilliseconds: Int = 10_000
  ) {
    self.restriction = restriction
    self.policy = policy
    self.reader = Mutex(
      DatabaseSession(conninfo: conninfo, statementTimeoutMilliseconds: statementTimeoutMilliseconds))
  }

  /// The newest description, read again first when the policy says so. While
  /// another thread reads, an ordinary request is served from the older one;
  /// a miss (`now` is when the request failed) waits for a reading that began
  /// after it. When the database cannot be reached the older description
  /// serves, and without one the request fails with 503.
  public func snapshot(
    reason: CatalogRefreshPolicy.Reason = .use, now: ContinuousClock.Instant = .now
  ) throws(APIError) -> Snapshot {
    let current = latest.withLock { $0 }
    if reason == .miss { return try snapshot(afterMissAt: now, current: current) }
    guard policy.mustReload(loadedAt: current?.loadedAt, now: now) else { return current! }
    if let current {
      let fresh = reader.withLockIfAvailable { session in reload(session, unlessNewerThan: current, now: now) }
      return (fresh ?? nil) ?? current
    }
    let outcome = reader.withLock { session in
      Result { () throws(APIError) -> Snapshot in
        if let fresh = reload(session, unlessNewerThan: current, now: now) { return fresh }
        throw .databaseUnavailable()
      }
    }
    return try outcome.get()
  }

  /// A description read since `failedAt`: a table watched or altered just
  /// before the failure is known to it.
  private func snapshot(afterMissAt failedAt: ContinuousClock.Instant, current: Snapshot?) throws(APIError)
    -> Snapshot
  {
    guard let start = policy.missReading(lastReadingAt: current?.loadedAt, failedAt: failedAt) else { return current! }
    Threads.sleep(for: start - ContinuousClock.now)
    let outcome = reader.withLock { session in
      Result { () throws(APIError) -> Snapshot in
        // Another waiting miss may have read it meanwhile.
        if let newest = latest.withLock({ $0 }), newest.loadedAt >= failedAt { return newest }
        if let fresh = read(session, at: .now) { return fresh }
        if let older = latest.withLock({ $0 }) { return older }
        throw .databaseUnavailable()
      }
    }
    return try outcome.get()
  }

  /// Reads the catalog, unless another thread did since `seen` was read;
  /// nil when it cannot be read and nothing else is known.
  private func reload(_ session: DatabaseSession, unlessNewerThan seen: Snapshot?, now: ContinuousClock.Instant)
    -> Snapshot?
  {
    let newest = latest.withLock { $0 }
    if let newest, newest.loadedAt > (seen?.loadedAt ?? newest.loadedAt - .seconds(1)) { return newest }
    return read(session, at: now) ?? newest
  }

  /// Reads the catalog (begun at `now`) and keeps it as the newest; nil when
  /// it cannot be read.
  private func read(_ session: DatabaseSession, at now: ContinuousClock.Instant) -> Snapshot? {
    let rows: [[String?]]
    let readerRows: [[String?]]
    let ruleRows: [[String?]]
    do {
      rows = try session.run(readOnly: true) { try $0.execute(Self.describeSQL).rows }
      readerRows = try session.run(readOnly: true) { try $0.execute(Self.readersSQL).rows }
      ruleRows = try session.run(readOnly: true) { try $0.execute(Self.rowRulesSQL).rows }
    } catch {
      return nil
    }
    var tables: [String: TableInfo] = [:]
    for table in Self.describe(rows: rows, readers: readerRows, rules: ruleRows)
    where restriction?.contains(table.name) ?? true {
      tables[table.name] = table
    }
    let fresh = Snapshot(tables: tables, loadedAt: now)
    latest.withLock { $0 = fresh }
    return fresh
  }

  /// Every watched table's columns in one query: name, column, type, not
  /// null, default, generated, part of the key. Only tables that the search
  /// path names by their bare name are served, since that is the name the
  /// API and the events use.
  static let describeSQL = """
    select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
           case when a.attidentity <> '' then 'identity'
                when a.attgenerated = '' then pg_get_expr(d.adbin, d.adrelid) end,
           a.attgenerated <> '',
           coalesce(a.attnum = any(i.indkey::int2[]), false)
    from pbp_watched_tables() w(relation)
    join pg_class c on c.oid = w.relation
    join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    left join pg_index i on i.indrelid = c.oid and i.indisprimary and i.indnkeyatts = 1
    where pg_table_is_visible(c.oid)
    order by c.relname, a.attnum
    """

  /// Who may read each watched table: (table, role) for every role, login
  /// or not, with SELECT on it, inherited privileges included.
  static let readersSQL = """
    select c.relname, r.rolname
    from pbp_watched_tables() w(relation)
    join pg_class c on c.oid = w.relation
    cross join pg_roles r
    where pg_table_is_visible(c.oid) and has_table_privilege(r.oid, c.oid, 'SELECT')
    """

  /// The row rules of the watched tables (sql/01-pbp.sql's pbp_row_rules()).
  static let rowRulesSQL = """
    select c.relname, r.owner_column, r.owner_claim
    from pbp_row_rules() r join pg_class c on c.oid = r.relation
    where pg_table_is_visible(c.oid)
    """

  /// The tables in rows of ``describeSQL``, with their readers and rules
  /// from rows of ``readersSQL`` and ``rowRulesSQL``.
  static func describe(rows: [[String?]], readers: [[String?]], rules: [[String?]]) -> [TableInfo] {
    var readersByTable: [String: Set<String>] = [:]
    for row in readers where row.count >= 2 {
      if let table = row[0], let role = row[1] { readersByTable[table, default: []].insert(role) }
    }
    var rulesByTable: [String: RowRule] = [:]
    for row in rules where row.count >= 3 {
      if let table = row[0], let column = row[1], let claim = row[2] {
        rulesByTable[table] = RowRule(ownerColumn: column, ownerClaim: claim)
      }
    }
    return describe(rows: rows).map { table in
      var table = table
      table.readers = readersByTable[table.name] ?? []
      table.rowRule = rulesByTable[table.name]
      return table
    }
  }

  /// The tables in rows of ``describeSQL``; a table without a single-column
  /// primary key (its key dropped since it was watched) is left out.
  static func describe(rows: [[String?]]) -> [TableInfo] {
    var tables: [TableInfo] = []
    var name: String?
    var columns: [ColumnInfo] = []
    func finish() {
      if let name, let table = TableInfo(name: name, columns: columns) { tables.append(table) }
      columns = []
    }
    for row in rows where row.count >= 7 {
      guard let table = row[0], let column = row[1], let type = row[2] else { continue }
      if table != name {
        finish()
        name = table
      }
      columns.append(
        ColumnInfo(
          name: column, type: type, notNull: row[3] == "t", defaultExpression: row[4], isGenerated: row[5] == "t",
          isKey: row[6] == "t"))
    }
    finish()
    return tables
  }
}
