import ChangeStream

/// What notifyd can offer a stream client: the current epoch and the ring of its recent events.
public struct ChangeHistory {
  /// nil until the source is first in place: no cursor may exist before it.
  public private(set) var epoch: UInt64?
  public private(set) var ring: StoredEventRing
  /// Whether stream clients may be greeted. The wal source starts an epoch
  /// before it has re-read the slot's backlog, and greets only once caught
  /// up: a worker resuming from a cursor newer than the ring would otherwise
  /// be reset for events that are on their way.
  public private(set) var isServing = false

  /// The ring keeps at most `ringCapacity` events (--ring-size) and
  /// `ringByteBudget` bytes of them (--ring-bytes), whichever is reached first.
  public init(ringCapacity: Int, ringByteBudget: Int) {
    ring = StoredEventRing(capacity: ringCapacity, byteBudget: ringByteBudget)
  }

  /// The position of the newest event, once an epoch exists.
  public var newest: Cursor? { epoch.map { Cursor(epoch: $0, position: ring.newestPosition) } }

  /// Forgets the previous epoch's events and continues from `position`:
  /// with the notify source, a new epoch from its start (the notifications
  /// sent while no LISTEN was in place are lost); with the wal source, the
  /// database's history from where the slot starts. Returns the new position.
  public mutating func startEpoch(_ epoch: UInt64, at position: StreamPosition = .zero, serving: Bool = true)
    -> Cursor
  {
    self.epoch = epoch
    ring.reset(at: position)
    isServing = serving
    return Cursor(epoch: epoch, position: position)
  }

  /// The backlog is read: stream clients may be greeted from now on.
  public mutating func startServing() {
    precondition(epoch != nil, "an epoch exists before it is served")
    isServing = true
  }

  /// The notify source's next event: numbered one after the newest.
  public mutating func append(payload: [UInt8]) -> StoredEvent {
    append(payload: payload, at: StreamPosition(major: ring.newestPosition.major + 1))
  }

  /// Keeps an event at `position`, which must come after the newest.
  public mutating func append(payload: [UInt8], at position: StreamPosition) -> StoredEvent {
    precondition(epoch != nil, "events arrive only from a source in place, which starts an epoch")
    let event = StoredEvent(seq: ring.nextSeq, position: position, payload: payload)
    ring.append(event)
    return event
  }
}
