import Testing
import WALStream

@Suite struct LSNTests {
  @Test func printsAsPostgreSQLDoesHighAndLowHalvesInUppercaseHex() {
    #expect(LSN(0x1_500A_D8).description == "0/1500AD8")
    #expect(LSN(0x0000_00FF_0000_0001).description == "FF/1")
    #expect(LSN.zero.description == "0/0")
    #expect(LSN.max.description == "FFFFFFFF/FFFFFFFF")
  }

  @Test func parsesBothCasesAndRoundTrips() {
    #expect(LSN("0/1500AD8") == LSN(0x1500AD8))
    #expect(LSN("ff/a") == LSN(0xFF_0000_000A))
    #expect(LSN("FFFFFFFF/FFFFFFFF") == .max)
    for value: UInt64 in [0, 1, 0xFFFF_FFFF, 0x1_0000_0000, 0xDEAD_BEEF_0000_0042] {
      #expect(LSN(LSN(value).description) == LSN(value))
    }
  }

  @Test func rejectsWhatIsNotAnLSN() {
    for text in [
      "", "/", "0/", "/0", "0", "0/0/0", "g/0", "0/-1", "100000000/0", "0/100000000", " 0/1", "0/1 ", "+1/0",
    ] {
      #expect(LSN(text) == nil, "\(text)")
    }
  }

  @Test func ordersByPosition() {
    #expect(LSN(1) < LSN(2))
    #expect(LSN("1/0")! > LSN("0/FFFFFFFF")!)
  }

  @Test func positionsOrderByCommitThenIndex() {
    let early = WALPosition(commitLSN: LSN(100), index: 7)
    let sameCommitLater = WALPosition(commitLSN: LSN(100), index: 8)
    let laterCommit = WALPosition(commitLSN: LSN(101), index: 0)
    #expect(early < sameCommitLater)
    #expect(sameCommitLater < laterCommit)
    #expect(early.description == "0/64:7")
  }

  @Test func postgresTimeCountsMicrosecondsFrom2000() {
    // 2000-01-01 00:00:00 UTC is 946,684,800 s after the Unix epoch.
    #expect(PostgresTimestamp(unixMicroseconds: 946_684_800_000_000).microsecondsSince2000 == 0)
    #expect(PostgresTimestamp(unixMicroseconds: 946_684_801_000_001).microsecondsSince2000 == 1_000_001)
  }
}
