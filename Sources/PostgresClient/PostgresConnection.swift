import CLibPQ
import DaemonSupport
import Glibc

/// One libpq connection.
///
/// Threading rule: a connection is used by one thread at a time. It is handed
/// between threads only through a lock (a pool or an owning thread), never
/// shared; hence `@unchecked Sendable`. libpq itself is thread-safe for
/// distinct connections.
public final class PostgresConnection: @unchecked Sendable {
  private let handle: OpaquePointer
  private var preparedNames: [String: String] = [:]
  /// A pipeline that could not be left (its results not all read): the
  /// connection is then of no further use, and says so as a broken one does.
  private var isStuckInPipeline = false

  /// TCP keepalives for a connection that must notice a vanished server by
  /// itself; a conninfo that sets them wins (the last setting counts). They do
  /// nothing on a unix socket.
  public static func withKeepalives(_ conninfo: String) -> String {
    if conninfo.contains("://") { return conninfo }
    return "keepalives=1 keepalives_idle=30 keepalives_interval=10 keepalives_count=3 connect_timeout=5 " + conninfo
  }

  /// Connects, blocking up to the conninfo's `connect_timeout`.
  public init(conninfo: String) throws(PostgresError) {
    guard let handle = PQconnectdb(conninfo) else {
      throw .connectionFailed("out of memory")
    }
    guard PQstatus(handle) == CONNECTION_OK else {
      let message = Self.errorMessage(handle)
      PQfinish(handle)
      throw .connectionFailed(message)
    }
    self.handle = handle
  }

  deinit { PQfinish(handle) }

  public var isHealthy: Bool { PQstatus(handle) == CONNECTION_OK }

  /// For a connection between statements that does not LISTEN: whether the
  /// server has spoken since, which it only does to end the session (a
  /// restart or an administrator terminates idle sessions with a FATAL and
  /// closes the socket). One poll(2) with no wait, so that such a connection
  /// is replaced before a statement is sent on it, while that is still safe.
  public var hasUnsolicitedInput: Bool {
    var entry = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
    return isStuckInPipeline || poll(&entry, 1, 0) != 0 || PQstatus(handle) != CONNECTION_OK
  }

  /// Whether the connection is known to be unusable without asking the
  /// kernel: libpq saw it break, or a pipeline was left unfinished.
  public var isKnownBroken: Bool { isStuckInPipeline || PQstatus(handle) != CONNECTION_OK }

  /// The socket, for waiting on notifications with poll(2).
  public var socket: Int32 { PQsocket(handle) }

  /// Runs a parameterised statement (text parameters, text results). The
  /// statement is prepared once per connection and reused.
  @discardableResult
  public func execute(_ sql: String, _ parameters: [String?] = []) throws(PostgresError) -> PostgresResult {
    let name = try preparedName(for: sql, parameterCount: parameters.count)
    let result = withCStrings(parameters) { values in
      PQexecPrepared(handle, name, Int32(parameters.count), values, nil, nil, 0)
    }
    return try check(result)
  }

  /// Runs `setup` and then `sql` in one transaction and one round trip:
  /// both are sent in a pipeline ended by one Sync, which makes them one
  /// implicit transaction, so what `setup` sets transaction-locally (a role,
  /// claims: `set_config(…, true)`) holds for `sql` and for nothing after it.
  /// When either fails, the transaction rolls back and the first error is
  /// thrown (``PostgresError/setupRefused(sqlState:message:)`` for `setup`'s).
  /// Returns the result of `sql`.
  @discardableResult
  public func execute(
    after setup: String, _ setupParameters: [String?], _ sql: String, _ parameters: [String?]
  ) throws(PostgresError) -> PostgresResult {
    let setupName = try preparedName(for: setup, parameterCount: setupParameters.count)
    let name = try preparedName(for: sql, parameterCount: parameters.count)
    guard PQenterPipelineMode(handle) == 1 else { throw .connectionLost(Self.errorMessage(handle)) }
    defer { if PQexitPipelineMode(handle) != 1 { isStuckInPipeline = true } }
    let sent =
      withCStrings(setupParameters) { values in
        PQsendQueryPrepared(handle, setupName, Int32(setupParameters.count), values, nil, nil, 0)
      } == 1
      && withCStrings(parameters) { values in
        PQsendQueryPrepared(handle, name, Int32(parameters.count), values, nil, nil, 0)
      } == 1
      && PQpipelineSync(handle) == 1
    guard sent else { throw .connectionLost(Self.errorMessage(handle)) }
    // Every result is read, up to the Sync's, whatever failed: the
    // connection is then ready for the next statement.
    let setupOutcome = collectPipelined()
    let outcome = collectPipelined()
    guard let sync = PQgetResult(handle) else { throw .connectionLost(Self.errorMessage(handle)) }
    let synced = PQresultStatus(sync) == PGRES_PIPELINE_SYNC
    PQclear(sync)
    guard synced else { throw .connectionLost(Self.errorMessage(handle)) }
    if case .failure(let error) = setupOutcome {
      guard case .server(let state, let message, _) = error else { throw error }
      throw .setupRefused(sqlState: state, message: message)
    }
    return try outcome.get()
  }

