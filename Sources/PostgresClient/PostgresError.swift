/// A failure talking to PostgreSQL, with what the server or libpq said.
public enum PostgresError: Error, Sendable, CustomStringConvertible {
  /// No connection could be made (server down, wrong conninfo, refused).
  case connectionFailed(String)
  /// The connection broke; the statement may or may not have run.
  case connectionLost(String)
  /// The server rejected the statement.
  case server(sqlState: String, message: String, detail: String?)
  /// The server refused the setup of a transaction (``PostgresConnection/execute(after:_:_:_:)``):
  /// acting as a role the session may not become, for instance. The statement did not run.
  case setupRefused(sqlState: String, message: String)

  public var sqlState: String? {
    if case .server(let state, _, _) = self { return state }
    return nil
  }

  /// True when a new connection might succeed where this one failed.
  public var isConnectionProblem: Bool {
    switch self {
    case .connectionFailed, .connectionLost: return true
    case .setupRefused: return false
    case .server(let state, _, _):
      // Class 08: connection exception; 57P0x: the server is shutting down or restarting.
      return state.hasPrefix("08") || state.hasPrefix("57P")
    }
  }

  public var description: String {
    switch self {
    case .connectionFailed(let message): return "cannot connect to PostgreSQL: \(message)"
    case .connectionLost(let message): return "connection to PostgreSQL lost: \(message)"
    case .server(let state, let message, let detail):
      return "PostgreSQL error \(state): \(message)" + (detail.map { " (\($0))" } ?? "")
    case .setupRefused(let state, let message):
      return "PostgreSQL refused the transaction's setup (\(state)): \(message)"
    }
  }
}
