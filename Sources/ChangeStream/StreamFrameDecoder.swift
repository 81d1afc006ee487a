/// Why a byte stream is not a valid sequence of ``StreamFrame``s. Any of them
/// ends the connection: the peer is not speaking our protocol.
public enum StreamFrameError: Error, Equatable, Sendable {
  case frameTooLong(Int)
  case unknownType(UInt8)
  case malformed(kind: String, length: Int)
  case emptyFrame
}

/// Cuts frames out of a byte stream that arrives in arbitrary pieces.
public struct StreamFrameDecoder: Sendable {
  private var buffer: [UInt8] = []
  private var readIndex = 0
  public let maximumLength: Int

  public init(maximumLength: Int = StreamFrame.maximumLength) {
    self.maximumLength = maximumLength
  }

  /// Bytes received but not yet returned as a frame.
  public var pendingByteCount: Int { buffer.count - readIndex }

  public mutating func feed<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
    if readIndex > 0 && readIndex == buffer.count {
      buffer.removeAll(keepingCapacity: true)
      readIndex = 0
    } else if readIndex > 64 * 1024 {
      buffer.removeFirst(readIndex)
      readIndex = 0
    }
    buffer.append(contentsOf: bytes)
  }

  /// The next complete frame, `nil` when more bytes are needed.
  public mutating func next() throws(StreamFrameError) -> StreamFrame? {
    guard buffer.count - readIndex >= 4 else { return nil }
    let length =
      Int(buffer[readIndex]) << 24 | Int(buffer[readIndex + 1]) << 16
      | Int(buffer[readIndex + 2]) << 8 | Int(buffer[readIndex + 3])
    guard length > 0 else { throw .emptyFrame }
    guard length <= maximumLength else { throw .frameTooLong(length) }
    guard buffer.count - readIndex - 4 >= length else { return nil }
    let start = readIndex + 4
    let frame = try Self.decode(buffer[start..<(start + length)])
    readIndex = start + length
    return frame
  }

  static func decode(_ bytes: ArraySlice<UInt8>) throws(StreamFrameError) -> StreamFrame {
    var reader = ByteReader(bytes: bytes)
    let typeByte = reader.readByte()!
    guard let kind = StreamFrame.Kind(rawValue: typeByte) else { throw .unknownType(typeByte) }
    // Built only when thrown: the kind's name comes from reflection, which
    // was a sixth of a worker's stream thread when made for every event.
    func malformed() -> StreamFrameError { .malformed(kind: "\(kind)", length: bytes.count) }
    switch kind {
    case .hello:
      guard let version = reader.read(UInt16.self), let flag = reader.readByte() else { throw malformed() }
      var cursor: Cursor?
      switch flag {
      case 0: cursor = nil
      case 1:
        guard let read = reader.readCursor() else { throw malformed() }
        cursor = read
      default: throw malformed()
      }
      var history: UInt32 = 0
      if !reader.isAtEnd {
        guard let requested = reader.read(UInt32.self), requested > 0 else { throw malformed() }
        history = requested
      }
      guard reader.isAtEnd else { throw malformed() }
      return .hello(version: version, resumeFrom: cursor, history: history)
    case .welcome:
      guard let version = reader.read(UInt16.self), let from = reader.readCursor(),
        let resumed = reader.readByte(), resumed <= 1, reader.isAtEnd
      else { throw malformed() }
      return .welcome(version: version, from: from, resumed: resumed == 1)
    case .event:
      guard let position = reader.readPosition() else { throw malformed() }
      return .event(position: position, payload: Array(reader.rest))
    case .newEpoch:
      guard let current = reader.readCursor(), reader.isAtEnd else { throw malformed() }
      return .newEpoch(current)
    }
  }
}

private struct ByteReader {
  var bytes: ArraySlice<UInt8>

  var isAtEnd: Bool { bytes.isEmpty }
  var rest: ArraySlice<UInt8> { bytes }

  mutating func readByte() -> UInt8? { bytes.popFirst() }

  mutating func read<T: FixedWidthInteger>(_: T.Type) -> T? {
    let size = MemoryLayout<T>.size
    guard bytes.count >= size else { return nil }
    var value: T = 0
    for byte in bytes.prefix(size) { value = value << 8 | T(byte) }
    bytes = bytes.dropFirst(size)
    return value
  }

  mutating func readPosition() -> StreamPosition? {
    guard let major = read(UInt64.self), let minor = read(UInt32.self) else { return nil }
    return StreamPosition(major: major, minor: minor)
  }

  /// A cursor; nil when short or its epoch is 0 (no epoch is).
  mutating func readCursor() -> Cursor? {
    guard let epoch = read(UInt64.self), epoch != 0, let position = readPosition() else { return nil }
    return Cursor(epoch: epoch, position: position)
  }
}