  /// The result of one pipelined statement, and the NULL that ends it.
  private func collectPipelined() -> Result<PostgresResult, PostgresError> {
    guard let result = PQgetResult(handle) else { return .failure(.connectionLost(Self.errorMessage(handle))) }
    let outcome: Result<PostgresResult, PostgresError>
    if PQresultStatus(result) == PGRES_PIPELINE_ABORTED {
      PQclear(result)
      outcome = .failure(.server(sqlState: "25P02", message: "skipped after an earlier failure", detail: nil))
    } else {
      outcome = Result { () throws(PostgresError) -> PostgresResult in try check(result) }
    }
    while let extra = PQgetResult(handle) { PQclear(extra) }
    return outcome
  }

  /// Runs one or more statements without parameters (setup, LISTEN).
  @discardableResult
  public func executeSimple(_ sql: String) throws(PostgresError) -> PostgresResult {
    try check(PQexec(handle, sql))
  }

  /// Drops every statement this connection prepared; they are prepared
  /// again on next use, against the tables as they are now.
  public func forgetPreparedStatements() throws(PostgresError) {
    preparedNames = [:]
    try executeSimple("DEALLOCATE ALL")
  }

  private func preparedName(for sql: String, parameterCount: Int) throws(PostgresError) -> String {
    if let name = preparedNames[sql] { return name }
    let name = "pbp_\(preparedNames.count)"
    _ = try check(PQprepare(handle, name, sql, Int32(parameterCount), nil))
    preparedNames[sql] = name
    return name
  }

  private func check(_ result: OpaquePointer?) throws(PostgresError) -> PostgresResult {
    guard let result else {
      throw .connectionLost(Self.errorMessage(handle))
    }
    defer { PQclear(result) }
    switch PQresultStatus(result) {
    case PGRES_COMMAND_OK, PGRES_TUPLES_OK:
      return PostgresResult(result)
    default:
      if PQstatus(handle) != CONNECTION_OK {
        throw .connectionLost(Self.errorMessage(handle))
      }
      let state = Self.field(result, Int32(UInt8(ascii: "C"))) ?? "XX000"
      let message = Self.field(result, Int32(UInt8(ascii: "M"))) ?? Self.errorMessage(handle)
      throw .server(sqlState: state, message: message, detail: Self.field(result, Int32(UInt8(ascii: "D"))))
    }
  }

  // MARK: Notifications

  /// Reads what the server sent without blocking. Throws when the connection is gone.
  public func consumeInput() throws(PostgresError) {
    guard PQconsumeInput(handle) == 1 else {
      throw .connectionLost(Self.errorMessage(handle))
    }
  }

  /// Sends a statement without waiting for its result (a liveness probe on the
  /// LISTEN connection); collect it with ``collectResults()``.
  public func send(_ sql: String) throws(PostgresError) {
    guard PQsendQuery(handle, sql) == 1 else { throw .connectionLost(Self.errorMessage(handle)) }
  }

  /// After ``consumeInput()``: discards the results of sent statements that
  /// have fully arrived. Returns true when at least one statement completed.
  public func collectResults() -> Bool {
    var completed = false
    while PQisBusy(handle) == 0, let result = PQgetResult(handle) {
      PQclear(result)
      completed = true
    }
    return completed
  }

  /// The next notification already read by ``consumeInput()``.
  public func nextNotification() -> (channel: String, payload: [UInt8])? {
    guard let notification = PQnotifies(handle) else { return nil }
    defer { PQfreemem(notification) }
    let channel = String(cString: notification.pointee.relname)
    let payload = notification.pointee.extra!
    let bytes = UnsafeRawBufferPointer(start: payload, count: strlen(payload))
    return (channel, Array(bytes))
  }

  // MARK: Helpers

  private static func errorMessage(_ handle: OpaquePointer) -> String {
    guard let text = PQerrorMessage(handle) else { return "unknown libpq error" }
    return String(cString: text).trimmingWhitespace()
  }

  private static func field(_ result: OpaquePointer, _ code: Int32) -> String? {
    guard let value = PQresultErrorField(result, code) else { return nil }
    return String(cString: value)
  }

  /// Quotes an identifier that came from the catalog or configuration (never
  /// from a request). PostgreSQL reads bytes, so every `"` byte is doubled:
  /// in Swift a `"` followed by a combining mark is a single Character, which
  /// a Character-wise replacement would leave alone.
  public static func quoteIdentifier(_ name: String) -> String {
    var bytes: [UInt8] = [UInt8(ascii: "\"")]
    bytes.reserveCapacity(name.utf8.count + 2)
    for byte in name.utf8 {
      bytes.append(byte)
      if byte == UInt8(ascii: "\"") { bytes.append(byte) }
    }
    bytes.append(UInt8(ascii: "\""))
    return String(decoding: bytes, as: UTF8.self)
  }
}

private func withCStrings<R>(
  _ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R
) -> R {
  if strings.isEmpty { return body(nil) }
  var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { $0.flatMap { strdup($0) } }
  defer {
    for pointer in pointers { free(pointer) }
  }
  return pointers.withUnsafeMutableBufferPointer { buffer in
    buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: max(buffer.count, 1)) {
      body($0)
    }
  }
}
