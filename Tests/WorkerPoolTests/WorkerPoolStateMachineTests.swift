import Testing
import WorkerPool

/// A pool driven the way PoolMaster drives it: every `.spawn` is answered
/// with a new pid at once.
private struct SimulatedPool {
  var machine: WorkerPoolStateMachine
  var now: Duration = .seconds(100)
  var nextPID: Int32 = 1000
  /// Every action, in order.
  var log: [WorkerPoolStateMachine.Action] = []
  var spawned: [Int32: Int] = [:]
  var failSpawns = false

  init(size: Int, patience: Duration = .seconds(10)) {
    machine = WorkerPoolStateMachine(poolSize: size, patience: patience)
    perform(machine.start(now: now))
  }

  mutating func send(_ event: WorkerPoolStateMachine.Event) {
    perform(machine.handle(event, now: now))
  }

  private mutating func perform(_ actions: [WorkerPoolStateMachine.Action]) {
    for action in actions {
      log.append(action)
      if case .spawn(let generation) = action {
        if failSpawns {
          send(.spawnFailed(generation: generation))
        } else {
          nextPID += 1
          spawned[nextPID] = generation
          send(.started(pid: nextPID, generation: generation))
        }
      }
    }
  }

  func pids(of generation: Int) -> [Int32] {
    machine.workers.filter { $0.value.generation == generation }.map(\.key).sorted()
  }

  mutating func accept(_ pids: [Int32]) {
    for pid in pids { send(.accepting(pid: pid)) }
  }

  mutating func takeLog() -> [WorkerPoolStateMachine.Action] {
    defer { log = [] }
    return log
  }

  var drained: [Int32] {
    log.compactMap { if case .drain(let pid) = $0 { pid } else { nil } }
  }
}

@Suite struct WorkerPoolStateMachineTests {
  @Test func startFillsTheFirstGenerationWhichServesAtOnce() {
    let pool = SimulatedPool(size: 3)
    #expect(pool.machine.servingGeneration == 1)
    #expect(pool.pids(of: 1).count == 3)
    #expect(pool.machine.pending == nil)
  }

  @Test func aReloadDrainsTheOldWorkersOnlyOnceEveryNewOneAccepts() {
    var pool = SimulatedPool(size: 2)
    let old = pool.pids(of: 1)
    pool.accept(old)
    _ = pool.takeLog()
    pool.send(.reloadRequested(refusal: nil))
    #expect(pool.log.first == .reloadBegun(generation: 2))
    let new = pool.pids(of: 2)
    #expect(new.count == 2)
    pool.accept([new[0]])
    #expect(pool.drained.isEmpty, "one new worker of two accepts: the old generation still serves")
    #expect(pool.machine.servingGeneration == 1)
    pool.accept([new[1]])
    #expect(pool.drained == old)
    #expect(pool.log.last == .reloadCompleted(generation: 2))
    #expect(pool.machine.servingGeneration == 2)
    #expect(pool.machine.pending == nil)
    #expect(pool.machine.draining == Set(old))
    for pid in old { pool.send(.exited(pid: pid)) }
    #expect(pool.machine.allWorkers == Set(new), "drained workers that exit are not replaced")
  }

  @Test func aRefusedReloadChangesNothing() {
    var pool = SimulatedPool(size: 2)
    let before = pool.machine.workers
    _ = pool.takeLog()
    pool.send(.reloadRequested(refusal: "threads must be positive"))
    #expect(pool.takeLog() == [.reloadRefused(reason: "threads must be positive")])
    #expect(pool.machine.workers == before)
    #expect(pool.machine.pending == nil)
  }

