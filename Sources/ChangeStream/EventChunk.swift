/// A run of consecutive events of a worker's ring, immutable once sealed: a
/// scan reads chunks outside the hub's lock while appends go on, and the
/// ring shares them with its snapshots instead of copying events.
public final class EventChunk: Sendable {
  public let firstSeq: UInt64
  public let lastPosition: StreamPosition
  let events: [ChangeEvent]
  /// Each table's events, as offsets into `events` in order: a poll visits only its tables' events.
  let offsetsByTable: [String: [UInt16]]
  /// What the chunk holds in memory (its events and its index).
  public let retainedBytes: Int

  /// At most 65,536 events (the offsets are 16-bit).
  init(events: [ChangeEvent]) {
    precondition(!events.isEmpty && events.count <= 1 << 16, "a chunk holds 1 to 65,536 events")
    firstSeq = events[0].seq
    lastPosition = events[events.count - 1].position
    self.events = events
    var offsets: [String: [UInt16]] = [:]
    for (offset, event) in events.enumerated() where !event.isRefused {
      offsets[event.table, default: []].append(UInt16(offset))
    }
    offsetsByTable = offsets
    retainedBytes =
      events.reduce(64 + events.capacity * MemoryLayout<ChangeEvent>.stride) {
        $0 + $1.retainedBytes - MemoryLayout<ChangeEvent>.stride
      } + offsets.reduce(0) { $0 + 96 + $1.value.capacity * 2 }
  }

  public var lastSeq: UInt64 { firstSeq + UInt64(events.count) - 1 }
}
