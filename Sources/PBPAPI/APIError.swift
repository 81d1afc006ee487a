/// An error the API answers with: a status, a stable machine-readable code
/// and a message for people. The body is `{"error": code, "message": …}`.
public struct APIError: Error, Equatable, Sendable {
  public let status: Int
  public let code: String
  public let message: String
  public var extraHeaders: [HeaderField] = []

  public init(status: Int, code: String, message: String) {
    self.status = status
    self.code = code
    self.message = message
  }

  public static func badRequest(_ code: String, _ message: String) -> APIError {
    APIError(status: 400, code: code, message: message)
  }
  public static func notFound(_ message: String) -> APIError {
    APIError(status: 404, code: "not_found", message: message)
  }
  public static func unknownTable(_ name: String) -> APIError {
    APIError(status: 404, code: "unknown_table", message: "there is no table named \(name) in this API")
  }
  public static func methodNotAllowed(_ method: String, allowed: [String]) -> APIError {
    var error = APIError(status: 405, code: "method_not_allowed", message: "\(method) is not allowed here")
    error.extraHeaders = [HeaderField(name: "Allow", value: allowed.joined(separator: ", "))]
    return error
  }
  public static func conflict(_ message: String) -> APIError {
    APIError(status: 409, code: "conflict", message: message)
  }
  public static func tooLarge(limit: Int) -> APIError {
    APIError(status: 413, code: "body_too_large", message: "the request body exceeds \(limit) bytes")
  }
  /// Nothing of a body that ended before its declared length is used.
  public static func truncatedBody(declared: Int, received: Int) -> APIError {
    .badRequest(
      "truncated_body", "the request body ended after \(received) of its \(declared) bytes; nothing was written")
  }
  public static func unsupportedMediaType(_ type: String) -> APIError {
    APIError(
      status: 415, code: "unsupported_media_type",
      message: "send application/json or application/x-www-form-urlencoded, not \(type)")
  }
  public static func unprocessable(_ code: String, _ message: String) -> APIError {
    APIError(status: 422, code: code, message: message)
  }
  public static func databaseUnavailable() -> APIError {
    var error = APIError(
      status: 503, code: "database_unavailable", message: "the database cannot be reached; try again")
    error.extraHeaders = [HeaderField(name: "Retry-After", value: "1")]
    return error
  }
  public static func retry(_ reason: String) -> APIError {
    var error = APIError(
      status: 503, code: "retry",
      message: "the database could not run this now (\(reason)); nothing was written, try again")
    error.extraHeaders = [HeaderField(name: "Retry-After", value: "1")]
    return error
  }
  /// A table changed under the request (DDL); answered only when it
  /// failed again on the table as described afresh.
  public static func schemaChanged(_ reason: String) -> APIError {
    var error = APIError(
      status: 503, code: "schema_changed",
      message: "the table changed while this request ran (\(reason)); nothing was written, try again")
    error.extraHeaders = [HeaderField(name: "Retry-After", value: "1")]
    return error
  }
  public static func streamUnavailable() -> APIError {
    var error = APIError(
      status: 503, code: "stream_unavailable", message: "the change stream is not connected yet; try again")
    error.extraHeaders = [HeaderField(name: "Retry-After", value: "1")]
    return error
  }
  public static func internalError(_ message: String) -> APIError {
    APIError(status: 500, code: "internal_error", message: message)
  }
}
