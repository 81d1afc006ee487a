import DaemonSupport
import Glibc
import Testing

@Suite struct SignalWaiterTests {
  @Test func aWaitEndsWithTheSignalOrTheTimeout() {
    let waiter = SignalWaiter([.hangup])
    #expect(waiter.wait(timeout: .milliseconds(10)) == nil)
    // To this thread, which blocks it: the process's other threads (the test
    // runner's) would take a process-directed SIGHUP and die of it.
    pthread_kill(pthread_self(), SIGHUP)
    #expect(waiter.wait(timeout: .seconds(5)) == .hangup)
  }
}
