import ChangeStream

/// What notifyd can offer a stream client: the current epoch and the ring of its recent events.
public struct ChangeHistory {
  /// nil until the first LISTEN is in place: no cursor may exist before it.
  public private(set) var epoch: UInt64?
  public private(set) var ring: StoredEventRing

  /// The ring keeps at most `ringCapacity` events (--ring-size) and
  /// `ringByteBudget` bytes of them (--ring-bytes), whichever is reached first.
  public init(ringCapacity: Int, ringByteBudget: Int) {
    ring = StoredEventRing(capacity: ringCapacity, byteBudget: ringByteBudget)
  }

  /// The position of the newest event, once an epoch exists.
  public var newest: Cursor? { epoch.map { Cursor(epoch: $0, seq: ring.newestSeq) } }

  /// Forgets the previous epoch's events (the notifications sent while no
  /// LISTEN was in place are lost) and returns the new epoch's first position.
  public mutating func startEpoch(_ epoch: UInt64) -> Cursor {
    self.epoch = epoch
    ring.reset(newestSeq: 0)
    return Cursor(epoch: epoch, seq: 0)
  }

  /// Stamps a notification's payload with the next sequence number and keeps it.
  public mutating func append(payload: [UInt8]) -> StoredEvent {
    precondition(epoch != nil, "events arrive only on a LISTEN connection, which starts an epoch")
    let event = StoredEvent(seq: ring.nextSeq, payload: payload)
    ring.append(event)
    return event
  }
}
