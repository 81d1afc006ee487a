/// One message between pbp-notifyd and a subscriber (a worker process).
///
/// On the wire (docs/notifyd-protocol.md): a 4-byte big-endian length of what
/// follows, a 1-byte type, then the type's fields, integers big-endian.
public enum StreamFrame: Equatable, Sendable {
  /// Subscriber → notifyd, first and only: the protocol version it speaks,
  /// the position it already has, if any, and how many recent events it wants
  /// when that position cannot be resumed (a worker that starts, or that
  /// outlived an epoch, takes some history so that the cursors its peers
  /// handed out stay valid with it too).
  case hello(version: UInt16, resumeFrom: Cursor?, history: UInt32)
  /// notifyd → subscriber, first: the position the stream continues from; the
  /// events after it follow. `resumed` says that position is the subscriber's
  /// own; otherwise the subscriber must forget what it had and continue from
  /// `from` (up to `history` events behind the newest).
  case welcome(version: UInt16, from: Cursor, resumed: Bool)
  /// notifyd → subscriber: one change, its position in the current epoch
  /// and the JSON payload the database trigger sent.
  case event(position: StreamPosition, payload: [UInt8])
  /// notifyd → subscriber: the stream starts over at this position, and
  /// everything before it is gone: a new epoch (the LISTEN connection was
  /// re-established), or, with the wal source, the same history after a gap
  /// (the slot was lost and made again).
  case newEpoch(Cursor)

  /// 2: positions (``StreamPosition``) instead of sequence numbers.
  public static let protocolVersion: UInt16 = 2
  /// The largest event the triggers send whole (8 MiB, with the wal source:
  /// `pbp_private.event_size_limit` in sql/01-pbp.sql; a larger row goes as
  /// its key only) and room for the frame around it.
  public static let maximumLength = 8 * 1024 * 1024 + 64 * 1024
  /// The largest payload an event frame can carry (its type and position take 13 bytes).
  public static let maximumEventPayload = maximumLength - 13

  enum Kind: UInt8 {
    case hello = 1
    case welcome = 2
    case event = 3
    case newEpoch = 4
  }
}

extension StreamFrame {
  /// Appends the frame's wire form to `buffer`.
  public func encode(into buffer: inout [UInt8]) {
    let lengthAt = buffer.count
    buffer.append(contentsOf: [0, 0, 0, 0])
    switch self {
    case .hello(let version, let cursor, let history):
      buffer.append(Kind.hello.rawValue)
      buffer.appendBigEndian(version)
      if let cursor {
        buffer.append(1)
        buffer.append(cursor)
      } else {
        buffer.append(0)
      }
      // Optional on the wire: a HELLO without it asks for no history.
      if history > 0 { buffer.appendBigEndian(history) }
    case .welcome(let version, let current, let resumed):
      buffer.append(Kind.welcome.rawValue)
      buffer.appendBigEndian(version)
      buffer.append(current)
      buffer.append(resumed ? 1 : 0)
    case .event(let position, let payload):
      buffer.append(Kind.event.rawValue)
      buffer.append(position)
      buffer.append(contentsOf: payload)
    case .newEpoch(let current):
      buffer.append(Kind.newEpoch.rawValue)
      buffer.append(current)
    }
    let length = UInt32(buffer.count - lengthAt - 4)
    buffer[lengthAt] = UInt8(truncatingIfNeeded: length >> 24)
    buffer[lengthAt + 1] = UInt8(truncatingIfNeeded: length >> 16)
    buffer[lengthAt + 2] = UInt8(truncatingIfNeeded: length >> 8)
    buffer[lengthAt + 3] = UInt8(truncatingIfNeeded: length)
  }

  public var encoded: [UInt8] {
    var buffer: [UInt8] = []
    encode(into: &buffer)
    return buffer
  }
}

extension Array where Element == UInt8 {
  mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
    var big = value.bigEndian
    Swift.withUnsafeBytes(of: &big) { append(contentsOf: $0) }
  }

  /// `major: u64, minor: u32`.
  mutating func append(_ position: StreamPosition) {
    appendBigEndian(position.major)
    appendBigEndian(position.minor)
  }

  /// `epoch: u64`, then the position.
  mutating func append(_ cursor: Cursor) {
    appendBigEndian(cursor.epoch)
    append(cursor.position)
  }
}
