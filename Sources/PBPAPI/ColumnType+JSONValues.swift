import JSON

/// Which JSON values a JSON body may give a column: the JSON type that
/// `row_to_json` gives its values, so that a row read from the API can be
/// written back as it is, and nothing else. `"5"` for an integer or `1` for
/// a boolean would be PostgreSQL's lenient input syntax, which no schema can
/// describe (the OpenAPI document says exactly this, ColumnType+Schema.swift).
extension ColumnType {
  /// Whether `value` fits; null is for the column's nullability to decide.
  func accepts(_ value: JSONValue) -> Bool {
    switch (self, value) {
    case (_, .null), (.json, _): return true
    case (.integer(let bits), .number(let text)):
      guard let number = Int64(text) else { return false }
      return number >= Self.minimum(bits: bits) && number <= Self.maximum(bits: bits)
    case (.decimal, .number), (.floating, .number), (.boolean, .bool): return true
    case (.text, .string), (.time, .string), (.uuid, .string), (.other, .string): return true
    case (.date, .string(let text)): return Self.isDate(text)
    case (.timestamp(let withTimeZone), .string(let text)):
      return withTimeZone ? Self.isTimestampWithZone(text) : true
    case (.array(let element), .array(let elements)):
      // One dimension: a nested array would be a second one.
      let type = ColumnType(formatType: element)
      return elements.allSatisfy { element in
        if case .array = element { return false }
        return type.accepts(element)
      }
    default: return false
    }
  }

  static func minimum(bits: Int) -> Int64 { bits >= 64 ? Int64.min : -(Int64(1) << (bits - 1)) }
  static func maximum(bits: Int) -> Int64 { bits >= 64 ? Int64.max : (Int64(1) << (bits - 1)) - 1 }

  /// `YYYY-MM-DD`; the calendar is PostgreSQL's to check.
  static func isDate(_ text: String) -> Bool {
    let bytes = Array(text.utf8)
    guard bytes.count == 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-") else { return false }
    return [0..<4, 5..<7, 8..<10].allSatisfy { range in bytes[range].allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
  }

  /// RFC 3339's date-time: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
  static func isTimestampWithZone(_ text: String) -> Bool {
    guard let pattern = try? Regex(timestampPattern) else { return false }
    return text.wholeMatch(of: pattern) != nil
  }

  static let datePattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
  static let timestampPattern =
    "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"

  /// What a value of the type is, for error messages.
  var jsonDescription: String {
    switch self {
    case .integer(let bits): "a JSON integer of \(bits) bits"
    case .decimal, .floating: "a JSON number"
    case .boolean: "true or false"
    case .text, .time, .uuid, .other: "a string"
    case .date: "a date as a string YYYY-MM-DD"
    case .timestamp(let withTimeZone): withTimeZone ? "an RFC 3339 date-time string with its offset" : "a string"
    case .json: "any JSON"
    case .array(let element): "an array of \(ColumnType(formatType: element).jsonDescription) or null"
    }
  }
}

extension TableInfo {
  /// Refuses a JSON body's value that is not of its column's JSON type; the
  /// columns a body merely echoes are ignored, as TableResource ignores them.
  func checkJSONTypes(of fields: [String: JSONValue]) throws(APIError) {
    for column in writableColumns {
      guard let value = fields[column.name], !column.kind.accepts(value) else { continue }
      throw .unprocessable(
        "invalid_value",
        "`\(column.name)` (\(column.type)) takes \(column.kind.jsonDescription), not \(JSONWriter.serialize(value).prefix(100))"
      )
    }
  }
}
