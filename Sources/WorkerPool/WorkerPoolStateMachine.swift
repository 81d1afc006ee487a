/// The master's decisions about its workers, without processes: which
/// generation serves, when a reload's new generation takes over, and when it
/// is given up. ``PoolMaster`` spawns, signals and reaps, and tells this
/// machine what happened; time is passed in.
///
/// A reload starts a new generation beside the serving one. The serving
/// generation is drained only once every new worker accepts; if a new worker
/// exits (or cannot be started) first, or they do not all accept before the
/// reload's deadline, the new generation is drained instead and the serving
/// one stays. A reload during a reload replaces the pending generation, never
/// the serving one, so the pool never shrinks below the serving generation.
public struct WorkerPoolStateMachine: Sendable {
  public struct Worker: Equatable, Sendable {
    public var generation: Int
    public var isAccepting: Bool
  }

  public enum Event: Equatable, Sendable {
    /// The worker a `.spawn` asked for runs as `pid`.
    case started(pid: Int32, generation: Int)
    /// The worker a `.spawn` asked for could not be started.
    case spawnFailed(generation: Int)
    /// The worker says that its threads accept (its scoreboard flag).
    case accepting(pid: Int32)
    case exited(pid: Int32)
    /// SIGHUP; `refusal` says why the configuration the new workers would read is unusable, nil when it is fine.
    case reloadRequested(refusal: String?)
    /// Time passed (a deadline, or the master's periodic wake-up).
    case tick
  }

  public enum Action: Equatable, Sendable {
    case spawn(generation: Int)
    /// Stop taking requests and finish what it holds (SIGTERM).
    case drain(pid: Int32)
    case reloadRefused(reason: String)
    case reloadBegun(generation: Int)
    case reloadCompleted(generation: Int)
    case reloadAbandoned(generation: Int, reason: String)
  }

  public let poolSize: Int
  /// How long a reload's new workers have to accept.
  public let patience: Duration
  /// The most workers started in ``restartWindow`` (a generation dying at start is not respawned in a tight loop).
  public let restartBudget: Int
  public static let restartWindow: Duration = .seconds(10)

  public private(set) var servingGeneration = 0
  /// A reload in progress: the generation coming up, and when it is given up.
  public private(set) var pending: (generation: Int, deadline: Duration)?
  public private(set) var workers: [Int32: Worker] = [:]
  /// Workers told to stop, until they exit.
  public private(set) var draining: Set<Int32> = []
  /// Spawns asked for and not yet reported, by generation.
  private var starting: [Int: Int] = [:]
  private var recentStarts: [Duration] = []
  private var lastGeneration = 0

  public init(poolSize: Int, patience: Duration, restartBudget: Int? = nil) {
    precondition(poolSize > 0, "a pool has at least one worker")
    self.poolSize = poolSize
    self.patience = patience
    self.restartBudget = restartBudget ?? poolSize * 5
  }

  /// The first generation.
  public mutating func start(now: Duration) -> [Action] {
    lastGeneration += 1
    servingGeneration = lastGeneration
    var actions: [Action] = []
    replaceMissing(now: now, into: &actions)
    return actions
  }

  /// When the master must wake up at the latest for ``Event/tick``.
  public var nextDeadline: Duration? { pending?.deadline }

  /// Workers of the pending generation that have not said yet that they accept.
  public var awaitingAcceptance: [Int32] {
    guard let pending else { return [] }
    return workers.filter { $0.value.generation == pending.generation && !$0.value.isAccepting }.map(\.key).sorted()
  }

  /// Every worker alive, serving, pending or draining.
  public var allWorkers: Set<Int32> { Set(workers.keys).union(draining) }

  public mutating func handle(_ event: Event, now: Duration) -> [Action] {
    var actions: [Action] = []
    switch event {
    case .started(let pid, let generation):
      starting[generation, default: 0] -= 1
      workers[pid] = Worker(generation: generation, isAccepting: false)
    case .spawnFailed(let generation):
      starting[generation, default: 0] -= 1
      if generation == pending?.generation {
        abandonReload(reason: "a new worker could not be started", into: &actions)
      }
    case .accepting(let pid):
      workers[pid]?.isAccepting = true
    case .exited(let pid):
      draining.remove(pid)
      if let worker = workers.removeValue(forKey: pid), worker.generation == pending?.generation {
        abandonReload(reason: "new worker \(pid) exited before the reload completed", into: &actions)
      }
    case .reloadRequested(let refusal?):
      actions.append(.reloadRefused(reason: refusal))
    case .reloadRequested(refusal: nil):
      // A pending generation is replaced, not promoted: only a generation
      // whose every worker accepts may take over from the serving one.
      let replaced = pending?.generation
      drain(where: { $0 == replaced }, into: &actions)
      lastGeneration += 1
      pending = (lastGeneration, now + patience)
      actions.append(.reloadBegun(generation: lastGeneration))
      for _ in 0..<poolSize { spawn(lastGeneration, now: now, into: &actions) }
    case .tick:
      break
    }
    if let pending, now >= pending.deadline {
      abandonReload(reason: "the new workers did not all accept within \(patience)", into: &actions)
    }
    promoteIfReady(into: &actions)
    replaceMissing(now: now, into: &actions)
    return actions
  }

  private mutating func promoteIfReady(into actions: inout [Action]) {
    guard let pending else { return }
    let accepting = workers.values.filter { $0.generation == pending.generation && $0.isAccepting }.count
    guard accepting >= poolSize else { return }
    servingGeneration = pending.generation
    self.pending = nil
    drain(where: { $0 != pending.generation }, into: &actions)
    actions.append(.reloadCompleted(generation: pending.generation))
  }

  private mutating func abandonReload(reason: String, into actions: inout [Action]) {
    guard let abandoned = pending?.generation else { return }
    pending = nil
    drain(where: { $0 == abandoned }, into: &actions)
    actions.append(.reloadAbandoned(generation: abandoned, reason: reason))
  }

  private mutating func drain(where isDrained: (Int) -> Bool, into actions: inout [Action]) {
    for (pid, worker) in workers.sorted(by: { $0.key < $1.key }) where isDrained(worker.generation) {
      workers[pid] = nil
      draining.insert(pid)
      actions.append(.drain(pid: pid))
    }
  }

  /// Keeps the serving generation full (a worker that died is replaced),
  /// within the restart budget.
  private mutating func replaceMissing(now: Duration, into actions: inout [Action]) {
    let serving = workers.values.filter { $0.generation == servingGeneration }.count
    var missing = poolSize - serving - starting[servingGeneration, default: 0]
    while missing > 0 {
      guard spawn(servingGeneration, now: now, into: &actions) else { return }
      missing -= 1
    }
  }

  @discardableResult
  private mutating func spawn(_ generation: Int, now: Duration, into actions: inout [Action]) -> Bool {
    recentStarts.removeAll { now - $0 > Self.restartWindow }
    // A reload's generation is started whole; the budget limits respawns.
    guard generation == pending?.generation || recentStarts.count < restartBudget else { return false }
    recentStarts.append(now)
    starting[generation, default: 0] += 1
    actions.append(.spawn(generation: generation))
    return true
  }
}
