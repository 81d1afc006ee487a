import JSON

/// The `error` codes each kind of request can be answered with, by status:
/// the codes thrown in this module (APIError, APIError+Database, the parsers)
/// and those nginx answers itself (conf/nginx/pbp-site.conf.in).
enum ErrorCodes {
  /// A statement the database could not run now, or no database, or no worker behind nginx.
  static let database = ["database_unavailable", "retry", "service_unavailable"]
  /// What a body can be refused for before anything is read from it.
  static let body = ["truncated_body", "unreadable_body"]
  static let query = ["invalid_encoding"]
  static let writeFields = [
    "missing_field", "unknown_column", "invalid_value", "invalid_body", "no_fields", "check_violation",
    "value_too_long",
  ]
  static let filters = ["too_many_filters", "filter_too_long", "filters_too_large", "unknown_column", "invalid_filter"]
}

extension OpenAPIDocument {
  static let reasons: [Int: String] = [
    400: "The request is malformed", 403: "Not allowed", 404: "No such table or row",
    405: "The method is not allowed here", 409: "The write conflicts with a row", 413: "The body is too large",
    414: "The request line is too long", 415: "The body's media type is not one this operation takes",
    422: "A value the table cannot take", 503: "Try again (Retry-After)",
  ]

  /// An error answer whose `error` is one of `codes`.
  static func error(_ status: Int, _ codes: [String], description: String? = nil) -> JSONValue {
    var response: JSONValue = [
      "description": .string(description ?? reasons[status] ?? "An error"),
      "content": [
        "application/json": [
          "schema": [
            "allOf": [
              ["$ref": "#/components/schemas/Error"],
              ["properties": ["error": ["enum": .array(codes.sorted().map(JSONValue.string))]]],
            ]
          ]
        ]
      ],
    ]
    if status == 503 {
      response = response.merging(["headers": ["Retry-After": header("Seconds to wait", required: true)]])
    }
    return response
  }

  /// The answers every operation on the tables shares: who the request
  /// acts for refused, a request line nginx finds too long, the database or pool gone.
  static var commonErrors: [String: JSONValue] {
    authErrors.merging(["414": error(414, ["uri_too_long"]), "503": error(503, ErrorCodes.database)]) { $1 }
  }

  /// A request without a token where anonymous requests are not served, a
  /// token that does not verify (with `WWW-Authenticate`), or a role that may
  /// not do what was asked (its token's, or a privilege PostgreSQL refused).
  static var authErrors: [String: JSONValue] {
    [
      "401": error(401, ["unauthorized", "invalid_token"], description: "No usable bearer token")
        .merging([
          "headers": [
            "WWW-Authenticate": header("Bearer, with error=\"invalid_token\" for a bad token", required: true)
          ]
        ]),
      "403": error(403, ["forbidden"]),
    ]
  }

  /// The answers of an operation that reads a body.
  static func bodyErrors(mediaTypes: [String]) -> [String: JSONValue] {
    [
      "413": error(413, ["body_too_large"]),
      "415": error(
        415, ["unsupported_media_type"], description: "Send \(mediaTypes.joined(separator: " or "))"),
    ]
  }
}
