import ChangeStream
import DequeModule

/// notifyd's memory of the current epoch's recent events, oldest first,
/// bounded by count and by bytes (events are up to 8 MiB each, so a count
/// alone bounds nothing useful).
///
/// The ring numbers its events consecutively (`seq`) and remembers the
/// position of the newest one it evicted (``floor``): it tells exactly
/// whether it still holds everything after a position, however the bytes
/// are spread, so a reader resumes without loss or is reset. The newest
/// event is always kept, even one larger than the whole budget.
public struct StoredEventRing: Sendable {
  public let capacity: Int
  public let byteBudget: Int
  /// The sum of the held events' ``StoredEvent/storedBytes``.
  public private(set) var byteCount = 0
  private var events: Deque<StoredEvent> = []
  /// The number of the newest event ever appended.
  public private(set) var newestSeq: UInt64 = 0
  /// Every event after this position is held.
  public private(set) var floor: StreamPosition
  /// The newest event's position; ``floor`` when none is held.
  public private(set) var newestPosition: StreamPosition

  public init(capacity: Int, byteBudget: Int, at position: StreamPosition = .zero) {
    precondition(capacity > 0 && byteBudget > 0, "a ring holds at least one event")
    self.capacity = capacity
    self.byteBudget = byteBudget
    floor = position
    newestPosition = position
  }

  public var count: Int { events.count }

  /// The next number to give an event.
  public var nextSeq: UInt64 { newestSeq + 1 }

  /// The oldest event held, if any: what the ring could still be asked for.
  public var oldest: StoredEvent? { events.first }

  public mutating func append(_ event: StoredEvent) {
    precondition(event.seq == newestSeq + 1, "the ring's numbers are consecutive")
    precondition(event.position > newestPosition, "positions increase along the stream")
    events.append(event)
    byteCount += event.storedBytes
    newestSeq = event.seq
    newestPosition = event.position
    while events.count > 1 && (events.count > capacity || byteCount > byteBudget) {
      let evicted = events.removeFirst()
      byteCount -= evicted.storedBytes
      floor = evicted.position
    }
  }

  /// Forgets everything and continues from `position` (a new epoch, or a gap).
  public mutating func reset(at position: StreamPosition) {
    events.removeAll()
    byteCount = 0
    floor = position
    newestPosition = position
  }

  /// The event numbered `seq`, if the ring still holds it.
  public func element(withSeq seq: UInt64) -> StoredEvent? {
    guard seq <= newestSeq, newestSeq - seq < UInt64(events.count) else { return nil }
    return events[events.count - 1 - Int(newestSeq - seq)]
  }

  /// Whether the ring holds every event after `position` (true when there is none).
  public func covers(after position: StreamPosition) -> Bool {
    floor <= position && position <= newestPosition
  }

  /// The number of the first event held after `position` (``nextSeq`` when none is).
  public func firstSeq(after position: StreamPosition) -> UInt64 {
    let index = events.firstIndex(after: position)
    return index < events.count ? events[index].seq : nextSeq
  }

  /// The position just before the `count` newest events (as many as are held).
  public func position(before count: Int) -> StreamPosition {
    count < events.count ? events[events.count - 1 - count].position : floor
  }
}

extension StoredEventRing {
  /// For the status line and the log: "ring 1234 events, 5.2 of 128.0 MiB".
  public var usage: String {
    "ring \(count) events, \(MebibyteText.format(byteCount)) of \(MebibyteText.format(byteBudget)) MiB"
  }
}

/// Bytes as mebibytes with one decimal, as the status line and the log say them.
public enum MebibyteText {
  public static func format(_ bytes: Int) -> String {
    let tenths = (bytes * 10 + (1 << 19)) >> 20
    return "\(tenths / 10).\(tenths % 10)"
  }
}
