import PostgresClient
import Synchronization

/// A column of a served table, as the catalog describes it.
public struct ColumnInfo: Equatable, Sendable {
  public let name: String
  public let type: String
  public let notNull: Bool
  public let hasDefault: Bool
}

/// A table the API serves. Every identifier in generated SQL comes from here,
/// that is from configuration and the catalog, never from request text.
public struct TableInfo: Equatable, Sendable {
  public let name: String
  public let keyColumn: String
  public let keyType: String
  public let columns: [ColumnInfo]

  /// The columns the database maintains: the key and `mtime`. Bodies may
  /// carry them (a client echoing a row back), and they are ignored.
  public func isMaintained(_ column: String) -> Bool {
    column == keyColumn || column == "mtime"
  }

  public var writableColumns: [ColumnInfo] { columns.filter { !isMaintained($0.name) } }

  /// Writable columns that a new row must be given.
  public var requiredColumns: [ColumnInfo] { writableColumns.filter { $0.notNull && !$0.hasDefault } }

  public func column(named name: String) -> ColumnInfo? { columns.first { $0.name == name } }

  var quotedName: String { PostgresConnection.quoteIdentifier(name) }
  var quotedKey: String { PostgresConnection.quoteIdentifier(keyColumn) }
}

/// The configured tables, described from PostgreSQL's catalog on first use and
/// then kept for the life of the process.
public final class TableCatalog: Sendable {
  public let configuredNames: [String]
  private let tables = Mutex<[String: TableInfo]>([:])

  public init(configuredNames: [String]) {
    self.configuredNames = configuredNames
  }

  static let describeSQL = """
    select a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
           a.atthasdef or a.attidentity <> '' or a.attgenerated <> '',
           coalesce(a.attnum = any(i.indkey::int2[]), false)
    from pg_attribute a
    left join pg_index i on i.indrelid = a.attrelid and i.indisprimary and i.indnkeyatts = 1
    where a.attrelid = to_regclass($1) and a.attnum > 0 and not a.attisdropped
    order by a.attnum
    """

  /// The table named in a request, if it is configured and exists.
  public func table(named name: String, using connection: () throws(APIError) -> PostgresConnection)
    throws(APIError) -> TableInfo?
  {
    guard configuredNames.contains(name) else { return nil }
    if let known = tables.withLock({ $0[name] }) { return known }
    let result: PostgresResult
    do {
      result = try connection().execute(Self.describeSQL, [name])
    } catch {
      throw APIError(databaseFailure: error)
    }
    guard let info = Self.describe(name: name, rows: result.rows) else { return nil }
    tables.withLock { $0[name] = info }
    return info
  }

  static func describe(name: String, rows: [[String?]]) -> TableInfo? {
    var columns: [ColumnInfo] = []
    var key: ColumnInfo?
    for row in rows {
      guard let columnName = row[0], let type = row[1] else { continue }
      let column = ColumnInfo(name: columnName, type: type, notNull: row[2] == "t", hasDefault: row[3] == "t")
      columns.append(column)
      if row[4] == "t" { key = column }
    }
    guard let key else { return nil }
    return TableInfo(name: name, keyColumn: key.name, keyType: key.type, columns: columns)
  }
}
