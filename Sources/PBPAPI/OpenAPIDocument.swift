import JSON
import LongPoll

/// The API described for tools (`GET /api/openapi.json`), generated from the
/// catalog: a path pair per served table with its columns' own schemas, so
/// that a client generator or a fuzzer sees exactly what the server takes
/// and answers. The tables' parts are in OpenAPIDocument+Tables.swift, the
/// changes endpoint's in OpenAPIDocument+Changes.swift, the errors in
/// OpenAPIDocument+Errors.swift.
struct OpenAPIDocument {
  let tables: [TableInfo]
  let pollLimits: ChangePoll.Limits

  var json: JSONValue {
    [
      "openapi": "3.1.0",
      "info": [
        "title": "PBP", "version": "1",
        "description":
          "Live PostgreSQL rows over HTTP: CRUD on the watched tables and long-polls for their changes. Generated from the tables' catalog.",
      ],
      "paths": .object(paths),
      "components": [
        "schemas": [
          "JSON": ColumnType.anyJSONSchema,
          "Error": Self.errorSchema,
          "Cursor": Self.cursorSchema,
        ],
        // Optional on every table and poll operation: without a token a
        // request acts as the anonymous role, where one is configured.
        "securitySchemes": [
          "bearer": [
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "A token whose `role` claim names the PostgreSQL role to act as, `sub` the user",
          ]
        ],
      ],
    ]
  }

  var text: String { JSONWriter.serialize(json) }

  private var paths: [String: JSONValue] {
    var paths: [String: JSONValue] = [:]
    for table in tables {
      paths[Self.collectionPath(table)] = collectionPathItem(table)
      paths[Self.itemPath(table)] = itemPathItem(table)
    }
    paths[APIApplication.changesPath] = changesPathItem
    paths["/api/_tables"] = Self.tablesPathItem
    // Not /api/_status nor /api/_metrics: the public site does not serve
    // them (only the operators' listener does, conf/nginx/pbp-site.conf.in).
    paths["/api/openapi.json"] = Self.documentPathItem
    return paths
  }

  // MARK: The service's own resources

  private static var tablesPathItem: JSONValue {
    let column: JSONValue = [
      "type": "object",
      "required": ["name", "type", "nullable", "default", "writable", "required", "key"],
      "properties": [
        "name": ["type": "string"], "type": ["type": "string", "description": "PostgreSQL's format_type"],
        "nullable": ["type": "boolean"],
        "default": ["type": ["string", "null"], "description": "the default's SQL, \"identity\", or null"],
        "writable": ["type": "boolean"], "required": ["type": "boolean"], "key": ["type": "boolean"],
      ],
    ]
    let table: JSONValue = [
      "type": "object", "required": ["name", "key", "columns"],
      "properties": [
        "name": ["type": "string"], "key": ["type": "string"], "columns": ["type": "array", "items": column],
      ],
    ]
    return [
      "get": [
        "operationId": "listTables", "summary": "The tables this API serves, sorted by name, and their columns",
        "responses": [
          "200": jsonResponse(
            "The served tables",
            ["type": "object", "required": ["tables"], "properties": ["tables": ["type": "array", "items": table]]]),
          "503": error(503, ErrorCodes.database),
        ],
      ]
    ]
  }

  private static var documentPathItem: JSONValue {
    [
      "get": [
        "operationId": "getOpenAPIDocument", "summary": "This document",
        "responses": [
          "200": jsonResponse("OpenAPI 3.1", ["type": "object", "required": ["openapi", "paths"]]),
          "503": error(503, ErrorCodes.database),
        ],
      ]
    ]
  }

  // MARK: Shared pieces

  static func jsonResponse(_ description: String, _ schema: JSONValue, headers: JSONValue? = nil) -> JSONValue {
    var response: JSONValue = [
      "description": .string(description), "content": ["application/json": ["schema": schema]],
    ]
    if let headers { response = response.merging(["headers": headers]) }
    return response
  }

  static func header(_ description: String, required: Bool = false, _ schema: JSONValue = ["type": "string"])
    -> JSONValue
  {
    ["description": .string(description), "required": .bool(required), "schema": schema]
  }

  /// The cursor's text form (``ChangeStream/Cursor``): 16 lower-case hex
  /// digits, not all zero, a colon, and a decimal sequence number without
  /// leading zeros.
  static var cursorSchema: JSONValue {
    let nonzeroEpoch = (0..<16).map { zeros in
      String(repeating: "0", count: zeros) + "[1-9a-f]" + (zeros < 15 ? "[0-9a-f]{\(15 - zeros)}" : "")
    }
    return [
      "type": "string", "description": "A position in the change stream; opaque to clients",
      "pattern": .string("^(\(nonzeroEpoch.joined(separator: "|"))):(0|[1-9][0-9]{0,18})$"),
    ]
  }

  static var errorSchema: JSONValue {
    [
      "type": "object", "required": ["error", "message"],
      "properties": [
        "error": ["type": "string", "description": "A stable code to act on"],
        "message": ["type": "string", "description": "For people"],
        "cursor": ["$ref": "#/components/schemas/Cursor"],
      ],
    ]
  }
}
