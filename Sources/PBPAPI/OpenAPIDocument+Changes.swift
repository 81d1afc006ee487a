import JSON

/// `/api/changes`: a poll's bodies and answers (ChangePoll+Parsing.swift,
/// PollAnswer+HTTP.swift), with a subscription per table whose `where` names
/// only that table's columns.
extension OpenAPIDocument {
  var changesPathItem: JSONValue {
    let answers: [String: JSONValue] = [
      "200": Self.jsonResponse("Events after the cursor, or none at the timeout", changesSchema),
      "404": Self.error(404, ["unknown_table"]),
      "409": Self.error(
        409, ["reset"],
        description: "The cursor is no longer in the change stream: reload, then poll from the error's cursor"),
      "414": Self.error(414, ["uri_too_long"]),
      "503": Self.error(503, ["stream_unavailable", "service_unavailable"]),
    ].merging(Self.authErrors) { $1 }
    let timeout = timeoutSchema
    return [
      "get": [
        "operationId": "poll_changes_of_a_table",
        "summary": "Long-poll for changes to one table",
        "description": .string(
          "Filters are `where.COLUMN=VALUE` parameters of the table's columns (POST takes them typed). "
            + "Unknown parameters are refused."),
        "parameters": [
          [
            "name": "cursor", "in": "query", "description": "Where to go on from; empty or absent: from now",
            "schema": ["anyOf": [["$ref": "#/components/schemas/Cursor"], ["type": "string", "maxLength": 0]]],
          ],
          [
            "name": "table", "in": "query", "required": true,
            "schema": ["type": "string", "enum": .array(tables.map { .string($0.name) })],
          ],
          ["name": "timeout", "in": "query", "schema": timeout],
        ],
        "responses": .object(
          answers.merging([
            "400": Self.error(
              400,
              ["invalid_poll", "invalid_cursor", "invalid_timeout", "unknown_parameter"] + ErrorCodes.filters
                + ErrorCodes.query)
          ]) { $1 }),
      ],
      "post": [
        "operationId": "poll_changes",
        "summary": "Long-poll for changes matching any of several subscriptions",
        "requestBody": ["required": true, "content": ["application/json": ["schema": pollSchema]]],
        "responses": .object(
          answers.merging(Self.bodyErrors(mediaTypes: ["application/json"])) { $1 }
            .merging([
              "400": Self.error(
                400,
                [
                  "invalid_json", "invalid_poll", "invalid_subscription", "invalid_cursor", "invalid_timeout",
                  "too_many_subscriptions",
                ] + ErrorCodes.filters + ErrorCodes.body)
            ]) { $1 }),
      ],
    ]
  }

  private var timeoutSchema: JSONValue {
    [
      "type": "number", "minimum": 0,
      "description": .string(
        "Seconds to wait for an event: \(Self.seconds(pollLimits.defaultTimeout)) when not given, "
          + "at most \(Self.seconds(pollLimits.maximumTimeout)) (more is taken as that)"),
    ]
  }

  private static func seconds(_ duration: Duration) -> String {
    let milliseconds = duration / .milliseconds(1)
    return milliseconds.truncatingRemainder(dividingBy: 1000) == 0
      ? String(Int(milliseconds / 1000)) : String(milliseconds / 1000)
  }

  /// Members a poll or a subscription may carry besides its own: ignored.
  private static let ignoredMembers: JSONValue = ["$ref": "#/components/schemas/JSON"]

  private var pollSchema: JSONValue {
    [
      "type": "object", "required": ["subscriptions"],
      "properties": [
        "cursor": ["anyOf": [["$ref": "#/components/schemas/Cursor"], ["type": "null"]]],
        "timeout": ["anyOf": [timeoutSchema, ["type": "null"]]],
        "subscriptions": [
          "type": "array", "minItems": 1, "maxItems": .integer(pollLimits.maximumSubscriptions),
          "items": ["oneOf": .array(tables.map(subscriptionSchema))],
        ],
      ],
      "propertyNames": ColumnType.textSchema,
      "additionalProperties": Self.ignoredMembers,
    ]
  }

  /// A subscription to `table`: rows whose columns equal the `where` values.
  func subscriptionSchema(_ table: TableInfo) -> JSONValue {
    var filters: [String: JSONValue] = [:]
    for column in table.columns {
      if let schema = filterSchema(column.kind) { filters[column.name] = schema }
    }
    return [
      "type": "object", "required": ["table"],
      "properties": [
        "table": ["const": .string(table.name)],
        "where": [
          "type": ["object", "null"],
          "description": "Column: value; an event matches when its new or its old row has every value",
          "properties": .object(filters), "additionalProperties": false,
          "maxProperties": .integer(pollLimits.maximumFiltersPerSubscription),
        ],
      ],
      "propertyNames": ColumnType.textSchema,
      "additionalProperties": Self.ignoredMembers,
    ]
  }

  /// A filter's value for a column, as ``ColumnType/filterRefusal(_:)``
  /// judges its text: one an event's value can equal (`5` or `"5"` for an
  /// integer, `true` or `"true"` for a boolean, any scalar for text); nil for
  /// a column no filter can be on (arrays, json).
  func filterSchema(_ type: ColumnType) -> JSONValue? {
    switch type {
    case .integer:
      // Digits beyond 18 can leave the range: the pattern stops short of it, the integer says it exactly.
      return ["anyOf": [type.schema, ["type": "string", "pattern": "^(0|-?[1-9][0-9]{0,17})$"]]]
    case .decimal, .floating:
      return ["anyOf": [type.schema, ["type": "string", "pattern": "^-?[0-9]{1,300}(\\.[0-9]{1,300})?$"]]]
    case .boolean:
      return ["anyOf": [type.schema, ["enum": ["true", "false"]]]]
    case .json, .array: return nil
    case .text, .date, .timestamp, .time, .uuid, .other:
      // The length bound is in the pattern: with maxLength beside a pattern,
      // generators (schemathesis's coverage phase) take minutes per case.
      let limit = pollLimits.maximumFilterValueBytes
      return [
        "anyOf": [
          ["type": "string", "pattern": .string("^[^\\u0000]{0,\(limit)}$")], ["type": ["number", "boolean"]],
        ],
        "description": .string("Compared with the column's text; at most \(limit) bytes of UTF-8"),
      ]
    }
  }

  private var changesSchema: JSONValue {
    [
      "type": "object", "required": ["cursor", "events"],
      "properties": [
        "cursor": ["$ref": "#/components/schemas/Cursor"],
        "events": ["type": "array", "items": ["oneOf": .array(tables.map(eventSchema))]],
      ],
      "additionalProperties": false,
    ]
  }

  /// A change to a row of `table` as its trigger sent it, with the event's
  /// cursor and the indexes of the subscriptions it matches.
  func eventSchema(_ table: TableInfo) -> JSONValue {
    let row: JSONValue = ["anyOf": [Self.rowSchema(table), ["type": "null"]]]
    return [
      "type": "object", "required": ["table", "op", "key", "mtime", "cursor", "matches"],
      "properties": [
        "table": ["const": .string(table.name)],
        "op": ["enum": ["insert", "update", "delete", "truncate"]],
        "key": ["anyOf": [Self.keySchema(table), ["type": "null"]], "description": "null for a truncate"],
        "mtime": ["type": "string"],
        "new": row, "old": row,
        "truncated": ["const": true, "description": "The row was too large to send: read it"],
        "cursor": ["$ref": "#/components/schemas/Cursor"],
        "matches": ["type": "array", "items": ["type": "integer", "minimum": 0]],
      ],
      "additionalProperties": false,
    ]
  }
}
