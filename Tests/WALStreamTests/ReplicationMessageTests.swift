import Testing
import WALStream

@Suite struct ReplicationMessageTests {
  @Test func decodesXLogDataWithItsPayload() throws {
    let wire = WireBytes("w").u64(0x10).u64(0x20).i64(12345).raw([1, 2, 3])
    let message = try ReplicationMessage.decode(wire.slice)
    guard case .xLogData(let data) = message else {
      Issue.record("not XLogData: \(message)")
      return
    }
    #expect(data.walStart == LSN(0x10))
    #expect(data.walEnd == LSN(0x20))
    #expect(data.serverClock == PostgresTimestamp(microsecondsSince2000: 12345))
    #expect(Array(data.data) == [1, 2, 3])
  }

  @Test func decodesAPrimaryKeepaliveAndWhetherItAsksForAReply() throws {
    let asking = WireBytes("k").u64(0x99).i64(7).u8(1)
    let quiet = WireBytes("k").u64(0x99).i64(7).u8(0)
    #expect(
      try ReplicationMessage.decode(asking.slice)
        == .primaryKeepalive(
          PrimaryKeepalive(walEnd: LSN(0x99), serverClock: .init(microsecondsSince2000: 7), replyRequested: true)))
    #expect(
      try ReplicationMessage.decode(quiet.slice)
        == .primaryKeepalive(
          PrimaryKeepalive(walEnd: LSN(0x99), serverClock: .init(microsecondsSince2000: 7), replyRequested: false)))
  }

  @Test func malformedInputIsATypedError() {
    #expect(throws: WALDecodingError.empty(in: "replication message")) { try ReplicationMessage.decode([][...]) }
    #expect(throws: WALDecodingError.unknownType(UInt8(ascii: "x"), in: "replication message")) {
      try ReplicationMessage.decode(WireBytes("x").slice)
    }
    #expect(throws: WALDecodingError.truncated(field: "walEnd", in: "XLogData", needed: 8, available: 3)) {
      try ReplicationMessage.decode(WireBytes("w").u64(1).raw([0, 0, 0]).slice)
    }
    #expect(
      throws: WALDecodingError.truncated(field: "replyRequested", in: "primary keepalive", needed: 1, available: 0)
    ) {
      try ReplicationMessage.decode(WireBytes("k").u64(1).i64(2).slice)
    }
    #expect(throws: WALDecodingError.trailingBytes(in: "primary keepalive", count: 1)) {
      try ReplicationMessage.decode(WireBytes("k").u64(1).i64(2).u8(0).u8(0).slice)
    }
  }

  @Test func decodesFromASliceThatDoesNotStartAtZero() throws {
    let wire = [0xEE, 0xEE] + WireBytes("k").u64(5).i64(6).u8(0).bytes
    let message = try ReplicationMessage.decode(wire[2...])
    #expect(
      message
        == .primaryKeepalive(.init(walEnd: LSN(5), serverClock: .init(microsecondsSince2000: 6), replyRequested: false))
    )
  }

  @Test func encodesAStandbyStatusUpdateAsTheWalsenderReadsIt() {
    let update = StandbyStatusUpdate(
      write: LSN(0x0102), flush: LSN(0x0101), apply: LSN(0x0100),
      clock: PostgresTimestamp(microsecondsSince2000: 0x0A0B), replyRequested: true)
    let expected = WireBytes("r").u64(0x0102).u64(0x0101).u64(0x0100).i64(0x0A0B).u8(1).bytes
    #expect(update.encoded() == expected)
    #expect(update.encoded().count == 34)
    let noReply = StandbyStatusUpdate(
      write: .zero, flush: .zero, apply: .zero, clock: .init(microsecondsSince2000: -1), replyRequested: false)
    #expect(noReply.encoded() == WireBytes("r").u64(0).u64(0).u64(0).i64(-1).u8(0).bytes)
  }
}
