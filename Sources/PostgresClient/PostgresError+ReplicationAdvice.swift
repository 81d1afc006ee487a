import WALStream

extension PostgresError {
  /// What an operator must change for a replication connection to work,
  /// when retrying alone will not (see ``WALStream/ReplicationAdvice``).
  public var replicationAdvice: String? {
    switch self {
    case .server(let state, let message, _), .setupRefused(let state, let message):
      ReplicationAdvice.advice(sqlState: state, message: message)
    case .connectionFailed(let message), .connectionLost(let message):
      ReplicationAdvice.advice(sqlState: nil, message: message)
    }
  }
}
