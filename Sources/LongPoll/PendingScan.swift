import ChangeStream

/// A poll whose cursor is behind the ring: the events after it must be
/// scanned before the poll is answered or parked. The scan reads a snapshot
/// of the ring outside the hub's lock (``run()``); the lot then settles the
/// poll with what it found (``ParkingLot/finishScan(_:_:now:)``).
struct PendingScan: Sendable {
  let poll: ChangePoll
  let snapshot: RingSnapshot
  let epoch: UInt64
  /// Events after this one are scanned.
  let after: StreamPosition
  /// What the scan may still cost before the poll is answered (``ParkingLot/scanBudget``).
  let budget: Int
  let maximumMatches: Int

  func run() -> RingScanResult {
    snapshot.scan(after: after, for: poll.subscriptions, budget: budget, maximumMatches: maximumMatches)
  }
}
