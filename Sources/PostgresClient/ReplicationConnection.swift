import CLibPQ
import Glibc
import WALStream

/// A logical replication connection (`replication=database`): the commands
/// of the replication protocol, then, once ``startReplication(slot:from:publication:)``
/// has put it in COPY BOTH mode, non-blocking reads of the walsender's
/// CopyData and writes of standby status updates. The decoding and the
/// decisions live in WALStream; this is only the libpq side.
///
/// Threading rule: as for ``PostgresConnection``, one thread at a time uses a
/// connection (the reader's loop owns it), so `@unchecked Sendable` only lets
/// it be handed over; it is never shared.
public final class ReplicationConnection: @unchecked Sendable {
  private let handle: OpaquePointer

  /// What `IDENTIFY_SYSTEM` answers: which WAL history this is and how far it goes.
  public struct SystemIdentity: Equatable, Sendable {
    public var systemIdentifier: UInt64
    public var timeline: UInt32
    public var xlogPosition: LSN
    public var database: String?
  }

  public enum SlotCreation: Equatable, Sendable {
    /// The slot is new; streaming from it starts at `consistentPoint`.
    case created(consistentPoint: LSN)
    case alreadyExists
  }

  /// A slot as pg_replication_slots shows it.
  public struct SlotState: Equatable, Sendable {
    public var plugin: String?
    public var confirmedFlush: LSN?
    public var restartLSN: LSN?
    /// `reserved`, `extended`, `unreserved` or `lost` (then the slot is useless).
    public var walStatus: String?
    /// The process that streams from it now, if one does.
    public var activePID: Int32?
    /// Bytes of WAL the slot keeps from being removed (server's current position minus restart_lsn).
    public var retainedBytes: Int64?
  }

  /// One non-blocking read in COPY BOTH mode.
  public enum CopyRead: Sendable {
    case data([UInt8])
    /// Nothing complete yet: wait for the socket to be readable.
    case wouldBlock
    /// The stream ended: `nil` when the server ended it cleanly, otherwise why.
    case ended(PostgresError?)
  }

  /// `conninfo` with `replication=database` added (it must name the database
  /// the slot belongs to). A URI gets it as a query parameter.
  public static func replicationConninfo(_ conninfo: String) -> String {
    if conninfo.contains("://") { return conninfo + (conninfo.contains("?") ? "&" : "?") + "replication=database" }
    return conninfo + " replication=database"
  }

