import JSON
import PostgresClient

/// CRUD on one configured table. Rows travel as JSON built by PostgreSQL
/// (`row_to_json`), the same shape the notify trigger sends, so a row read
/// from the API and a row from an event compare equal.
struct TableResource {
  let table: TableInfo
  let session: DatabaseSession
  /// Whom every statement acts for (nil: the login role itself).
  var identity: RequestIdentity? = nil

  static let defaultLimit = 1000
  static let maximumLimit = 10_000

  /// When the table last changed and its write version, from `table_mtime`: the validators of collection reads.
  struct Stamp: Equatable {
    let version: String
    let httpDate: String
    var etag: String { "\"\(version)\"" }
  }

  /// The table's stamp (write version, HTTP date) as a query on the table
  /// named by parameter `$n`: `table_mtime` aggregates the table's stamp
  /// rows (sql/01-pbp.sql), once per query.
  static func stampQuery(parameter n: Int) -> String {
    """
    select m.version::text as version,
           to_char(m.mtime at time zone 'UTC', 'Dy, DD Mon YYYY HH24:MI:SS "GMT"') as http_date
    from table_mtime m where m.name = $\(n)
    """
  }

  func stamp() throws(APIError) -> Stamp? {
    let sql = Self.stampQuery(parameter: 1)
    let row = try session.run(readOnly: true, as: identity) { try $0.execute(sql, [table.name]).rows.first }
    return row.flatMap(Self.stamp)
  }

  private static func stamp(_ row: [String?]) -> Stamp? {
    guard row.count >= 2, let version = row[0], let date = row[1] else { return nil }
    return Stamp(version: version, httpDate: date)
  }

  /// One page of a collection, as ``list(limit:after:byteBudget:)`` read it.
  struct Page {
    /// The rows as a JSON array.
    let rows: String
    let stamp: Stamp?
    /// The key of the page's last row when more rows follow it (past its
    /// row limit or its byte budget): the next page is `after=` it.
    let continuesAfter: String?
  }

  /// Rows ordered by key after the key `after` if given (keyset
  /// pagination): at most `limit`, and no more than `byteBudget` bytes of
  /// JSON unless the first row alone is larger. The table's stamp is read in
  /// the same snapshot.
  ///
  /// `pbp_page()` (sql/01-pbp.sql) renders the rows one at a time and stops at
  /// the budget: PostgreSQL renders no row past the one that would cross it.
  func list(limit: Int, after: String?, byteBudget: Int) throws(APIError) -> Page {
    let sql = """
      with stamp as (\(Self.stampQuery(parameter: 7)))
      select p.rows, p.last_key, p.more, (select version from stamp), (select http_date from stamp)
      from pbp_page($1::regclass, $2, $3::regtype, $4, $5, $6) p
      """
    let parameters: [String?] = [
      table.quotedName, table.keyColumn, table.keyType, after, String(limit), String(byteBudget), table.name,
    ]
    let row = try session.run(readOnly: true, as: identity) { try $0.execute(sql, parameters).rows.first }
    guard let row, row.count >= 5 else { return Page(rows: "[]", stamp: nil, continuesAfter: nil) }
    return Page(
      rows: row[0] ?? "[]", stamp: Self.stamp(Array(row[3...4])), continuesAfter: row[2] == "t" ? row[1] : nil)
  }

  func get(key: String) throws(APIError) -> String {
    try checkKeySyntax(key)
    let sql =
      "select row_to_json(t)::text from \(table.quotedName) t where t.\(table.quotedKey) = $1::text::\(table.keyType)"
    let row = try session.run(readOnly: true, as: identity) { try $0.execute(sql, [key]).scalar }
    guard let row else { throw notFound(key) }
    return row
  }

  func create(_ fields: [String: JSONValue]) throws(APIError) -> (key: String, row: String) {
    let columns = try given(table.writableColumns, in: fields, requireAll: true)
    let sql: String
    if columns.isEmpty {
      sql =
        "insert into \(table.quotedName) as t default values returning t.\(table.quotedKey)::text, row_to_json(t)::text"
    } else {
      let list = columns.map { PostgresConnection.quoteIdentifier($0) }.joined(separator: ", ")
      sql = """
        insert into \(table.quotedName) as t (\(list))
        select \(list) from json_populate_record(null::\(table.quotedName), $1::json)
        returning t.\(table.quotedKey)::text, row_to_json(t)::text
        """
    }
    let parameters: [String?] = columns.isEmpty ? [] : [Self.values(of: columns, in: fields)]
    let result = try session.run(readOnly: false, as: identity) { try $0.execute(sql, parameters) }
    guard let row = result.rows.first, let key = row[0], let json = row[1] else {
      throw .internalError("insert returned no row")
    }
    return (key, json)
  }

