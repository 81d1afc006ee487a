/// One message of pgoutput's logical replication protocol, version 1 (the
/// `data` of an XLogData). Only what the change stream needs is decoded:
/// transaction bounds and logical decoding messages; row changes and catalog
/// messages (which come only for tables in the publication) are recognised
/// and skipped unread.
public enum PgOutputMessage: Equatable, Sendable {
  /// A transaction starts; `finalLSN` is the LSN of its commit record.
  case begin(finalLSN: LSN, commitTime: PostgresTimestamp, xid: UInt32)
  /// The transaction ends; `commitLSN` repeats Begin's final LSN, `endLSN`
  /// is the end of the commit record.
  case commit(flags: UInt8, commitLSN: LSN, endLSN: LSN, commitTime: PostgresTimestamp)
  /// `pg_logical_emit_message`.
  case message(LogicalMessage)
  case skipped(SkippedKind)

  public enum SkippedKind: Equatable, Sendable {
    case relation, type, origin, insert, update, delete, truncate
  }

  public static func decode(_ bytes: ArraySlice<UInt8>) throws(WALDecodingError) -> PgOutputMessage {
    guard let type = bytes.first else { throw .empty(in: "pgoutput message") }
    let body = bytes.dropFirst()
    switch type {
    case UInt8(ascii: "B"):
      var reader = ByteReader(body, message: "Begin")
      let final = try reader.lsn("finalLSN")
      let time = try reader.timestamp("commitTime")
      let xid = try reader.uint32("xid")
      try reader.finish()
      return .begin(finalLSN: final, commitTime: time, xid: xid)
    case UInt8(ascii: "C"):
      var reader = ByteReader(body, message: "Commit")
      let flags = try reader.uint8("flags")
      let commit = try reader.lsn("commitLSN")
      let end = try reader.lsn("endLSN")
      let time = try reader.timestamp("commitTime")
      try reader.finish()
      return .commit(flags: flags, commitLSN: commit, endLSN: end, commitTime: time)
    case UInt8(ascii: "M"):
      var reader = ByteReader(body, message: "Message")
      let flags = try reader.uint8("flags")
      let lsn = try reader.lsn("lsn")
      let prefix = try reader.cString("prefix")
      let length = try reader.uint32("length")
      let content = try reader.take(Int(length), "content")
      try reader.finish()
      return .message(LogicalMessage(flags: flags, lsn: lsn, prefix: Array(prefix), content: content))
    case UInt8(ascii: "R"): return .skipped(.relation)
    case UInt8(ascii: "Y"): return .skipped(.type)
    case UInt8(ascii: "O"): return .skipped(.origin)
    case UInt8(ascii: "I"): return .skipped(.insert)
    case UInt8(ascii: "U"): return .skipped(.update)
    case UInt8(ascii: "D"): return .skipped(.delete)
    case UInt8(ascii: "T"): return .skipped(.truncate)
    default: throw .unknownType(type, in: "pgoutput message")
    }
  }

  /// The bytes pgoutput would send for this message (for tests and the fuzz
  /// target's round trip); a skipped kind, never read, encodes as its type byte.
  public func encoded() -> [UInt8] {
    var writer = ByteWriter()
    switch self {
    case .begin(let final, let time, let xid):
      writer.uint8(UInt8(ascii: "B"))
      writer.lsn(final)
      writer.timestamp(time)
      writer.uint32(xid)
    case .commit(let flags, let commit, let end, let time):
      writer.uint8(UInt8(ascii: "C"))
      writer.uint8(flags)
      writer.lsn(commit)
      writer.lsn(end)
      writer.timestamp(time)
    case .message(let message):
      writer.bytes.reserveCapacity(message.content.count + message.prefix.count + 15)
      writer.uint8(UInt8(ascii: "M"))
      writer.uint8(message.flags)
      writer.lsn(message.lsn)
      writer.append(message.prefix)
      writer.uint8(0)
      writer.uint32(UInt32(truncatingIfNeeded: message.content.count))
      writer.append(message.content)
    case .skipped(let kind):
      let types: [SkippedKind: Character] = [
        .relation: "R", .type: "Y", .origin: "O", .insert: "I", .update: "U", .delete: "D", .truncate: "T",
      ]
      writer.uint8(types[kind]!.asciiValue!)
    }
    return writer.bytes
  }
}

/// A logical decoding message (`pg_logical_emit_message(transactional, prefix, content)`).
public struct LogicalMessage: Equatable, Sendable {
  /// Bit 0: transactional (sent with its transaction, only if it commits).
  public var flags: UInt8
  /// The end of the message's WAL record (what `pg_logical_emit_message` returned).
  public var lsn: LSN
  public var prefix: [UInt8]
  public var content: ArraySlice<UInt8>

  public init(flags: UInt8, lsn: LSN, prefix: [UInt8], content: ArraySlice<UInt8>) {
    self.flags = flags
    self.lsn = lsn
    self.prefix = prefix
    self.content = content
  }

  public var isTransactional: Bool { flags & 1 != 0 }

  public static func == (lhs: LogicalMessage, rhs: LogicalMessage) -> Bool {
    lhs.flags == rhs.flags && lhs.lsn == rhs.lsn && lhs.prefix == rhs.prefix && lhs.content.elementsEqual(rhs.content)
  }
}
