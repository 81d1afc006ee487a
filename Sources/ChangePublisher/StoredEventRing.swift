import DequeModule

/// notifyd's memory of the current epoch's recent events, oldest first,
/// bounded by count and by bytes (events are up to 8 KB each, so a count
/// alone bounds nothing useful).
///
/// Sequence numbers are consecutive and only the oldest are evicted, so the
/// ring tells exactly whether it still holds everything after a position,
/// however the bytes are spread: a reader resumes without loss or is reset.
/// The newest event is always kept, even one larger than the whole budget.
public struct StoredEventRing: Sendable {
  public let capacity: Int
  public let byteBudget: Int
  /// The sum of the held events' ``StoredEvent/storedBytes``.
  public private(set) var byteCount = 0
  private var events: Deque<StoredEvent> = []
  /// The sequence number of the newest event ever appended in this epoch.
  public private(set) var newestSeq: UInt64

  public init(capacity: Int, byteBudget: Int, newestSeq: UInt64 = 0) {
    precondition(capacity > 0 && byteBudget > 0, "a ring holds at least one event")
    self.capacity = capacity
    self.byteBudget = byteBudget
    self.newestSeq = newestSeq
  }

  public var count: Int { events.count }

  /// The next sequence number to stamp.
  public var nextSeq: UInt64 { newestSeq + 1 }

  public mutating func append(_ event: StoredEvent) {
    precondition(event.seq == newestSeq + 1, "sequence numbers are consecutive")
    events.append(event)
    byteCount += event.storedBytes
    newestSeq = event.seq
    while events.count > 1 && (events.count > capacity || byteCount > byteBudget) {
      byteCount -= events.removeFirst().storedBytes
    }
  }

  /// Forgets everything and continues from `newestSeq` (a new epoch).
  public mutating func reset(newestSeq: UInt64) {
    events.removeAll()
    byteCount = 0
    self.newestSeq = newestSeq
  }

  /// The event numbered `seq`, if the ring still holds it.
  public func element(withSeq seq: UInt64) -> StoredEvent? {
    guard seq <= newestSeq, newestSeq - seq < UInt64(events.count) else { return nil }
    return events[events.count - 1 - Int(newestSeq - seq)]
  }

  /// Whether the ring holds every event after `seq` (true when there is none).
  public func covers(after seq: UInt64) -> Bool {
    seq <= newestSeq && newestSeq - seq <= UInt64(events.count)
  }
}

extension StoredEventRing {
  /// For the status line and the log: "ring 1234 events, 5.2 of 128.0 MiB".
  public var usage: String {
    "ring \(count) events, \(Self.mebibytes(byteCount)) of \(Self.mebibytes(byteBudget)) MiB"
  }

  private static func mebibytes(_ bytes: Int) -> String {
    let tenths = (bytes * 10 + (1 << 19)) >> 20
    return "\(tenths / 10).\(tenths % 10)"
  }
}
