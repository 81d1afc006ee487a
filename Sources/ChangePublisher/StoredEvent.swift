import ChangeStream

/// An event as notifyd keeps it: already encoded as the frame every stream client gets.
public struct StoredEvent: Sequenced, Equatable, Sendable {
  public let seq: UInt64
  public let frame: [UInt8]

  /// What an event costs beyond its frame's storage: its slot in the ring
  /// (16 bytes), the array's header (32) and malloc's own (about 16).
  public static let bookkeepingBytes = 64

  public init(seq: UInt64, payload: [UInt8]) {
    self.seq = seq
    // Sized up front: an array grown by appending keeps up to half again as much spare.
    var frame: [UInt8] = []
    frame.reserveCapacity(StreamFrame.eventHeaderSize + payload.count)
    StreamFrame.event(seq: seq, payload: payload).encode(into: &frame)
    self.frame = frame
  }

  /// The memory this event holds in the ring.
  public var storedBytes: Int { frame.capacity + Self.bookkeepingBytes }
}

extension StreamFrame {
  /// Length prefix, frame type and sequence number, before an event's payload.
  static let eventHeaderSize = 4 + 1 + 8
}
