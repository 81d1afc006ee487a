/// What the API needs to know of a column's PostgreSQL type: which JSON
/// values it takes, how a subscription filter on it is written, what the
/// OpenAPI document says of it.
public enum ColumnType: Equatable, Sendable {
  /// `smallint`, `integer`, `bigint`, with their sizes in bits.
  case integer(bits: Int)
  /// `numeric`, with or without precision: row_to_json writes it as a JSON number.
  case decimal
  /// `real`, `double precision`.
  case floating
  case boolean
  /// `text`, `character varying(n)`, `character(n)`, `citext`, `name`.
  case text
  case date
  case timestamp(withTimeZone: Bool)
  case time
  case uuid
  /// `json`, `jsonb`: any JSON value.
  case json
  /// An array of the element type, written as a JSON array.
  case array(of: String)
  /// Any other type (intervals, ranges, enums, network addresses…): its text form.
  case other

  public init(formatType type: String) {
    if type.hasSuffix("[]") {
      self = .array(of: String(type.dropLast(2)))
      return
    }
    switch type {
    case "smallint": self = .integer(bits: 16)
    case "integer": self = .integer(bits: 32)
    case "bigint": self = .integer(bits: 64)
    case "real", "double precision": self = .floating
    case "boolean": self = .boolean
    case "text", "citext", "name": self = .text
    case "date": self = .date
    case "uuid": self = .uuid
    case "json", "jsonb": self = .json
    case let type where type == "numeric" || type.hasPrefix("numeric("): self = .decimal
    case let type where type.hasPrefix("character"): self = .text
    case let type where type.hasPrefix("timestamp"): self = .timestamp(withTimeZone: type.hasSuffix("with time zone"))
    case let type where type.hasPrefix("time"): self = .time
    default: self = .other
    }
  }

  /// A filter's value given as a JSON number, as events write it: JSON's
  /// `5013.0` and `5.013e3` are the integer 5013, which row_to_json writes
  /// `5013`. Other values stay as given (``filterRefusal(_:)`` judges them).
  public func canonicalFilter(_ text: String) -> String {
    guard case .integer = self, Int64(text) == nil, let number = Double(text), number.rounded() == number,
      abs(number) <= 9_007_199_254_740_992  // 2^53: beyond, a Double is no longer exact
    else { return text }
    return String(Int64(number))
  }

  /// Why `text`, a subscription filter's value, can never equal this
  /// column's value in an event; nil when it can. Events carry the row as
  /// row_to_json writes it, and a filter matches the member's text exactly:
  /// `5` for an integer, `true` for a boolean.
  public func filterRefusal(_ text: String) -> String? {
    switch self {
    case .integer(let bits):
      guard let value = Int64(text), String(value) == text else { return "an integer" }
      let limit = bits == 64 ? Int64.max : (Int64(1) << (bits - 1)) - 1
      return value >= -limit - 1 && value <= limit ? nil : "an integer of \(bits) bits"
    case .decimal, .floating:
      return Double(text) == nil ? "a number" : nil
    case .boolean:
      return text == "true" || text == "false" ? nil : "true or false"
    case .json, .array:
      return "a scalar column (json and array columns cannot be filtered on)"
    case .text, .date, .timestamp, .time, .uuid, .other:
      return nil
    }
  }
}
