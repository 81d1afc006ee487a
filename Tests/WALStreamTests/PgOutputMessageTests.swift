import Testing
import WALStream

@Suite struct PgOutputMessageTests {
  @Test func decodesBegin() throws {
    let wire = WireBytes("B").u64(0x1500AD8).i64(-5).u32(725)
    #expect(
      try PgOutputMessage.decode(wire.slice)
        == .begin(finalLSN: LSN(0x1500AD8), commitTime: .init(microsecondsSince2000: -5), xid: 725))
  }

  @Test func decodesCommit() throws {
    let wire = WireBytes("C").u8(0).u64(0x1500AD8).u64(0x1500B08).i64(99)
    #expect(
      try PgOutputMessage.decode(wire.slice)
        == .commit(
          flags: 0, commitLSN: LSN(0x1500AD8), endLSN: LSN(0x1500B08), commitTime: .init(microsecondsSince2000: 99)))
  }

  @Test func decodesATransactionalMessageAsPostgreSQL15SentIt() throws {
    // Bytes captured from pg_recvlogical (pgoutput, proto_version 1, messages true)
    // after `select pg_logical_emit_message(true, 'pbp', 'hello')`.
    let captured: [UInt8] = [
      0x4D, 0x01, 0, 0, 0, 0, 0x01, 0x50, 0x0A, 0xD8, 0x70, 0x62, 0x70, 0, 0, 0, 0, 5, 0x68, 0x65, 0x6C, 0x6C, 0x6F,
    ]
    guard case .message(let message) = try PgOutputMessage.decode(captured[...]) else {
      Issue.record("not a message")
      return
    }
    #expect(message.isTransactional)
    #expect(message.lsn == LSN("0/1500AD8"))
    #expect(message.prefix == Array("pbp".utf8))
    #expect(Array(message.content) == Array("hello".utf8))
  }

  @Test func aNonTransactionalMessageSaysSo() throws {
    let wire = WireBytes("M").u8(0).u64(1).cString("pbp").u32(0)
    guard case .message(let message) = try PgOutputMessage.decode(wire.slice) else {
      Issue.record("not a message")
      return
    }
    #expect(!message.isTransactional)
    #expect(message.content.isEmpty)
  }

  @Test func aMessageOfAMegabyteDecodesWhole() throws {
    let content = [UInt8](repeating: 0x61, count: 1 << 20)
    let wire = WireBytes("M").u8(1).u64(1).cString("pbp").u32(1 << 20).raw(content)
    guard case .message(let message) = try PgOutputMessage.decode(wire.slice) else {
      Issue.record("not a message")
      return
    }
    #expect(message.content.count == 1 << 20)
  }

  @Test func rowChangesAndCatalogMessagesAreRecognisedAndSkipped() throws {
    let kinds: [(Character, PgOutputMessage.SkippedKind)] = [
      ("R", .relation), ("Y", .type), ("O", .origin), ("I", .insert), ("U", .update), ("D", .delete),
      ("T", .truncate),
    ]
    for (type, kind) in kinds {
      #expect(try PgOutputMessage.decode(WireBytes(type).raw([1, 2, 3]).slice) == .skipped(kind))
    }
  }

  @Test func everyMalformedInputIsATypedError() {
    #expect(throws: WALDecodingError.empty(in: "pgoutput message")) { try PgOutputMessage.decode([][...]) }
    #expect(throws: WALDecodingError.unknownType(UInt8(ascii: "S"), in: "pgoutput message")) {
      try PgOutputMessage.decode(WireBytes("S").u32(1).slice)  // a stream start: protocol 2, never asked for
    }
    #expect(throws: WALDecodingError.truncated(field: "xid", in: "Begin", needed: 4, available: 2)) {
      try PgOutputMessage.decode(WireBytes("B").u64(1).i64(2).raw([0, 0]).slice)
    }
    #expect(throws: WALDecodingError.trailingBytes(in: "Commit", count: 2)) {
      try PgOutputMessage.decode(WireBytes("C").u8(0).u64(1).u64(2).i64(3).raw([0, 0]).slice)
    }
    #expect(throws: WALDecodingError.unterminatedString(field: "prefix", in: "Message")) {
      try PgOutputMessage.decode(WireBytes("M").u8(1).u64(1).raw(Array("pbp".utf8)).slice)
    }
    #expect(throws: WALDecodingError.truncated(field: "content", in: "Message", needed: 10, available: 3)) {
      try PgOutputMessage.decode(WireBytes("M").u8(1).u64(1).cString("pbp").u32(10).raw([1, 2, 3]).slice)
    }
    #expect(throws: WALDecodingError.truncated(field: "content", in: "Message", needed: 0xFFFF_FFFF, available: 0)) {
      try PgOutputMessage.decode(WireBytes("M").u8(1).u64(1).cString("pbp").u32(0xFFFF_FFFF).slice)
    }
    #expect(throws: WALDecodingError.trailingBytes(in: "Message", count: 1)) {
      try PgOutputMessage.decode(WireBytes("M").u8(1).u64(1).cString("pbp").u32(1).raw([7, 8]).slice)
    }
  }

  @Test func whatDecodesEncodesBackToTheSameBytes() throws {
    let inputs = [
      WireBytes("B").u64(0x1500AD8).i64(-5).u32(725),
      WireBytes("C").u8(0).u64(0x1500AD8).u64(0x1500B08).i64(99),
      WireBytes("M").u8(1).u64(1).cString("pbp").u32(2).raw([0, 0xFF]),
    ]
    for input in inputs {
      let decoded = try PgOutputMessage.decode(input.slice)
      #expect(decoded.encoded() == input.bytes)
    }
  }
}
