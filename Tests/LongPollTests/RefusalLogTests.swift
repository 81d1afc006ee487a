import ChangeStream
import Testing

@testable import LongPoll

@Suite struct RefusalLogTests {
  @Test func logsAtMostOneLinePerIntervalAndCountsTheRest() {
    var log = RefusalLog(interval: .seconds(10))
    #expect(log.refused(.notAnObject, at: StreamPosition(major: 1), now: .seconds(100)) != nil)
    for seq in 2...50 {
      #expect(log.refused(.notAnObject, at: StreamPosition(major: UInt64(seq)), now: .seconds(105)) == nil)
    }
    let next = log.refused(.notAnObject, at: StreamPosition(major: 51, minor: 2), now: .seconds(110))
    #expect(next?.contains("event at 51.2") == true && next?.contains("49 more") == true)
    #expect(log.refused(.notAnObject, at: StreamPosition(major: 52), now: .seconds(125))?.contains("more") == false)
  }
}
