import ArgumentParser
import DaemonSupport
import Glibc
import JSON
import PostgresClient
import WALStream

/// Reads a logical replication slot the way pbp-notifyd's wal source does
/// (WALStream's state machine over a ReplicationConnection) and prints what
/// happens as JSON lines: for the integration tests and for an operator who
/// wants to see what a slot holds. Not installed.
@main
struct WALDumpCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "pbp-wal-dump",
    abstract: "Prints the pbp events of a logical replication slot (pgoutput, messages) as JSON lines.",
    discussion: """
      Lines: {"identify":…} {"slot":…} then {"event":…} for each event, {"status":…}
      for each standby status update sent, and {"end":…}; or {"error":…,"advice":…}
      (exit status 1). --ring-keep N pretends to be a ring that must be able to re-read
      its N newest events: the slot is confirmed only up to the oldest of them.
      """)

  @Option(help: "libpq connection string (replication=database is added).")
  var conninfo: String

  @Option(help: "The replication slot.")
  var slot: String

  @Option(help: "The publication pgoutput is started with (an empty one will do).")
  var publication = "pbp_messages"

  @Flag(help: "Create the slot first if it does not exist.")
  var createSlot = false

  @Option(help: "Stop after this many events (0: only --seconds ends the run).")
  var count = 0

  @Option(help: "Stop after this many seconds.")
  var seconds: Double = 30

  @Option(help: "The newest position a previous run stamped, COMMIT_LSN:INDEX: events at or before it are dropped.")
  var alreadyStamped: String?

  @Option(help: "How many of the newest events the pretended ring keeps (0: it needs none).")
  var ringKeep = 0

  @Option(help: "Seconds between standby status updates when not asked.")
  var statusInterval: Double = 10

  func validate() throws {
    if let alreadyStamped, Self.position(alreadyStamped) == nil {
      throw ValidationError("--already-stamped: expected COMMIT_LSN:INDEX, like 0/1500AD8:3")
    }
    guard count >= 0, ringKeep >= 0, seconds > 0, statusInterval > 0 else {
      throw ValidationError("--count and --ring-keep must not be negative, --seconds and --status-interval positive")
    }
  }

  static func position(_ text: String) -> WALPosition? {
    let parts = text.split(separator: ":")
    guard parts.count == 2, let lsn = LSN(parts[0]), let index = UInt32(parts[1]) else { return nil }
    return WALPosition(commitLSN: lsn, index: index)
  }

  func run() throws {
    do {
      try dump()
    } catch let error as PostgresError {
      emit(["error": .string(error.description), "advice": error.replicationAdvice.map { .string($0) } ?? .null])
      throw ExitCode(1)
    } catch let error as WALStreamError {
      emit(["error": .string(error.description), "advice": .null])
      throw ExitCode(1)
    }
  }

  private func dump() throws {
    let connection = try ReplicationConnection(conninfo: conninfo)
    let identity = try connection.identifySystem()
    emit([
      "identify": [
        "system_identifier": .string(String(identity.systemIdentifier)), "timeline": .integer(identity.timeline),
        "xlogpos": .string(identity.xlogPosition.description), "dbname": identity.database.map { .string($0) } ?? .null,
      ]
    ])
    var created = false
    if createSlot, case .created = try connection.createSlot(slot) { created = true }
    guard let state = try connection.slotState(slot), let confirmed = state.confirmedFlush else {
      throw PostgresError.server(sqlState: "42704", message: "replication slot \"\(slot)\" does not exist", detail: nil)
    }
    emit(["slot": ["created": .bool(created), "confirmed_flush": .string(confirmed.description)]])
    try connection.startReplication(slot: slot, publication: publication)

    let start = MonotonicClock.now()
    let deadline = start + .milliseconds(Int64(seconds * 1000))
    var machine = WALStreamStateMachine(
      startingAt: confirmed, alreadyStamped: alreadyStamped.flatMap(Self.position),
      statusInterval: .milliseconds(Int64(statusInterval * 1000)), now: start)
    var ring: [LSN] = []
    var events = 0
    var confirmable: LSN { ringKeep == 0 || ring.isEmpty ? .max : ring[0] }

    reading: while count == 0 || events < count {
      let now = MonotonicClock.now()
      if now >= deadline { break }
      let wait = min(deadline, machine.nextStatusDeadline) - now
      var entry = pollfd(fd: connection.socketDescriptor, events: Int16(POLLIN), revents: 0)
      _ = poll(&entry, 1, Int32(clamping: max(wait.milliseconds, 0)))
      while count == 0 || events < count {
        switch connection.readCopyData() {
        case .wouldBlock:
          break
        case .ended(let error):
          throw error ?? PostgresError.connectionLost("the server ended the replication stream")
        case .data(let bytes):
          let message = try decode(bytes)
          if let event = try machine.received(message, now: MonotonicClock.now()) {
            events += 1
            ring.append(event.position.commitLSN)
            if ring.count > ringKeep { ring.removeFirst(ring.count - ringKeep) }
            emit([
              "event": [
                "commit_lsn": .string(event.position.commitLSN.description), "index": .integer(event.position.index),
                "message_lsn": .string(event.messageLSN.description), "size": .integer(event.content.count),
                "content": .string(String(decoding: event.content, as: UTF8.self)),
              ]
            ])
          }
          continue
        }
        break
      }
      if let update = machine.statusUpdate(
        confirmable: confirmable, clock: PostgresTimestamp.now(), now: MonotonicClock.now())
      {
        try send(update, on: connection)
      }
      continue reading
    }
    try send(
      machine.finalStatusUpdate(confirmable: confirmable, clock: PostgresTimestamp.now(), now: MonotonicClock.now()),
      on: connection)
    try finish(connection, before: MonotonicClock.now() + .seconds(10))
    emit([
      "end": [
        "events": .integer(events), "duplicates_skipped": .integer(machine.duplicatesSkipped),
        "confirmed_flush": .string(machine.confirmedFlush.description),
        "delivered_through": .string(machine.deliveredThrough.description),
      ]
    ])
  }

  /// Ends the stream cleanly, so that the last status update counts; what
  /// the server still sends meanwhile is dropped (it comes again next time).
  private func finish(_ connection: ReplicationConnection, before deadline: Duration) throws(PostgresError) {
    try connection.endStreaming()
    while MonotonicClock.now() < deadline {
      switch connection.readCopyData() {
      case .data: continue
      case .ended: return
      case .wouldBlock:
        var entry = pollfd(fd: connection.socketDescriptor, events: Int16(POLLIN), revents: 0)
        _ = poll(&entry, 1, Int32(clamping: max((deadline - MonotonicClock.now()).milliseconds, 0)))
      }
    }
  }

  private func decode(_ bytes: [UInt8]) throws(WALStreamError) -> ReplicationMessage {
    do { return try ReplicationMessage.decode(bytes[...]) } catch { throw .malformed(error) }
  }

  private func send(_ update: StandbyStatusUpdate, on connection: ReplicationConnection) throws(PostgresError) {
    var flushed = try connection.send(update)
    while !flushed {
      var entry = pollfd(fd: connection.socketDescriptor, events: Int16(POLLOUT), revents: 0)
      _ = poll(&entry, 1, 1000)
      flushed = try connection.flush()
    }
    emit(["status": ["write": .string(update.write.description), "flush": .string(update.flush.description)]])
  }

  /// One line, written at once (unbuffered: the tests read it while the dump runs).
  private func emit(_ line: JSONValue) {
    let bytes = Array((JSONWriter.serialize(line) + "\n").utf8)
    var offset = 0
    while offset < bytes.count {
      let written = bytes[offset...].withUnsafeBytes { Glibc.write(STDOUT_FILENO, $0.baseAddress, $0.count) }
      if written < 0 && errno == EINTR { continue }
      guard written > 0 else { return }
      offset += written
    }
  }
}
