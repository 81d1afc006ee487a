import ChangePublisher
import Testing

@Suite struct StatusReportScheduleTests {
  @Test func aChangedStatusIsReportedOncePerInterval() {
    var schedule = StatusReportSchedule(interval: .seconds(60), now: .seconds(0))
    #expect(!schedule.isDue(now: .seconds(59)))
    #expect(schedule.isDue(now: .seconds(60)))
    let first = schedule.report("ring 10 events", now: .seconds(61))
    #expect(first)
    #expect(!schedule.isDue(now: .seconds(120)), "the next is one interval after the last check")
    #expect(schedule.isDue(now: .seconds(121)))
  }

  @Test func anUnchangedStatusIsNotReportedAgain() {
    var schedule = StatusReportSchedule(interval: .seconds(60), now: .seconds(0))
    let first = schedule.report("ring 10 events", now: .seconds(60))
    let same = schedule.report("ring 10 events", now: .seconds(120))
    let changed = schedule.report("ring 11 events", now: .seconds(180))
    #expect(first)
    #expect(!same, "an idle daemon's log stays quiet")
    #expect(changed)
  }
}
