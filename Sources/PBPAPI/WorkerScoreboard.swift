import CSystemShim
import Glibc

/// What one worker process reports about itself.
public struct WorkerStatus: Equatable, Sendable {
  public var pid: Int32
  public var busyThreads: UInt64
  public var parkedPolls: UInt64
  public var eventsDelivered: UInt64
  public var requestsServed: UInt64
  public var databaseConnections: UInt64
  public var epoch: UInt64
  public var seq: UInt64
}

/// The pool's shared scoreboard, in the manner of php-fpm's: one slot per
/// worker in memory that the master creates and every worker maps, so that any
/// worker can answer for the whole pool.
///
/// Threading rule: the mapping is shared by processes and threads; every field
/// is read and written only with atomic operations, and a slot is written only
/// by its own worker (and cleared by the master when that worker is gone).
public final class WorkerScoreboard: @unchecked Sendable {
  enum Field: Int, CaseIterable {
    case pid, busyThreads, parkedPolls, eventsDelivered, requestsServed, databaseConnections, epoch, seq
  }

  static let slotBytes = 64
  public let slotCount: Int
  public let fd: Int32
  private let base: UnsafeMutablePointer<UInt64>

  /// Creates the shared memory (in the master).
  public static func create(slots: Int) -> WorkerScoreboard? {
    let fd = pbp_scoreboard_create(slots * slotBytes)
    guard fd >= 0 else { return nil }
    return WorkerScoreboard(fd: fd, slots: slots)
  }

  /// Maps the scoreboard a worker inherited; its size says how many slots it has.
  public convenience init?(inheritedFD fd: Int32) {
    let size = lseek(fd, 0, SEEK_END)
    guard size > 0 else { return nil }
    self.init(fd: fd, slots: Int(size) / Self.slotBytes)
  }

  init?(fd: Int32, slots: Int) {
    guard let address = pbp_scoreboard_map(fd, slots * Self.slotBytes) else { return nil }
    self.fd = fd
    slotCount = slots
    base = address.bindMemory(to: UInt64.self, capacity: slots * Self.slotBytes / 8)
  }

  private func address(_ slot: Int, _ field: Field) -> UnsafeMutablePointer<UInt64> {
    precondition(slot >= 0 && slot < slotCount, "scoreboard slot out of range")
    return base + slot * (Self.slotBytes / 8) + field.rawValue
  }

  func store(_ slot: Int, _ field: Field, _ value: UInt64) { pbp_atomic_store(address(slot, field), value) }
  func add(_ slot: Int, _ field: Field, _ delta: Int64) { pbp_atomic_add(address(slot, field), delta) }
  func load(_ slot: Int, _ field: Field) -> UInt64 { pbp_atomic_load(address(slot, field)) }

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

  /// Every worker that holds a slot.
  public func statuses() -> [WorkerStatus] {
    (0..<slotCount).compactMap { slot in
      let pid = load(slot, .pid)
      guard pid != 0, pid != Self.reserved else { return nil }
      return WorkerStatus(
        pid: Int32(truncatingIfNeeded: pid), busyThreads: load(slot, .busyThreads),
        parkedPolls: load(slot, .parkedPolls), eventsDelivered: load(slot, .eventsDelivered),
        requestsServed: load(slot, .requestsServed), databaseConnections: load(slot, .databaseConnections),
        epoch: load(slot, .epoch), seq: load(slot, .seq))
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

  public func publish(_ statistics: ChangeHub.Statistics) {
    scoreboard.store(slot, .parkedPolls, UInt64(statistics.parked))
    scoreboard.store(slot, .eventsDelivered, statistics.eventsDelivered)
    scoreboard.store(slot, .epoch, statistics.current?.epoch ?? 0)
    scoreboard.store(slot, .seq, statistics.current?.seq ?? 0)
  }
}
