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
/// Sequence numbers are consecutive, so the ring can tell exactly whether it
/// still holds everything after a position (``covers(after:)``), whatever it
/// evicted for count or bytes.
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
  /// Changes with every reset: a scan of an older generation is void.
  public private(set) var generation: UInt64 = 0

  public init(capacity: Int, byteBudget: Int = .max, chunkSize: Int = 256, newestSeq: UInt64 = 0) {
    precondition(capacity > 0 && byteBudget > 0, "a ring holds at least one event")
    precondition(chunkSize > 0 && chunkSize <= 1 << 16, "a chunk holds 1 to 65,536 events")
    self.capacity = capacity
    self.byteBudget = byteBudget
    self.chunkSize = chunkSize
    self.newestSeq = newestSeq
    oldestSeq = newestSeq + 1
  }

  /// Events held.
  public var count: Int { Int(newestSeq + 1 - oldestSeq) }

  /// Bytes held: every chunk still referenced and the tail, so the few events
  /// of a partly evicted chunk count until the chunk goes.
  public var retainedBytes: Int { sealedBytes + tailBytes }

  public var nextSeq: UInt64 { newestSeq + 1 }

  public mutating func append(_ event: ChangeEvent) {
    precondition(event.seq == newestSeq + 1, "sequence numbers are consecutive")
    tail.append(event)
    tailBytes += event.retainedBytes
    newestSeq = event.seq
    if tail.count == chunkSize { sealTail() }
    evict()
  }

  /// Forgets everything and continues from `newestSeq` (a new epoch, or a
  /// reader that was told to reset).
  public mutating func reset(newestSeq: UInt64) {
    sealed.removeAll()
    tail = []
    tailBytes = 0
    sealedBytes = 0
    self.newestSeq = newestSeq
    oldestSeq = newestSeq + 1
    generation += 1
  }

  /// Whether the ring holds every event after `seq` (true when there is none).
  public func covers(after seq: UInt64) -> Bool {
    seq <= newestSeq && seq + 1 >= oldestSeq
  }

  /// What a scan reads outside the lock.
  public var snapshot: RingSnapshot {
    RingSnapshot(sealed: sealed, tail: tail, oldestSeq: oldestSeq, newestSeq: newestSeq, generation: generation)
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
    }
    // Only a tail larger than the budget by itself is left: drop its oldest events.
    while retainedBytes > byteBudget, tail.count > 1 { dropTailFront() }
    while count > capacity {
      if let oldest = sealed.first {
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
  }
}

/// The ring as it was when a scan began: chunks and tail shared, not copied.
public struct RingSnapshot: Sendable {
  let sealed: Deque<EventChunk>
  let tail: [ChangeEvent]
  public let oldestSeq: UInt64
  public let newestSeq: UInt64
  public let generation: UInt64
}
