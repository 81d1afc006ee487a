import PostgresClient

/// How database failures become API errors.
enum APIMapping {
  static func map(_ error: any Error) -> APIError {
    if let apiError = error as? APIError { return apiError }
    guard let error = error as? PostgresError else { return .internalError("\(error)") }
    if error.isConnectionProblem { return .databaseUnavailable() }
    guard case .server(let state, let message, let detail) = error else { return .databaseUnavailable() }
    let text = message + (detail.map { ": \($0)" } ?? "")
    switch state {
    case "23505": return .conflict(text)
    case "23503": return .conflict(text)
    case "23502": return .unprocessable("missing_field", text)
    case "23514": return .unprocessable("check_violation", text)
    case "22001": return .unprocessable("value_too_long", text)
    case let state where state.hasPrefix("22"): return .unprocessable("invalid_value", text)
    case "42501": return APIError(status: 403, code: "forbidden", message: text)
    case "53300", "53200", "57014": return .databaseUnavailable()
    default: return .internalError("database error \(state)")
    }
  }
}
