import JSON

/// A served table's two paths: the collection (`/api/T`: keyset pages,
/// inserts) and a row (`/api/T/{key}`), with request schemas that say what
/// the server enforces (TableResource, ColumnType.accepts) and the rows'
/// schema as `row_to_json` writes them.
extension OpenAPIDocument {
  static func collectionPath(_ table: TableInfo) -> String { "/api/\(table.name)" }

  static func itemPath(_ table: TableInfo) -> String { "/api/\(table.name)/{\(keyParameterName(table))}" }

  /// The key column's name as the path template's parameter, when it can be one.
  static func keyParameterName(_ table: TableInfo) -> String {
    let plain = table.keyColumn.utf8.allSatisfy { byte in
      (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F
    }
    return plain && !table.keyColumn.isEmpty ? table.keyColumn : "key"
  }

  // MARK: Schemas

  static func columnSchema(_ column: ColumnInfo) -> JSONValue {
    column.kind.schema(nullable: !column.notNull)
  }

  /// A row as every answer and event carries it: each column, always.
  static func rowSchema(_ table: TableInfo) -> JSONValue {
    var properties: [String: JSONValue] = [:]
    for column in table.columns {
      var schema = columnSchema(column)
      if !table.writableColumns.contains(column) { schema = ["allOf": [schema], "readOnly": true] }
      properties[column.name] = schema
    }
    return [
      "type": "object", "description": .string("A row of \(table.name), as PostgreSQL's row_to_json writes it"),
      "required": .array(table.columns.map { .string($0.name) }),
      "properties": .object(properties), "additionalProperties": false,
    ]
  }

  /// What a body may carry besides the columns it writes: the other columns
  /// (a client echoing a row back), whatever their value, since they are ignored.
  private static let echoedColumn: JSONValue = [
    "$ref": "#/components/schemas/JSON",
    "description": "Maintained by the database or not writable here: a body may echo it, and it is ignored",
  ]

  /// A write's JSON body: `writing` columns with their schemas, every other
  /// column echoable, nothing else; `required` must be given (and not null).
  static func bodySchema(
    _ table: TableInfo, writing: [ColumnInfo], required: [ColumnInfo], atLeastOne: Bool, description: String
  ) -> JSONValue {
    var properties: [String: JSONValue] = [:]
    for column in table.columns { properties[column.name] = echoedColumn }
    for column in writing { properties[column.name] = columnSchema(column) }
    var schema: JSONValue = [
      "type": "object", "description": .string(description), "properties": .object(properties),
      "additionalProperties": false, "required": .array(required.map { .string($0.name) }),
    ]
    if atLeastOne && required.isEmpty && !writing.isEmpty {
      schema = schema.merging(["anyOf": .array(writing.map { ["required": [.string($0.name)]] })])
    }
    return schema
  }

  static func keySchema(_ table: TableInfo) -> JSONValue {
    let type = ColumnType(formatType: table.keyType)
    if case .integer = type { return type.schema }
    return ColumnType.textSchema
  }

  private static func requestBody(_ schema: JSONValue) -> JSONValue {
    [
      "required": true,
      "description":
        "Column values as JSON, each of the type the API answers with. The original's form posts (application/x-www-form-urlencoded, values in PostgreSQL's input syntax) are taken too.",
      "content": ["application/json": ["schema": schema]],
    ]
  }

  private static func writeErrors(_ extra: [String: JSONValue] = [:]) -> [String: JSONValue] {
    commonErrors.merging(bodyErrors(mediaTypes: ["application/json", "application/x-www-form-urlencoded"])) { $1 }
      .merging([
        "400": error(400, ["invalid_json", "invalid_form", "invalid_encoding"] + ErrorCodes.body),
        "404": error(404, ["unknown_table", "not_found"]),
        "409": error(409, ["conflict"]),
        "422": error(422, ErrorCodes.writeFields),
      ]) { $1 }
      .merging(extra) { $1 }
  }

  private static func rowResponse(_ table: TableInfo, _ description: String, headers: JSONValue? = nil) -> JSONValue {
    jsonResponse(description, rowSchema(table), headers: headers)
  }

  private static var keyHeader: JSONValue { header("The key column's name", required: true) }

  // MARK: /api/T

  func collectionPathItem(_ table: TableInfo) -> JSONValue {
    let name = table.name
    let page: JSONValue = ["type": "array", "items": Self.rowSchema(table)]
    let validators: [String: JSONValue] = [
      "ETag": Self.header("The table's write version; send it in If-None-Match"),
      "Last-Modified": Self.header("When the table last changed"),
    ]
    let pageHeaders = validators.merging([
      "PBP-Cursor": Self.header(
        "The change stream's position this page is consistent with: poll from it", required: true,
        ["$ref": "#/components/schemas/Cursor"]),
      "PBP-Key": Self.keyHeader,
      "Link": Self.header("<…&after=KEY>; rel=\"next\" when more rows follow (RFC 8288)"),
    ]) { $1 }
    return [
      "get": [
        "operationId": .string("list_\(name)"),
        "summary": .string("The rows of \(name), ordered by \(table.keyColumn), in keyset pages"),
        "parameters": [
          [
            "name": "limit", "in": "query", "description": "Rows in a page at most",
            "schema": [
              "type": "integer", "minimum": 1, "maximum": .integer(TableResource.maximumLimit),
              "default": .integer(TableResource.defaultLimit),
            ],
          ],
          [
            "name": "after", "in": "query",
            "description": .string("Keyset pagination: only rows whose \(table.keyColumn) is greater"),
            "schema": Self.keySchema(table),
          ],
          [
            "name": "If-None-Match", "in": "header", "description": "An ETag of this collection: 304 when current",
            "schema": ColumnType.textSchema,
          ],
        ],
        "responses": .object(
          Self.commonErrors.merging([
            "200": Self.jsonResponse("A page of rows", page, headers: .object(pageHeaders)),
            "304": [
              "description": "Unchanged since the ETag given in If-None-Match",
              "headers": .object(
                validators.merging(["PBP-Cursor": pageHeaders["PBP-Cursor"]!, "PBP-Key": Self.keyHeader]) { $1 }),
            ],
            "400": Self.error(400, ["invalid_limit"] + ErrorCodes.query),
            "404": Self.error(404, ["unknown_table"]),
            "422": Self.error(422, ["invalid_value"], description: "`after` is not a key of this table's type"),
            "503": Self.error(503, ErrorCodes.database + ["stream_unavailable"]),
          ]) { $1 }),
      ],
      "post": [
        "operationId": .string("create_\(name)"),
        "summary": .string("Insert a row into \(name)"),
        "requestBody": Self.requestBody(
          Self.bodySchema(
            table, writing: table.writableColumns, required: table.requiredColumns, atLeastOne: false,
            description: "A new row: the required columns, any other writable ones (the rest take their defaults)")),
        "responses": .object(
          Self.writeErrors([
            "201": Self.withLinks(
              Self.rowResponse(
                table, "The new row", headers: ["Location": Self.header("The new row's URL", required: true)]),
              table),
            "404": Self.error(404, ["unknown_table"]),
          ])),
      ],
    ]
  }

  /// The operations a created row's key leads to (for clients and stateful tests).
  private static func withLinks(_ response: JSONValue, _ table: TableInfo) -> JSONValue {
    let pointer = table.keyColumn.replacing("~", with: "~0").replacing("/", with: "~1")
    let parameters: JSONValue = .object([keyParameterName(table): .string("$response.body#/\(pointer)")])
    var links: [String: JSONValue] = [:]
    let writes = table.updatableColumns.isEmpty ? [] : ["replace", "update"]
    for verb in ["get", "delete"] + writes {
      links[verb.capitalized + "Row"] = ["operationId": .string("\(verb)_\(table.name)"), "parameters": parameters]
    }
    return response.merging(["links": .object(links)])
  }

  // MARK: /api/T/{key}

  func itemPathItem(_ table: TableInfo) -> JSONValue {
    let name = table.name
    let keyParameter: JSONValue = [
      "name": .string(Self.keyParameterName(table)), "in": "path", "required": true,
      "description": .string("The row's \(table.keyColumn)"), "schema": Self.keySchema(table),
    ]
    let updatable = table.updatableColumns
    let notFound = Self.error(404, ["unknown_table", "not_found"])
    var item: [String: JSONValue] = [
      "parameters": [keyParameter],
      "get": [
        "operationId": .string("get_\(name)"), "summary": .string("One row of \(name)"),
        "responses": .object(
          Self.commonErrors.merging([
            "200": Self.rowResponse(table, "The row", headers: ["PBP-Key": Self.keyHeader]),
            "400": Self.error(400, ErrorCodes.query),
            "404": notFound,
          ]) { $1 }),
      ],
      "delete": [
        "operationId": .string("delete_\(name)"), "summary": .string("Delete a row of \(name)"),
        "responses": .object(
          Self.commonErrors.merging([
            "204": ["description": "Deleted"],
            "400": Self.error(400, ErrorCodes.body + ErrorCodes.query),
            "404": notFound,
            "409": Self.error(409, ["conflict"], description: "Other rows refer to this one"),
          ]) { $1 }),
      ],
    ]
    guard !updatable.isEmpty else { return .object(item) }
    let required = updatable.filter { table.requiredColumns.contains($0) }
    item["put"] = [
      "operationId": .string("replace_\(name)"),
      "summary": .string("Replace a row's writable columns (the required ones must be given)"),
      "requestBody": Self.requestBody(
        Self.bodySchema(
          table, writing: updatable, required: required, atLeastOne: true,
          description: "The row's new values: the required columns, and any other writable ones")),
      "responses": .object(Self.writeErrors(["200": Self.rowResponse(table, "The row as written")])),
    ]
    item["patch"] = [
      "operationId": .string("update_\(name)"),
      "summary": .string("Change some of a row's columns"),
      "requestBody": Self.requestBody(
        Self.bodySchema(
          table, writing: updatable, required: [], atLeastOne: true,
          description: "At least one writable column")),
      "responses": .object(Self.writeErrors(["200": Self.rowResponse(table, "The row as written")])),
    ]
    return .object(item)
  }
}