  /// Connects, blocking up to the conninfo's `connect_timeout`.
  public init(conninfo: String) throws(PostgresError) {
    guard let handle = PQconnectdb(Self.replicationConninfo(conninfo)) else {
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

  /// The socket, for poll(2) or epoll.
  public var socketDescriptor: Int32 { PQsocket(handle) }

  public var isHealthy: Bool { PQstatus(handle) == CONNECTION_OK }

  // MARK: Commands (before streaming)

  public func identifySystem() throws(PostgresError) -> SystemIdentity {
    let rows = try query("IDENTIFY_SYSTEM")
    guard let row = rows.first, row.count >= 4, let systemID = row[0].flatMap({ UInt64($0) }),
      let timeline = row[1].flatMap({ UInt32($0) }), let position = row[2].flatMap({ LSN($0) })
    else {
      throw .server(sqlState: "XX000", message: "IDENTIFY_SYSTEM answered \(rows)", detail: nil)
    }
    return SystemIdentity(systemIdentifier: systemID, timeline: timeline, xlogPosition: position, database: row[3])
  }

  /// Creates a durable logical slot for pgoutput. The slot only sees
  /// publications that existed when it was made (the historic catalog it
  /// decodes with is that of each transaction), so create the publication first.
  public func createSlot(_ name: String, temporary: Bool = false) throws(PostgresError) -> SlotCreation {
    let command =
      "CREATE_REPLICATION_SLOT \(PostgresConnection.quoteIdentifier(name))\(temporary ? " TEMPORARY" : "")"
      + " LOGICAL pgoutput (SNAPSHOT 'nothing')"
    let rows: [[String?]]
    do throws(PostgresError) {
      rows = try query(command)
    } catch {
      if error.sqlState == "42710" { return .alreadyExists }  // duplicate_object
      throw error
    }
    guard let point = rows.first?[1].flatMap({ LSN($0) }) else {
      throw .server(sqlState: "XX000", message: "CREATE_REPLICATION_SLOT answered \(rows)", detail: nil)
    }
    return .created(consistentPoint: point)
  }

  /// The slot's state, or nil when there is no such slot (an ordinary query,
  /// which a `replication=database` connection also runs).
  public func slotState(_ name: String) throws(PostgresError) -> SlotState? {
    let rows = try query(
      """
      SELECT plugin, confirmed_flush_lsn, restart_lsn, wal_status, active_pid,
        pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint
      FROM pg_replication_slots WHERE slot_name = \(Self.quoteLiteral(name))
      """)
    guard let row = rows.first else { return nil }
    return SlotState(
      plugin: row[0], confirmedFlush: row[1].flatMap { LSN($0) }, restartLSN: row[2].flatMap { LSN($0) },
      walStatus: row[3], activePID: row[4].flatMap { Int32($0) }, retainedBytes: row[5].flatMap { Int64($0) })
  }

  /// Drops a slot (an invalidated one, to make it again).
  public func dropSlot(_ name: String) throws(PostgresError) {
    _ = try query("DROP_REPLICATION_SLOT \(PostgresConnection.quoteIdentifier(name))")
  }

  /// The first value of an ordinary query's first row (a `replication=database`
  /// connection runs those before streaming starts).
  public func scalar(_ query: String) throws(PostgresError) -> String? {
    try self.query(query).first?.first ?? nil
  }

  /// Starts streaming pgoutput (protocol 1) with logical decoding messages.
  /// `from` ``LSN/zero`` means the slot's confirmed position. pgoutput needs
  /// a publication even when only messages are wanted; an empty one will do.
  /// The connection is non-blocking from here on.
  public func startReplication(slot: String, from start: LSN = .zero, publication: String) throws(PostgresError) {
    let command =
      "START_REPLICATION SLOT \(PostgresConnection.quoteIdentifier(slot)) LOGICAL \(start)"
      + " (proto_version '1', publication_names \(Self.quoteLiteral(PostgresConnection.quoteIdentifier(publication)))"
      + ", messages 'true')"
    guard let result = PQexec(handle, command) else { throw .connectionLost(Self.errorMessage(handle)) }
    defer { PQclear(result) }
    guard PQresultStatus(result) == PGRES_COPY_BOTH else { throw error(of: result) }
    guard PQsetnonblocking(handle, 1) == 0 else { throw .connectionLost(Self.errorMessage(handle)) }
  }

  // MARK: Streaming

  /// The next CopyData message, reading from the socket when nothing whole is
  /// buffered. Call when the socket is readable, until `.wouldBlock`.
  public func readCopyData() -> CopyRead {
    var buffer: UnsafeMutablePointer<CChar>?
    var length = PQgetCopyData(handle, &buffer, 1)
    if length == 0 {
      guard PQconsumeInput(handle) == 1 else { return .ended(.connectionLost(Self.errorMessage(handle))) }
      length = PQgetCopyData(handle, &buffer, 1)
    }
    switch length {
    case 0:
      return .wouldBlock
    case -1:
      return .ended(finalResult())
    case ..<0:
      return .ended(.connectionLost(Self.errorMessage(handle)))
    default:
      defer { PQfreemem(buffer) }
      return .data(Array(UnsafeRawBufferPointer(start: buffer, count: Int(length))))
    }
  }

  /// Sends a standby status update. Returns false when part of it is still
  /// queued: wait for the socket to be writable and call ``flush()``.
  @discardableResult
  public func sendStandbyStatus(
    write: LSN, flush: LSN, apply: LSN, now: PostgresTimestamp, replyRequested: Bool = false
  ) throws(PostgresError) -> Bool {
    let update = StandbyStatusUpdate(
      write: write, flush: flush, apply: apply, clock: now, replyRequested: replyRequested)
    return try send(update)
  }

  /// Sends a standby status update the state machine decided on (see the other overload).
  @discardableResult
  public func send(_ update: StandbyStatusUpdate) throws(PostgresError) -> Bool {
    let bytes = update.encoded()
    let queued = bytes.withUnsafeBufferPointer { buffer in
      buffer.withMemoryRebound(to: CChar.self) { PQputCopyData(handle, $0.baseAddress, Int32($0.count)) }
    }
    guard queued == 1 else { throw .connectionLost(Self.errorMessage(handle)) }
    return try flush()
  }

  /// Writes what is queued; true when nothing is left.
  public func flush() throws(PostgresError) -> Bool {
    switch PQflush(handle) {
    case 0: return true
    case 1: return false
    default: throw .connectionLost(Self.errorMessage(handle))
    }
  }

  /// Ends the stream from this side, after a last status update: the
  /// walsender handles everything sent before (so the slot keeps the last
  /// confirmed position), then ends its side too; read on with
  /// ``readCopyData()`` until `.ended`. Closing the connection instead may
  /// lose that update: a walsender that finds the socket closed while it is
  /// still sending exits without reading what is left (measured on PostgreSQL 15).
  public func endStreaming() throws(PostgresError) {
    var queued = PQputCopyEnd(handle, nil)
    if queued == 0 {
      _ = try flush()
      queued = PQputCopyEnd(handle, nil)
    }
    guard queued == 1 else { throw .connectionLost(Self.errorMessage(handle)) }
    _ = try flush()
  }

  // MARK: Helpers

  /// The result that follows the end of COPY BOTH: nil for a clean end.
  private func finalResult() -> PostgresError? {
    var failure: PostgresError?
    while let result = PQgetResult(handle) {
      let status = PQresultStatus(result)
      if failure == nil, status != PGRES_COMMAND_OK, status != PGRES_COPY_OUT, status != PGRES_COPY_BOTH {
        failure = error(of: result)
      }
      PQclear(result)
      if PQisBusy(handle) == 1 { break }
    }
    if failure == nil, PQstatus(handle) != CONNECTION_OK { failure = .connectionLost(Self.errorMessage(handle)) }
    return failure
  }

  /// Runs a command that answers rows (or none); text values.
  private func query(_ command: String) throws(PostgresError) -> [[String?]] {
    guard let result = PQexec(handle, command) else { throw .connectionLost(Self.errorMessage(handle)) }
    defer { PQclear(result) }
    let status = PQresultStatus(result)
    guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else { throw error(of: result) }
    return (0..<PQntuples(result)).map { row in
      (0..<PQnfields(result)).map { column in
        PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
      }
    }
  }

  private func error(of result: OpaquePointer) -> PostgresError {
    if PQstatus(handle) != CONNECTION_OK { return .connectionLost(Self.errorMessage(handle)) }
    let state = Self.field(result, "C") ?? "XX000"
    let message = Self.field(result, "M") ?? Self.errorMessage(handle)
    return .server(sqlState: state, message: message, detail: Self.field(result, "D"))
  }

  private static func field(_ result: OpaquePointer, _ code: Unicode.Scalar) -> String? {
    guard let value = PQresultErrorField(result, Int32(code.value)) else { return nil }
    return String(cString: value)
  }

  private static func errorMessage(_ handle: OpaquePointer) -> String {
    guard let text = PQerrorMessage(handle) else { return "unknown libpq error" }
    return String(cString: text).trimmingWhitespace()
  }

  /// A string literal for the replication grammar and simple queries, which
  /// take no parameters; names come from configuration, never from a request.
  static func quoteLiteral(_ text: String) -> String {
    var bytes: [UInt8] = [UInt8(ascii: "'")]
    for byte in text.utf8 {
      bytes.append(byte)
      if byte == UInt8(ascii: "'") { bytes.append(byte) }
    }
    bytes.append(UInt8(ascii: "'"))
    return String(decoding: bytes, as: UTF8.self)
  }
}
