import DaemonSupport
import Synchronization

/// A worker's phase, shared by its threads: serving, then draining (SIGTERM),
/// and how many accepting threads are still in their loop. The main thread
/// waits on it for the accept loops to end, instead of polling a counter.
final class WorkerLifecycle: Sendable {
  private let draining = Atomic<Bool>(false)
  private let acceptLoops: ConditionLock<Int>

  init(acceptLoops: Int) {
    self.acceptLoops = ConditionLock(acceptLoops)
  }

  var isDraining: Bool { draining.load(ordering: .acquiring) }

  func startDraining() { draining.store(true, ordering: .releasing) }

  func acceptLoopEnded() { acceptLoops.notifyingAll { $0 -= 1 } }

  /// Waits up to `patience` for every accept loop to end; how many still run.
  func awaitAcceptLoops(patience: Duration) -> Int {
    acceptLoops.wait(until: { $0 <= 0 }, deadline: MonotonicClock.now() + patience, then: { $0 })
  }
}
