import ChangeStream

/// An event as notifyd keeps it: already encoded as the frame every stream client gets.
public struct StoredEvent: Sequenced, Equatable, Sendable {
  /// Its number in notifyd's ring (consecutive there, and nowhere else).
  public let seq: UInt64
  public let position: StreamPosition
  public let frame: [UInt8]

  /// What an event costs beyond its frame's storage: its slot in the ring
  /// (32 bytes), the array's header (32) and malloc's own (about 16).
  public static let bookkeepingBytes = 80

  public init(seq: UInt64, position: StreamPosition, payload: [UInt8]) {
    self.seq = seq
    self.position = position
    // Sized up front: an array grown by appending keeps up to half again as much spare.
    var frame: [UInt8] = []
    frame.reserveCapacity(StreamFrame.eventHeaderSize + payload.count)
    StreamFrame.event(position: position, payload: payload).encode(into: &frame)
    self.frame = frame
  }

  /// The memory this event holds in the ring.
  public var storedBytes: Int { frame.capacity + Self.bookkeepingBytes }
}

extension StreamFrame {
  /// Length prefix, frame type and position, before an event's payload.
  static let eventHeaderSize = 4 + 1 + 8 + 4
}