  @Test func aNewWorkerThatExitsAbandonsTheReloadAndTheOldGenerationStays() {
    var pool = SimulatedPool(size: 3)
    let old = pool.pids(of: 1)
    pool.send(.reloadRequested(refusal: nil))
    let new = pool.pids(of: 2)
    pool.accept([new[0]])
    _ = pool.takeLog()
    pool.send(.exited(pid: new[1]))
    #expect(pool.drained == [new[0], new[2]], "the rest of the new generation is drained")
    #expect(
      pool.log.contains { if case .reloadAbandoned(generation: 2, _) = $0 { true } else { false } })
    #expect(!pool.log.contains { if case .spawn = $0 { true } else { false } }, "the dead new worker is not replaced")
    #expect(pool.machine.servingGeneration == 1)
    #expect(pool.pids(of: 1) == old)
    #expect(pool.machine.pending == nil)
  }

  @Test func aNewWorkerThatCannotBeStartedAbandonsTheReload() {
    var pool = SimulatedPool(size: 2)
    let old = pool.pids(of: 1)
    pool.failSpawns = true
    pool.send(.reloadRequested(refusal: nil))
    #expect(pool.log.contains { if case .reloadAbandoned(generation: 2, _) = $0 { true } else { false } })
    #expect(pool.machine.servingGeneration == 1 && pool.pids(of: 1) == old)
  }

  @Test func newWorkersThatDoNotAcceptInTimeAreGivenUp() {
    var pool = SimulatedPool(size: 2, patience: .seconds(5))
    let old = pool.pids(of: 1)
    pool.send(.reloadRequested(refusal: nil))
    let new = pool.pids(of: 2)
    #expect(pool.machine.nextDeadline == pool.now + .seconds(5))
    #expect(pool.machine.awaitingAcceptance == new)
    pool.now += .seconds(4)
    pool.send(.tick)
    #expect(pool.drained.isEmpty)
    pool.now += .seconds(1)
    _ = pool.takeLog()
    pool.send(.tick)
    #expect(pool.drained == new)
    #expect(pool.machine.servingGeneration == 1 && pool.pids(of: 1) == old)
    #expect(pool.machine.nextDeadline == nil)
  }

  @Test func aSecondReloadReplacesThePendingGenerationNeverTheServingOne() {
    var pool = SimulatedPool(size: 2)
    let serving = pool.pids(of: 1)
    pool.send(.reloadRequested(refusal: nil))
    let first = pool.pids(of: 2)
    pool.accept([first[0]])
    _ = pool.takeLog()
    pool.send(.reloadRequested(refusal: nil))
    #expect(pool.drained == first, "the half-started generation makes way")
    #expect(pool.pids(of: 1) == serving, "the serving generation is whole")
    let second = pool.pids(of: 3)
    #expect(second.count == 2)
    pool.accept(second)
    #expect(pool.drained == first + serving)
    #expect(pool.machine.servingGeneration == 3)
    #expect(pool.machine.workers.count == 2)
  }

  @Test func aServingWorkerThatDiesIsReplacedEvenDuringAReload() {
    var pool = SimulatedPool(size: 2)
    let serving = pool.pids(of: 1)
    pool.send(.reloadRequested(refusal: nil))
    _ = pool.takeLog()
    pool.send(.exited(pid: serving[0]))
    #expect(pool.log == [.spawn(generation: 1)])
    #expect(pool.pids(of: 1).count == 2)
    #expect(pool.machine.pending?.generation == 2, "the reload goes on")
  }

  @Test func workersDyingAtStartAreRespawnedWithinABudget() {
    var pool = SimulatedPool(size: 2)
    var spawns = 0
    for _ in 0..<50 {
      guard let pid = pool.pids(of: 1).first else { break }
      _ = pool.takeLog()
      pool.send(.exited(pid: pid))
      spawns += pool.log.filter { $0 == .spawn(generation: 1) }.count
    }
    // 2 at start, then respawns until 10 starts in the window.
    #expect(spawns == 8)
    pool.now += WorkerPoolStateMachine.restartWindow + .seconds(1)
    _ = pool.takeLog()
    pool.send(.tick)
    #expect(pool.pids(of: 1).count == 2, "the pool refills once the window has passed")
  }
}
