/// One CopyData message from a walsender in COPY BOTH mode.
public enum ReplicationMessage: Equatable, Sendable {
  case xLogData(XLogData)
  case primaryKeepalive(PrimaryKeepalive)

  /// Decodes one CopyData payload; the result shares the payload's storage.
  public static func decode(_ bytes: ArraySlice<UInt8>) throws(WALDecodingError) -> ReplicationMessage {
    guard let type = bytes.first else { throw .empty(in: "replication message") }
    let body = bytes.dropFirst()
    switch type {
    case UInt8(ascii: "w"):
      var reader = ByteReader(body, message: "XLogData")
      let start = try reader.lsn("walStart")
      let end = try reader.lsn("walEnd")
      let clock = try reader.timestamp("serverClock")
      return .xLogData(XLogData(walStart: start, walEnd: end, serverClock: clock, data: reader.bytes))
    case UInt8(ascii: "k"):
      var reader = ByteReader(body, message: "primary keepalive")
      let end = try reader.lsn("walEnd")
      let clock = try reader.timestamp("serverClock")
      let reply = try reader.uint8("replyRequested")
      try reader.finish()
      return .primaryKeepalive(PrimaryKeepalive(walEnd: end, serverClock: clock, replyRequested: reply != 0))
    default:
      throw .unknownType(type, in: "replication message")
    }
  }
}

/// `'w'`: a piece of the decoded stream (for logical replication, one
/// output plugin message in `data`).
public struct XLogData: Equatable, Sendable {
  public var walStart: LSN
  public var walEnd: LSN
  public var serverClock: PostgresTimestamp
  public var data: ArraySlice<UInt8>

  public init(walStart: LSN, walEnd: LSN, serverClock: PostgresTimestamp, data: ArraySlice<UInt8>) {
    self.walStart = walStart
    self.walEnd = walEnd
    self.serverClock = serverClock
    self.data = data
  }

  public static func == (lhs: XLogData, rhs: XLogData) -> Bool {
    lhs.walStart == rhs.walStart && lhs.walEnd == rhs.walEnd && lhs.serverClock == rhs.serverClock
      && lhs.data.elementsEqual(rhs.data)
  }
}

/// `'k'`: the walsender's heartbeat: how far it has sent, and whether it
/// wants a status update at once (it is about to time the receiver out).
public struct PrimaryKeepalive: Equatable, Sendable {
  public var walEnd: LSN
  public var serverClock: PostgresTimestamp
  public var replyRequested: Bool

  public init(walEnd: LSN, serverClock: PostgresTimestamp, replyRequested: Bool) {
    self.walEnd = walEnd
    self.serverClock = serverClock
    self.replyRequested = replyRequested
  }
}

/// `'r'`: what the receiver tells the walsender. For a logical slot, `flush`
/// becomes the slot's confirmed_flush_lsn: the slot will not send again any
/// transaction that commits before it.
public struct StandbyStatusUpdate: Equatable, Sendable {
  public var write: LSN
  public var flush: LSN
  public var apply: LSN
  public var clock: PostgresTimestamp
  public var replyRequested: Bool

  public init(write: LSN, flush: LSN, apply: LSN, clock: PostgresTimestamp, replyRequested: Bool) {
    self.write = write
    self.flush = flush
    self.apply = apply
    self.clock = clock
    self.replyRequested = replyRequested
  }

  /// The CopyData payload: 34 bytes.
  public func encoded() -> [UInt8] {
    var writer = ByteWriter()
    writer.bytes.reserveCapacity(34)
    writer.uint8(UInt8(ascii: "r"))
    writer.lsn(write)
    writer.lsn(flush)
    writer.lsn(apply)
    writer.timestamp(clock)
    writer.uint8(replyRequested ? 1 : 0)
    return writer.bytes
  }
}
