import DaemonSupport
import Glibc
import Testing

@Suite struct ConditionLockTests {
  @Test func aWaiterWakesWhenTheValueIsReadyOrTheDeadlinePasses() {
    let lock = ConditionLock(0)
    let start = MonotonicClock.now()
    #expect(lock.wait(until: { $0 > 0 }, deadline: start + .milliseconds(20), then: { $0 }) == 0)
    #expect(MonotonicClock.now() - start >= .milliseconds(20))
    Threads.start(name: "pbp-test-notify") {
      usleep(20_000)
      lock.notifyingAll { $0 = 7 }
    }
    #expect(lock.wait(until: { $0 > 0 }, deadline: MonotonicClock.now() + .seconds(10), then: { $0 }) == 7)
  }
}
