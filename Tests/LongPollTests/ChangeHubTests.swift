import ChangeStream
import DaemonSupport
import Glibc
import Synchronization
import Testing

@testable import LongPoll

final class RecordingResponder: PollResponder {
  let socket: Int32 = -1
  private let answers = Mutex<[String]>([])
  func respond(_ answer: String) { answers.withLock { $0.append(answer) } }
  func abandon() {}
  var received: [String] { answers.withLock { $0 } }
}

@Suite(.timeLimit(.minutes(1))) struct ChangeHubTests {
  /// A hub whose renderer counts its calls and, to prove that it runs outside
  /// the hub's lock, reads the hub (which takes the lock: under it, it would deadlock).
  final class Fixture: Sendable {
    private let renderCount = Mutex(0)
    private let hubReference = Mutex<ChangeHub<RecordingResponder>?>(nil)

    var renders: Int { renderCount.withLock { $0 } }
    var hub: ChangeHub<RecordingResponder> { hubReference.withLock { $0! } }

    init() throws {
      let hub = try ChangeHub<RecordingResponder>(ringCapacity: 16, log: Log(component: "test")) {
        [unowned self] answer in
        self.renderCount.withLock { $0 += 1 }
        _ = self.hub.statistics
        return "\(Seen(answer))"
      }
      hubReference.withLock { $0 = hub }
    }
  }

  @Test func eachDistinctAnswerIsRenderedOnceOutsideTheLock() throws {
    let fixture = try Fixture()
    let hub = fixture.hub
    hub.streamStarted(at: Cursor(epoch: 1, seq: 0), resumed: false)
    let same = (0..<3).map { _ in RecordingResponder() }
    for responder in same { hub.submit(poll(Cursor(epoch: 1, seq: 0)), responder: responder) }
    let other = RecordingResponder()
    hub.submit(poll(Cursor(epoch: 1, seq: 0), [Subscription(table: "u"), Subscription(table: "t")]), responder: other)
    #expect(fixture.renders == 0, "parked polls are not answered yet")
    #expect(hub.append([event(1, id: 1)]))
    #expect(fixture.renders == 2, "three polls agree: one rendering for them, one for the other")
    #expect(Set(same.flatMap(\.received)).count == 1)
    #expect(same.allSatisfy { $0.received.count == 1 })
    #expect(other.received.count == 1 && other.received != same[0].received)
    let statistics = hub.statistics
    #expect(statistics.parked == 0 && statistics.eventsDelivered == 4)
  }

  @Test func eventsOutOfOrderAreRefusedAndAnswerNothing() throws {
    let fixture = try Fixture()
    let hub = fixture.hub
    hub.streamStarted(at: Cursor(epoch: 1, seq: 5), resumed: false)
    let responder = RecordingResponder()
    hub.submit(poll(Cursor(epoch: 1, seq: 5)), responder: responder)
    #expect(!hub.append([event(5, id: 5)]))
    #expect(!hub.append([event(7, id: 7), event(6, id: 6)]))
    #expect(responder.received.isEmpty)
    #expect(hub.current == Cursor(epoch: 1, seq: 5))
  }

  @Test func aSnapshotCursorWaitsForAnInterruptedStreamUntilItReturns() throws {
    let fixture = try Fixture()
    let hub = fixture.hub
    #expect(hub.snapshotCursor(patience: .milliseconds(10)) == nil, "no position before the first greeting")
    hub.streamStarted(at: Cursor(epoch: 1, seq: 4), resumed: false)
    hub.streamInterrupted()
    #expect(
      hub.snapshotCursor(patience: .milliseconds(10)) == Cursor(epoch: 1, seq: 4), "after its patience, the last known")
    let asked = MonotonicClock.now()
    let waiter = Thread { hub.snapshotCursor(patience: .seconds(20)) }
    usleep(50_000)
    hub.streamStarted(at: Cursor(epoch: 2, seq: 0), resumed: false)
    #expect(waiter.result() == Cursor(epoch: 2, seq: 0))
    // Not a speed test: a waiter nobody wakes returns after its whole patience.
    #expect(MonotonicClock.now() - asked < .seconds(10), "woken by the new greeting, not by its patience running out")
  }
}

/// A value computed on a thread of its own, for tests that need a second thread to wait.
final class Thread<Value: Sendable>: Sendable {
  private let value = ConditionLock<Value?>(nil)

  init(_ body: @escaping @Sendable () -> Value) {
    let value = self.value
    Threads.start(name: "pbp-test") {
      let result = body()
      value.notifyingAll { $0 = result }
    }
  }

  func result() -> Value {
    value.wait(until: { $0 != nil }, deadline: MonotonicClock.now() + .seconds(50), then: { $0! })
  }
}
