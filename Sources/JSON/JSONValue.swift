/// A JSON document as a value. Numbers keep their literal text, so that a
/// bigint key or a numeric column survives the trip unchanged.
public enum JSONValue: Equatable, Sendable {
  case null
  case bool(Bool)
  case number(String)
  case string(String)
  case array([JSONValue])
  case object([String: JSONValue])

  public subscript(key: String) -> JSONValue? {
    if case .object(let members) = self { return members[key] }
    return nil
  }

  /// The text a scalar compares by when matched against a filter value taken
  /// from a query string (where every value is text): `5` and `"5"` agree.
  public var scalarText: String? {
    switch self {
    case .null: return nil
    case .bool(let value): return value ? "true" : "false"
    case .number(let text): return text
    case .string(let text): return text
    case .array, .object: return nil
    }
  }

  public var isNull: Bool { self == .null }
}
