import JSON

/// What JSON a PostgreSQL column's values are, read from `format_type` text:
/// the shape `row_to_json` gives them, which is also the only shape a JSON
/// body may give them in (see ``accepts(_:)``). One mapping serves the
/// server's check and the OpenAPI document, so the two cannot disagree.
indirect enum ColumnType: Equatable, Sendable {
  case integer(minimum: Int64, maximum: Int64)
  case number
  case boolean
  /// Text of any kind: PostgreSQL text holds no NUL character.
  case text
  /// `YYYY-MM-DD`.
  case date
  /// RFC 3339 with an offset, as PostgreSQL writes `timestamp with time zone`.
  case timestampWithZone
  /// Any JSON (`json`, `jsonb`).
  case json
  /// An array whose elements are of `element` or null (one dimension).
  case array(element: ColumnType)
  /// A string in the type's input syntax (uuid, interval, timestamp without zone…): PostgreSQL judges it.
  case other(String)

  init(postgresType type: String) {
    if type.hasSuffix("[]") {
      self = .array(element: ColumnType(postgresType: String(type.dropLast(2))))
      return
    }
    switch type {
    case "smallint": self = .integer(minimum: Int64(Int16.min), maximum: Int64(Int16.max))
    case "integer": self = .integer(minimum: Int64(Int32.min), maximum: Int64(Int32.max))
    case "bigint": self = .integer(minimum: Int64.min, maximum: Int64.max)
    case "real", "double precision": self = .number
    case "boolean": self = .boolean
    case "text", "citext", "name": self = .text
    case "date": self = .date
    case "timestamp with time zone": self = .timestampWithZone
    case "json", "jsonb": self = .json
    case let type where type.hasPrefix("numeric"): self = .number
    case let type where type.hasPrefix("character"): self = .text
    default: self = .other(type)
    }
  }

  /// Whether a JSON body's value fits the column: the JSON type `row_to_json`
  /// gives it, so a row read from the API can be written back as it is, and
  /// nothing else (`"5"` for an integer or `1` for a boolean would be
  /// PostgreSQL's lenient input syntax, which no schema can describe).
  /// Null is for nullability to decide.
  func accepts(_ value: JSONValue) -> Bool {
    switch (self, value) {
    case (_, .null): return true
    case (.json, _): return true
    case (.integer(let minimum, let maximum), .number(let text)):
      guard let number = Int64(text) else { return false }
      return number >= minimum && number <= maximum
    case (.number, .number), (.boolean, .bool), (.text, .string), (.other, .string): return true
    case (.date, .string(let text)): return Self.isDate(text[...])
    case (.timestampWithZone, .string(let text)): return Self.isTimestampWithZone(text)
    case (.array(let element), .array(let elements)):
      return elements.allSatisfy { element.accepts($0) && !Self.isArray($0) }
    default: return false
    }
  }

  private static func isArray(_ value: JSONValue) -> Bool {
    if case .array = value { return true }
    return false
  }

  /// `YYYY-MM-DD`; the calendar is PostgreSQL's to check.
  static func isDate(_ text: Substring) -> Bool {
    let bytes = Array(text.utf8)
    guard bytes.count == 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-") else { return false }
    return [0..<4, 5..<7, 8..<10].allSatisfy { range in
      bytes[range].allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }
  }

  /// RFC 3339's date-time: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
  static func isTimestampWithZone(_ text: String) -> Bool {
    guard let pattern = try? Regex(Self.timestampPattern) else { return false }
    return text.wholeMatch(of: pattern) != nil
  }

  static let datePattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
  static let timestampPattern =
    "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
}

extension TableInfo {
  /// Refuses a JSON body's value that is not of its column's JSON type (see
  /// ``ColumnType/accepts(_:)``); the columns a body merely echoes are
  /// ignored, as TableResource ignores them.
  func checkJSONTypes(of fields: [String: JSONValue]) throws(APIError) {
    for column in writableColumns {
      guard let value = fields[column.name] else { continue }
      guard ColumnType(postgresType: column.type).accepts(value) else {
        throw .unprocessable(
          "invalid_value",
          "`\(column.name)` (\(column.type)) takes \(ColumnType(postgresType: column.type).jsonDescription), not \(JSONWriter.serialize(value).prefix(100))"
        )
      }
    }
  }
}

extension ColumnType {
  /// What a value of the type is, for error messages.
  var jsonDescription: String {
    switch self {
    case .integer(let minimum, let maximum): "a JSON integer from \(minimum) to \(maximum)"
    case .number: "a JSON number"
    case .boolean: "true or false"
    case .text, .other: "a string"
    case .date: "a date as a string YYYY-MM-DD"
    case .timestampWithZone: "an RFC 3339 date-time string with its offset"
    case .json: "any JSON"
    case .array(let element): "an array of \(element.jsonDescription) or null"
    }
  }
}
