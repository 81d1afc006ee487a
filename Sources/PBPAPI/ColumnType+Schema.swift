import JSON

/// A column type as JSON Schema (2020-12, as OpenAPI 3.1 has it): what the
/// API answers and, being the same, what a JSON body may give.
extension ColumnType {
  /// The schema of the column's values; `nullable` adds null.
  func schema(nullable: Bool) -> JSONValue {
    let base = schema
    guard nullable else { return base }
    if case .string(let type)? = base["type"] { return base.merging(["type": [.string(type), "null"]]) }
    return ["anyOf": [base, ["type": "null"]]]
  }

  var schema: JSONValue {
    switch self {
    case .integer(let bits):
      return [
        "type": "integer", "minimum": .integer(Self.minimum(bits: bits)), "maximum": .integer(Self.maximum(bits: bits)),
      ]
    case .decimal, .floating: return ["type": "number"]
    case .boolean: return ["type": "boolean"]
    case .text: return Self.textSchema
    case .date: return Self.textSchema.merging(["format": "date", "pattern": .string(Self.datePattern)])
    case .timestamp(withTimeZone: true): return Self.textSchema.merging(["format": "date-time"])
    case .json: return ["$ref": "#/components/schemas/JSON"]
    case .array(let element): return ["type": "array", "items": ColumnType(formatType: element).schema(nullable: true)]
    case .timestamp(withTimeZone: false), .time, .uuid, .other:
      return Self.textSchema.merging(["description": "In PostgreSQL's input syntax for the column's type"])
    }
  }

  /// A string PostgreSQL can hold (no NUL); the JSON parser refuses `\u0000` in any string.
  static let textSchema: JSONValue = ["type": "string", "pattern": .string(noNULPattern)]
  static let noNULPattern = "^[^\\u0000]*$"

  /// Any JSON value whose strings and member names hold no NUL: what the
  /// parser takes (within its depth limit) for a json or jsonb column.
  static let anyJSONSchema: JSONValue = [
    "description": "Any JSON value; no string or member name may contain NUL (\\u0000)",
    "anyOf": [
      ["type": ["null", "boolean", "number"]],
      textSchema,
      ["type": "array", "items": ["$ref": "#/components/schemas/JSON"]],
      [
        "type": "object", "propertyNames": textSchema,
        "additionalProperties": ["$ref": "#/components/schemas/JSON"],
      ],
    ],
  ]
}
