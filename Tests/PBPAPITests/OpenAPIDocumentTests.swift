import JSON
import LongPoll
import Testing

@testable import PBPAPI

@Suite struct OpenAPIDocumentTests {
  static let todo = TableInfo(
    name: "todo",
    columns: [
      ColumnInfo(name: "todo_id", type: "bigint", notNull: true, defaultExpression: "identity", isKey: true),
      ColumnInfo(name: "title", type: "text", notNull: true),
      ColumnInfo(name: "done", type: "boolean", notNull: true, defaultExpression: "false"),
      ColumnInfo(name: "due", type: "date"),
      ColumnInfo(name: "tags", type: "text[]"),
      ColumnInfo(name: "meta", type: "jsonb"),
      ColumnInfo(
        name: "mtime", type: "timestamp with time zone", notNull: true, defaultExpression: "clock_timestamp()"),
    ])!

  static let document = OpenAPIDocument(tables: [todo], pollLimits: .init()).json

  static func body(_ path: String, _ method: String) -> JSONValue? {
    document["paths"]?[path]?[method]?["requestBody"]?["content"]?["application/json"]?["schema"]
  }

  static func element(_ value: JSONValue?, _ index: Int) -> JSONValue? {
    guard case .array(let elements)? = value, elements.indices.contains(index) else { return nil }
    return elements[index]
  }

  @Test func eachTableHasPathsOfItsOwnNamedByItsKey() {
    guard case .object(let paths)? = Self.document["paths"] else {
      Issue.record("no paths")
      return
    }
    #expect(Set(paths.keys).isSuperset(of: ["/api/todo", "/api/todo/{todo_id}", "/api/changes", "/api/_tables"]))
    #expect(paths["/api/{table}"] == nil)
  }

  @Test func postRequiresWhatTheServerRequiresAndNothingElse() {
    let post = Self.body("/api/todo", "post")
    #expect(post?["required"] == ["title"])
    #expect(post?["additionalProperties"] == false)
    #expect(post?["properties"]?["done"] == ["type": "boolean"])
    #expect(post?["properties"]?["due"]?["type"] == ["string", "null"])
    #expect(post?["properties"]?["due"]?["format"] == "date")
    #expect(post?["properties"]?["tags"]?["items"]?["type"] == ["string", "null"])
    #expect(post?["properties"]?["meta"] == ["anyOf": [["$ref": "#/components/schemas/JSON"], ["type": "null"]]])
    // The maintained columns may be echoed, with any value: they are ignored.
    #expect(post?["properties"]?["todo_id"]?["$ref"] == "#/components/schemas/JSON")
    #expect(post?["properties"]?["mtime"]?["$ref"] == "#/components/schemas/JSON")
  }

  @Test func putRequiresTheRequiredColumnsAndPatchAtLeastOne() {
    #expect(Self.body("/api/todo/{todo_id}", "put")?["required"] == ["title"])
    let patch = Self.body("/api/todo/{todo_id}", "patch")
    #expect(patch?["required"] == [])
    guard case .array(let alternatives)? = patch?["anyOf"] else {
      Issue.record("PATCH takes an empty body")
      return
    }
    #expect(alternatives.count == 5)
    #expect(alternatives.contains(["required": ["title"]]))
    #expect(!alternatives.contains(["required": ["todo_id"]]))
  }

  @Test func integerKeysAreIntegersOfTheirRange() {
    let parameter = Self.document["paths"]?["/api/todo/{todo_id}"]?["parameters"]
    #expect(
      parameter == [
        [
          "name": "todo_id", "in": "path", "required": true, "description": "The row's todo_id",
          "schema": ["type": "integer", "minimum": .integer(Int64.min), "maximum": .integer(Int64.max)],
        ]
      ])
  }

  @Test func errorAnswersNameTheirCodes() {
    let unprocessable = Self.document["paths"]?["/api/todo"]?["post"]?["responses"]?["422"]
    let schema = Self.element(unprocessable?["content"]?["application/json"]?["schema"]?["allOf"], 1)
    guard case .array(let codes)? = schema?["properties"]?["error"]?["enum"] else {
      Issue.record("no codes")
      return
    }
    #expect(codes.contains("missing_field") && codes.contains("unknown_column") && codes.contains("invalid_value"))
  }

  @Test func subscriptionsFilterOnlyOnTheirTablesScalarColumns() {
    let subscriptions = Self.element(
      Self.body("/api/changes", "post")?["properties"]?["subscriptions"]?["items"]?["oneOf"], 0)
    #expect(subscriptions?["properties"]?["table"] == ["const": "todo"])
    let filters = subscriptions?["properties"]?["where"]
    #expect(filters?["additionalProperties"] == false)
    #expect(filters?["properties"]?["done"] != nil)
    #expect(filters?["properties"]?["tags"] == nil)
    #expect(filters?["properties"]?["meta"] == nil)
  }

  @Test func aJSONBodyGivesEachColumnItsJSONType() {
    #expect(ColumnType(formatType: "bigint").accepts(.number("5")))
    #expect(!ColumnType(formatType: "bigint").accepts(.string("5")))
    #expect(!ColumnType(formatType: "smallint").accepts(.number("40000")))
    #expect(!ColumnType(formatType: "integer").accepts(.number("1.5")))
    #expect(ColumnType(formatType: "boolean").accepts(.bool(true)))
    #expect(!ColumnType(formatType: "boolean").accepts(.string("t")))
    #expect(!ColumnType(formatType: "boolean").accepts(.number("1")))
    #expect(ColumnType(formatType: "date").accepts(.string("2026-12-01")))
    #expect(!ColumnType(formatType: "date").accepts(.string("today")))
    #expect(ColumnType(formatType: "text[]").accepts(.array([.string("a"), .null])))
    #expect(!ColumnType(formatType: "text[]").accepts(.array([.array([.string("a")])])))
    #expect(!ColumnType(formatType: "text[]").accepts(.string("{a}")))
    #expect(ColumnType(formatType: "jsonb").accepts(.object(["a": .array([])])))
    #expect(ColumnType(formatType: "timestamp with time zone").accepts(.string("2026-12-01T10:00:00+01:00")))
    #expect(!ColumnType(formatType: "timestamp with time zone").accepts(.string("now")))
  }
}
