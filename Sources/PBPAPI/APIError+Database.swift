import PostgresClient

extension APIError {
  /// The API's answer to a failure of the database: a stable code for what a
  /// client can act on, 503 for what it can only retry.
  init(databaseFailure error: any Error) {
    if let apiError = error as? APIError {
      self = apiError
      return
    }
    guard let error = error as? PostgresError else {
      self = .internalError("\(error)")
      return
    }
    if case .setupRefused(_, let message) = error {
      self = APIError(status: 403, code: "forbidden", message: "this request may not act as its role: \(message)")
      return
    }
    guard !error.isConnectionProblem, case .server(let state, let message, let detail) = error else {
      self = .databaseUnavailable()
      return
    }
    let text = message + (detail.map { ": \($0)" } ?? "")
    switch state {
    case "23505", "23503": self = .conflict(text)
    case "23502": self = .unprocessable("missing_field", text)
    case "23514": self = .unprocessable("check_violation", text)
    case "22001": self = .unprocessable("value_too_long", text)
    case let state where state.hasPrefix("22"): self = .unprocessable("invalid_value", text)
    case "42501": self = APIError(status: 403, code: "forbidden", message: text)
    // A deadlock, a serialization failure, a lock not had in time: nothing
    // was written, and the same request may well succeed at once.
    case "40P01", "40001", "55P03": self = .retry(message)
    // A column, table, type or operator that the statement named is not
    // what it was (DDL since the table was described), or a prepared
    // statement's result changed: the statement did not run.
    case "42703", "42P01", "42804", "42883", "0A000": self = .schemaChanged(text)
    case "53300", "53200", "57014": self = .databaseUnavailable()
    default: self = .internalError("database error \(state)")
    }
  }
}
