import DaemonSupport

/// The pool's shared scoreboard, in the manner of php-fpm's: one slot per
/// worker in memory that the master creates and every worker maps, so that any
/// worker can answer for the whole pool.
///
/// A slot is written only by its own worker (and reserved, assigned and
/// cleared by the master); ``SharedCounters`` makes each field atomic.
public struct WorkerScoreboard: Sendable {
  enum Field: Int, CaseIterable {
    case pid, busyThreads, parkedPolls, eventsDelivered, requestsServed, databaseConnections
    /// The newest cursor the worker has: its epoch and position.
    case epoch, positionMajor, positionMinor
    /// 1 once the worker's threads accept (a reload drains the old workers then).
    case accepting
    /// The worker's ring of recent events: how many, and their bytes.
    case ringEvents, ringBytes
    /// Payloads the worker refused: the triggers could not have produced them.
    case payloadsRefused
  }

  /// Counters per slot: a cache line, with room for more fields.
  static let fieldsPerSlot = 8 * 2
  let counters: SharedCounters
  public let slotCount: Int

  /// Creates the shared memory (in the master).
  public static func create(slots: Int) throws(SystemError) -> WorkerScoreboard {
    WorkerScoreboard(counters: try SharedCounters.create(count: slots * fieldsPerSlot))
  }

  /// Maps the scoreboard a worker inherited.
  public init?(inheritedFD fd: Int32) {
    guard let counters = SharedCounters(inheritedFD: fd) else { return nil }
    self.init(counters: counters)
  }

  private init(counters: SharedCounters) {
    self.counters = counters
    slotCount = counters.count / Self.fieldsPerSlot
  }

  /// The descriptor to hand to workers.
  public var fd: Int32 { counters.fd }

  private func index(_ slot: Int, _ field: Field) -> Int {
    precondition(slot >= 0 && slot < slotCount, "scoreboard slot \(slot) out of range")
    return slot * Self.fieldsPerSlot + field.rawValue
  }

  func store(_ slot: Int, _ field: Field, _ value: UInt64) { counters.store(index(slot, field), value) }
  func add(_ slot: Int, _ field: Field, _ delta: Int64) { counters.add(index(slot, field), delta) }
  func load(_ slot: Int, _ field: Field) -> UInt64 { counters.load(index(slot, field)) }

  /// Marks a slot taken while its worker is being started.
  static let reserved = UInt64(UInt32.max)

  /// The master: a free slot for a worker about to start, or nil when all are taken.
  public func reserveSlot() -> Int? {
    for slot in 0..<slotCount where load(slot, .pid) == 0 {
      clear(slot)
      store(slot, .pid, Self.reserved)
      return slot
    }
    return nil
  }

  /// The master: the worker in `slot` started as `pid`.
  public func assign(_ slot: Int, to pid: Int32) {
    store(slot, .pid, UInt64(UInt32(bitPattern: pid)))
  }

  /// The master: the slot's worker is gone.
  public func clear(_ slot: Int) {
    for field in Field.allCases { store(slot, field, 0) }
  }

  public func slot(of pid: Int32) -> Int? {
    (0..<slotCount).first { load($0, .pid) == UInt64(UInt32(bitPattern: pid)) }
  }

  /// Whether the worker `pid` has said that its threads accept.
  public func isAccepting(_ pid: Int32) -> Bool {
    slot(of: pid).map { load($0, .accepting) == 1 } ?? false
  }

  /// Every worker that holds a slot.
  public func statuses() -> [WorkerStatus] {
    (0..<slotCount).compactMap { slot in
      let pid = load(slot, .pid)
      guard pid != 0, pid != Self.reserved else { return nil }
      return WorkerStatus(
        pid: Int32(truncatingIfNeeded: pid), busyThreads: load(slot, .busyThreads),
        parkedPolls: load(slot, .parkedPolls), eventsDelivered: load(slot, .eventsDelivered),
        requestsServed: load(slot, .requestsServed), databaseConnections: load(slot, .databaseConnections),
        epoch: load(slot, .epoch), positionMajor: load(slot, .positionMajor),
        positionMinor: UInt32(truncatingIfNeeded: load(slot, .positionMinor)), ringEvents: load(slot, .ringEvents),
        ringBytes: load(slot, .ringBytes), payloadsRefused: load(slot, .payloadsRefused))
    }
  }
}

/// One worker's own slot, where its threads report.
public struct ScoreboardSlot: Sendable {
  let scoreboard: WorkerScoreboard
  let slot: Int

  public init(scoreboard: WorkerScoreboard, slot: Int) {
    self.scoreboard = scoreboard
    self.slot = slot
  }

  public func requestStarted() {
    scoreboard.add(slot, .busyThreads, 1)
    scoreboard.add(slot, .requestsServed, 1)
  }
  public func requestFinished() { scoreboard.add(slot, .busyThreads, -1) }
  public func databaseConnections(changedBy delta: Int64) { scoreboard.add(slot, .databaseConnections, delta) }
  public func acceptingStarted() { scoreboard.store(slot, .accepting, 1) }

  /// `positionMajor` and `positionMinor` make the newest cursor's position
  /// (WorkerPool knows nothing of cursors): a reader may see the fields of
  /// two moments mixed, which a status page can bear.
  public func publish(
    parkedPolls: Int, eventsDelivered: UInt64, epoch: UInt64, positionMajor: UInt64, positionMinor: UInt32
  ) {
    scoreboard.store(slot, .parkedPolls, UInt64(parkedPolls))
    scoreboard.store(slot, .eventsDelivered, eventsDelivered)
    scoreboard.store(slot, .epoch, epoch)
    scoreboard.store(slot, .positionMajor, positionMajor)
    scoreboard.store(slot, .positionMinor, UInt64(positionMinor))
  }

  public func publish(ringEvents: Int, ringBytes: Int, payloadsRefused: UInt64) {
    scoreboard.store(slot, .ringEvents, UInt64(ringEvents))
    scoreboard.store(slot, .ringBytes, UInt64(ringBytes))
    scoreboard.store(slot, .payloadsRefused, payloadsRefused)
  }
}
