import PostgresClient

/// A column of a served table, as PostgreSQL's catalog describes it.
public struct ColumnInfo: Equatable, Sendable {
  public let name: String
  /// PostgreSQL's `format_type`: `bigint`, `text[]`, `numeric(10,2)`, `timestamp with time zone`.
  public let type: String
  public let notNull: Bool
  /// The default's SQL text, `identity` for an identity column, nil for none
  /// (and for a generated column, which has an expression instead).
  public let defaultExpression: String?
  /// A generated column: PostgreSQL computes it, nobody writes it.
  public let isGenerated: Bool
  public let isKey: Bool

  public init(
    name: String, type: String, notNull: Bool = false, defaultExpression: String? = nil, isGenerated: Bool = false,
    isKey: Bool = false
  ) {
    self.name = name
    self.type = type
    self.notNull = notNull
    self.defaultExpression = defaultExpression
    self.isGenerated = isGenerated
    self.isKey = isKey
  }

  public var hasDefault: Bool { defaultExpression != nil || isGenerated }
  public var kind: ColumnType { ColumnType(formatType: type) }

  /// Whether a body may give the column: not `mtime`, which the database
  /// maintains, not a generated column, and not a key the database draws.
  /// A key without a default is given on insert only: the URL names the row after.
  public var isWritable: Bool {
    name != "mtime" && !isGenerated && !(isKey && hasDefault)
  }

  /// Whether a new row must be given it.
  public var isRequired: Bool { isWritable && notNull && !hasDefault }
}

/// A table's row rule, declared with `pbp_watch(…, owner_column, owner_claim)`:
/// a row is the viewer's when its `ownerColumn` equals their claim `ownerClaim`.
/// PostgreSQL enforces it on reads and writes (the policy `pbp_owner`), the
/// worker on events.
public struct RowRule: Equatable, Sendable {
  public let ownerColumn: String
  public let ownerClaim: String

  public init(ownerColumn: String, ownerClaim: String) {
    self.ownerColumn = ownerColumn
    self.ownerClaim = ownerClaim
  }
}

/// A table the API serves. Every identifier in generated SQL comes from here,
/// that is from PostgreSQL's catalog, never from request text.
public struct TableInfo: Equatable, Sendable {
  public let name: String
  public let keyColumn: String
  public let keyType: String
  public let columns: [ColumnInfo]
  /// The roles that may SELECT from the table (directly or through roles
  /// they inherit): who may subscribe to its events. nil: not known (then
  /// nobody is refused here).
  public var readers: Set<String>?
  public var rowRule: RowRule?

  /// A table keyed by its column marked `isKey`; nil without one.
  public init?(name: String, columns: [ColumnInfo], readers: Set<String>? = nil, rowRule: RowRule? = nil) {
    guard let key = columns.first(where: \.isKey) else { return nil }
    self.name = name
    self.keyColumn = key.name
    self.keyType = key.type
    self.columns = columns
    self.readers = readers
    self.rowRule = rowRule
  }

  /// Whether `role` may read the table's rows, and so its events.
  public func mayBeRead(by role: String) -> Bool { readers?.contains(role) ?? true }

  /// The columns a new row may be given, in table order.
  public var writableColumns: [ColumnInfo] { columns.filter(\.isWritable) }

  /// The columns PUT and PATCH may change: never the key, which the URL names.
  public var updatableColumns: [ColumnInfo] { writableColumns.filter { !$0.isKey } }

  /// Writable columns that a new row must be given.
  public var requiredColumns: [ColumnInfo] { columns.filter(\.isRequired) }

  public func column(named name: String) -> ColumnInfo? { columns.first { $0.name == name } }

  var quotedName: String { PostgresConnection.quoteIdentifier(name) }
  var quotedKey: String { PostgresConnection.quoteIdentifier(keyColumn) }
}
