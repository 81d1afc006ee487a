import DequeModule

/// A worker's bounded memory of recent events of one epoch, oldest first,
/// bounded both in events and in bytes.
///
/// Events are appended to an open tail and sealed into immutable
/// ``EventChunk``s of `chunkSize`. A scan works on a ``RingSnapshot`` outside
/// the hub's lock: taking one shares the chunk list and the tail (no event is
/// copied), and the next append then copies at most the tail (under
/// `chunkSize` events) and the list of chunk references, never the events of
/// the whole ring. (A single `Deque` of events would be copied whole by the
/// first append after each snapshot: 65,536 events per hostile poll.)
///
/// The ring numbers its events consecutively (`seq`, its own count), and
/// remembers the position of the newest event it evicted (``floor``), so it
/// can tell exactly whether it still holds everything after a position
/// (``covers(after:)``), whatever it evicted for count or bytes.
public struct EventRing: Sendable {
  public let capacity: Int
  public let byteBudget: Int
  public let chunkSize: Int
  private var sealed: Deque<EventChunk> = []
  private var tail: [ChangeEvent] = []
  private var tailBytes = 0
  private var sealedBytes = 0
  /// The oldest event still held; newestSeq + 1 when none is.
  public private(set) var oldestSeq: UInt64
  public private(set) var newestSeq: UInt64
  /// Every event after this position is held: the newest one evicted, or
  /// where the ring was reset.
  public private(set) var floor: StreamPosition
  /// The newest event's position; ``floor`` when none is held.
  public private(set) var newestPosition: StreamPosition
  /// Changes with every reset: a scan of an older generation is void.
  public private(set) var generation: UInt64 = 0

  public init(capacity: Int, byteBudget: Int = .max, chunkSize: Int = 256, at position: StreamPosition = .zero) {
    precondition(capacity > 0 && byteBudget > 0, "a ring holds at least one event")
    precondition(chunkSize > 0 && chunkSize <= 1 << 16, "a chunk holds 1 to 65,536 events")
    self.capacity = capacity
    self.byteBudget = byteBudget
    self.chunkSize = chunkSize
    newestSeq = 0
    oldestSeq = 1
    floor = position
    newestPosition = position
  }

  /// Events held.
  public var count: Int { Int(newestSeq + 1 - oldestSeq) }

  /// Bytes held: every chunk still referenced and the tail, so the few events
  /// of a partly evicted chunk count until the chunk goes.
  public var retainedBytes: Int { sealedBytes + tailBytes }

  /// Takes the next event, which must come after the newest (a caller that
  /// cannot promise it checks ``newestPosition`` first), and numbers it.
  public mutating func append(_ event: ChangeEvent) {
    precondition(event.position > newestPosition, "positions increase along the stream")
    var event = event
    event.seq = newestSeq + 1
    tail.append(event)
    tailBytes += event.retainedBytes
    newestSeq = event.seq
    newestPosition = event.position
    if tail.count == chunkSize { sealTail() }
    evict()
  }

  /// Forgets everything and continues from `position` (a new epoch, or a
  /// reader that was told to reset). The numbering goes on, so no number
  /// ever names two events.
  public mutating func reset(at position: StreamPosition) {
    sealed.removeAll()
    tail = []
    tailBytes = 0
    sealedBytes = 0
    oldestSeq = newestSeq + 1
    floor = position
    newestPosition = position
    generation += 1
  }

  /// Whether the ring holds every event after `position` (true when there is none).
  public func covers(after position: StreamPosition) -> Bool {
    floor <= position && position <= newestPosition
  }

  /// What a scan reads outside the lock.
  public var snapshot: RingSnapshot {
    RingSnapshot(
      sealed: sealed, tail: tail, floor: floor, newestPosition: newestPosition, generation: generation)
  }

  private mutating func sealTail() {
    let chunk = EventChunk(events: tail)
    sealed.append(chunk)
    sealedBytes += chunk.retainedBytes
    tail = []
    tail.reserveCapacity(chunkSize)
    tailBytes = 0
  }

  /// Oldest first, until both bounds hold. Bytes are given back a chunk at a
  /// time (a chunk's memory goes only with the chunk); the count is exact.
  private mutating func evict() {
    while retainedBytes > byteBudget, let oldest = sealed.first {
      sealed.removeFirst()
      sealedBytes -= oldest.retainedBytes
      oldestSeq = max(oldestSeq, oldest.lastSeq + 1)
      floor = max(floor, oldest.lastPosition)
    }
    // Only a tail larger than the budget by itself is left: drop its oldest events.
    while retainedBytes > byteBudget, tail.count > 1 { dropTailFront() }
    while count > capacity {
      if let oldest = sealed.first {
        floor = oldest.events[Int(oldestSeq - oldest.firstSeq)].position
        oldestSeq += 1
        if oldestSeq > oldest.lastSeq {
          sealed.removeFirst()
          sealedBytes -= oldest.retainedBytes
        }
      } else {
        dropTailFront()
      }
    }
  }

  private mutating func dropTailFront() {
    let dropped = tail.removeFirst()
    tailBytes -= dropped.retainedBytes
    oldestSeq = dropped.seq + 1
    floor = dropped.position
  }
}

/// The ring as it was when a scan began: chunks and tail shared, not copied.
public struct RingSnapshot: Sendable {
  let sealed: Deque<EventChunk>
  let tail: [ChangeEvent]
  public let floor: StreamPosition
  public let newestPosition: StreamPosition
  public let generation: UInt64
}