  /// PUT (`replace`: every required column given) or PATCH (any of them).
  func update(key: String, _ fields: [String: JSONValue], replace: Bool) throws(APIError) -> String {
    try checkKeySyntax(key)
    let columns = try given(table.updatableColumns, in: fields, requireAll: replace)
    guard !columns.isEmpty else {
      throw .unprocessable(
        "no_fields", "give at least one of: \(table.updatableColumns.map(\.name).joined(separator: ", "))")
    }
    let list = columns.map { PostgresConnection.quoteIdentifier($0) }.joined(separator: ", ")
    let sql = """
      update \(table.quotedName) as t set (\(list)) =
        (select \(list) from json_populate_record(null::\(table.quotedName), $1::json))
      where t.\(table.quotedKey) = $2::text::\(table.keyType)
      returning row_to_json(t)::text
      """
    let row = try session.run(readOnly: false, as: identity) {
      try $0.execute(sql, [Self.values(of: columns, in: fields), key]).scalar
    }
    guard let row else { throw notFound(key) }
    return row
  }

  func delete(key: String) throws(APIError) {
    try checkKeySyntax(key)
    let sql = "delete from \(table.quotedName) where \(table.quotedKey) = $1::text::\(table.keyType)"
    let affected = try session.run(readOnly: false, as: identity) { try $0.execute(sql, [key]).affectedRows }
    guard affected > 0 else { throw notFound(key) }
  }

  /// The names of `writable` that the body gives, in table order. Unknown
  /// names are refused, and with `requireAll` so is a missing required
  /// column; the table's other columns (the key, mtime: a client echoing a
  /// row back) are ignored.
  private func given(_ writable: [ColumnInfo], in fields: [String: JSONValue], requireAll: Bool) throws(APIError)
    -> [String]
  {
    for name in fields.keys.sorted() where table.column(named: name) == nil {
      throw .unprocessable("unknown_column", "\(table.name) has no column \(JSONWriter.quoted(name))")
    }
    if requireAll {
      for column in writable where column.isRequired && (fields[column.name] == nil || fields[column.name] == .null) {
        throw .unprocessable("missing_field", "`\(column.name)` is required")
      }
    }
    for column in writable {
      if let value = fields[column.name], !Self.suits(value, type: column.type) {
        throw .unprocessable(
          "invalid_value", "`\(column.name)` (\(column.type)) cannot hold \(JSONWriter.serialize(value).prefix(100))")
      }
    }
    return writable.map(\.name).filter { fields[$0] != nil }
  }

  /// The given columns' values as one JSON object: the maintained columns a
  /// client may echo back are left out, so they are ignored even when malformed.
  private static func values(of columns: [String], in fields: [String: JSONValue]) -> String {
    JSONWriter.serialize(.object(fields.filter { columns.contains($0.key) }))
  }

  /// Whether a JSON value has a type the column can take: a text column takes
  /// strings only, a scalar column no arrays or objects. What remains
  /// (`"5"` or `5` for an integer) is PostgreSQL's input syntax to judge.
  static func suits(_ value: JSONValue, type: String) -> Bool {
    let isText = type == "text" || type.hasPrefix("character") || type == "citext"
    switch value {
    case .null, .string: return true
    case .number, .bool: return !isText
    case .array, .object:
      if type.hasSuffix("[]") || type == "json" || type == "jsonb" { return true }
      return !isText && !scalarTypePrefixes.contains { type.hasPrefix($0) }
    }
  }

  private static let scalarTypePrefixes = [
    "bigint", "integer", "smallint", "numeric", "real", "double precision", "boolean", "timestamp", "date", "time",
    "interval", "uuid", "bytea", "money", "inet", "cidr", "macaddr",
  ]

  /// An integer key that is not an integer of the key's type (or out of its
  /// range) names no row: 404, without asking the database.
  private func checkKeySyntax(_ key: String) throws(APIError) {
    let fits: (String) -> Bool
    switch table.keyType {
    case "bigint": fits = { Int64($0) != nil }
    case "integer": fits = { Int32($0) != nil }
    case "smallint": fits = { Int16($0) != nil }
    default: return
    }
    let digits = key.utf8.first == UInt8(ascii: "-") ? key.utf8.dropFirst() : key.utf8[...]
    guard !digits.isEmpty, digits.count <= 19, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), fits(key) else {
      throw notFound(key)
    }
  }

  private func notFound(_ key: String) -> APIError {
    .notFound("\(table.name) has no row with \(table.keyColumn) \(JSONWriter.quoted(key))")
  }
}
