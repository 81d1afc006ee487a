import DequeModule

/// Something stamped with a sequence number, kept in a ``ChangeRing``.
public protocol Sequenced {
  var seq: UInt64 { get }
}

/// The bounded memory of recent events of one epoch, oldest first.
///
/// Sequence numbers are consecutive: the ring can tell exactly whether it still
/// holds everything after a given position, which is what lets a reader resume
/// without loss or know that it must reset.
public struct ChangeRing<Element: Sequenced> {
  public let capacity: Int
  private var elements: Deque<Element> = []
  /// The sequence number of the newest event ever appended in this epoch.
  public private(set) var newestSeq: UInt64

  public init(capacity: Int, newestSeq: UInt64 = 0) {
    precondition(capacity > 0, "a ring holds at least one event")
    self.capacity = capacity
    self.newestSeq = newestSeq
  }

  public var count: Int { elements.count }

  /// The next sequence number to stamp.
  public var nextSeq: UInt64 { newestSeq + 1 }

  public mutating func append(_ element: Element) {
    precondition(element.seq == newestSeq + 1, "sequence numbers are consecutive")
    if elements.count == capacity { elements.removeFirst() }
    elements.append(element)
    newestSeq = element.seq
  }

  /// Forgets everything and continues from `newestSeq` (a new epoch, or a
  /// reader that was told to reset).
  public mutating func reset(newestSeq: UInt64) {
    elements.removeAll(keepingCapacity: true)
    self.newestSeq = newestSeq
  }

  /// The event numbered `seq`, if the ring still holds it.
  public func element(withSeq seq: UInt64) -> Element? {
    guard seq <= newestSeq, newestSeq - seq < UInt64(elements.count) else { return nil }
    return elements[elements.count - 1 - Int(newestSeq - seq)]
  }

  /// Whether the ring holds every event after `seq` (true when there is none).
  public func covers(after seq: UInt64) -> Bool {
    seq <= newestSeq && newestSeq - seq <= UInt64(elements.count)
  }

  /// The events after `seq`, or `nil` when the ring no longer holds them all
  /// (or `seq` lies in the future, which no honest reader can have).
  public func events(after seq: UInt64) -> [Element]? {
    guard seq <= newestSeq else { return nil }
    if seq == newestSeq { return [] }
    let missing = Int(newestSeq - seq)
    guard missing <= elements.count else { return nil }
    return Array(elements[(elements.count - missing)...])
  }
}

extension ChangeRing: Sendable where Element: Sendable {}
