import ChangePublisher
import Testing

@Suite struct WatchdogScheduleTests {
  @Test func aKeepAliveIsDueEachIntervalCountedFromTheSchedule() {
    var watchdog = WatchdogSchedule(interval: .seconds(10), now: .seconds(100))
    let early = watchdog.tick(now: .seconds(109))
    let late = watchdog.tick(now: .seconds(115))
    #expect(!early)
    #expect(late)
    #expect(watchdog.nextDue == .seconds(120), "not 125: a late turn does not push the schedule")
    let beforeNext = watchdog.tick(now: .seconds(119))
    let atNext = watchdog.tick(now: .seconds(120))
    #expect(!beforeNext)
    #expect(atNext)
  }
}
