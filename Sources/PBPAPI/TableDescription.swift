import JSON

/// `GET /api/_tables`: the served tables as clients need them to build
/// forms and views (name, key column, and each column's type, nullability,
/// default, and whether bodies may give it).
enum TableDescription {
  static func json(_ tables: [TableInfo]) -> String {
    JSONWriter.serialize(.object(["tables": .array(tables.map(describe))]))
  }

  static func describe(_ table: TableInfo) -> JSONValue {
    .object([
      "name": .string(table.name),
      "key": .string(table.keyColumn),
      "columns": .array(table.columns.map(describe)),
    ])
  }

  static func describe(_ column: ColumnInfo) -> JSONValue {
    .object([
      "name": .string(column.name),
      "type": .string(column.type),
      "nullable": .bool(!column.notNull),
      "default": column.defaultExpression.map(JSONValue.string) ?? .null,
      "writable": .bool(column.isWritable),
      "required": .bool(column.isRequired),
      "key": .bool(column.isKey),
    ])
  }
}
