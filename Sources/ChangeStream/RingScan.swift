/// What a scan of a ``RingSnapshot`` for one poll's subscriptions found.
public struct RingScanResult: Sendable {
  /// The events matched, in order, each with the subscriptions it reached and how.
  public var matched: [(event: ChangeEvent, matches: EventMatches)] = []
  /// Every event up to this one was considered: the cursor a client may
  /// continue from. The snapshot's newest unless the scan stopped early.
  public var through: StreamPosition
  /// Events of the subscriptions' tables examined.
  public var examined = 0
  /// What examining them cost, in the units of ``SubscriptionSet/judge(_:work:)``.
  public var work = 0
}

extension RingSnapshot {
  /// The events after `position` that `subscriptions` match, visiting only the
  /// events of their tables: examining stops once it has cost `budget` (in
  /// the units of ``SubscriptionSet/judge(_:work:)``, about one per event
  /// and column) or `maximumMatches` were collected; `through` says where the
  /// scan stopped, never past an event it did not examine.
  ///
  /// `position` must be covered by the snapshot (the ring said so when it was taken).
  public func scan(
    after position: StreamPosition, for subscriptions: SubscriptionSet, budget: Int, maximumMatches: Int
  ) -> RingScanResult {
    precondition(floor <= position && position <= newestPosition, "the snapshot holds every event after the position")
    var result = RingScanResult(through: newestPosition)
    /// False when the scan stops at `event`: its budget or its answer is full.
    func examine(_ event: ChangeEvent) -> Bool {
      result.examined += 1
      let matches = subscriptions.judge(event, work: &result.work)
      if !matches.isEmpty { result.matched.append((event, matches)) }
      guard result.work < budget, result.matched.count < maximumMatches else {
        result.through = event.position
        return false
      }
      return true
    }
    var chunkIndex = firstChunk(after: position)
    if chunkIndex < sealed.count {
      // Only the first chunk may begin at or before the position.
      let start = sealed[chunkIndex].events.firstIndex(after: position)
      for offset in offsets(in: sealed[chunkIndex], from: start, tables: subscriptions.tableNames) {
        guard examine(sealed[chunkIndex].events[offset]) else { return result }
      }
      chunkIndex += 1
    }
    for chunk in sealed[chunkIndex...] {
      for offset in offsets(in: chunk, from: 0, tables: subscriptions.tableNames) {
        guard examine(chunk.events[offset]) else { return result }
      }
    }
    for event in tail[tail.firstIndex(after: position)...] where subscriptions.watches(table: event.table) {
      guard examine(event) else { return result }
    }
    return result
  }

  /// The index of the first chunk holding an event after `position` (binary search: chunks are in order).
  private func firstChunk(after position: StreamPosition) -> Int {
    var low = 0
    var high = sealed.count
    while low < high {
      let middle = (low + high) / 2
      if sealed[middle].lastPosition <= position { low = middle + 1 } else { high = middle }
    }
    return low
  }

  /// The offsets, in order, of the chunk's events on `tables` from `start` on.
  private func offsets(in chunk: EventChunk, from start: Int, tables: [String]) -> [Int] {
    var offsets: [Int] = []
    for table in tables {
      guard let ofTable = chunk.offsetsByTable[table] else { continue }
      var low = 0
      var high = ofTable.count
      while low < high {
        let middle = (low + high) / 2
        if Int(ofTable[middle]) < start { low = middle + 1 } else { high = middle }
      }
      offsets += ofTable[low...].lazy.map(Int.init)
    }
    if tables.count > 1 { offsets.sort() }
    return offsets
  }
}
