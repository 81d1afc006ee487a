/// Reads big-endian fields from a slice, each read naming its field so that a
/// short input says where it ended.
struct ByteReader {
  private(set) var bytes: ArraySlice<UInt8>
  let message: String

  init(_ bytes: ArraySlice<UInt8>, message: String) {
    self.bytes = bytes
    self.message = message
  }

  mutating func take(_ count: Int, _ field: String) throws(WALDecodingError) -> ArraySlice<UInt8> {
    guard bytes.count >= count else {
      throw .truncated(field: field, in: message, needed: count, available: bytes.count)
    }
    let start = bytes.startIndex
    defer { bytes = bytes[(start + count)...] }
    return bytes[start..<(start + count)]
  }

  mutating func uint8(_ field: String) throws(WALDecodingError) -> UInt8 {
    try take(1, field).first!
  }

  mutating func uint32(_ field: String) throws(WALDecodingError) -> UInt32 {
    try take(4, field).reduce(0) { $0 << 8 | UInt32($1) }
  }

  mutating func uint64(_ field: String) throws(WALDecodingError) -> UInt64 {
    try take(8, field).reduce(0) { $0 << 8 | UInt64($1) }
  }

  mutating func lsn(_ field: String) throws(WALDecodingError) -> LSN { LSN(try uint64(field)) }

  mutating func timestamp(_ field: String) throws(WALDecodingError) -> PostgresTimestamp {
    PostgresTimestamp(microsecondsSince2000: Int64(bitPattern: try uint64(field)))
  }

  /// A NUL-terminated string, without its NUL.
  mutating func cString(_ field: String) throws(WALDecodingError) -> ArraySlice<UInt8> {
    guard let end = bytes.firstIndex(of: 0) else { throw .unterminatedString(field: field, in: message) }
    defer { bytes = bytes[(end + 1)...] }
    return bytes[..<end]
  }

  /// The message is fixed-size: anything left over means it was misread.
  func finish() throws(WALDecodingError) {
    guard bytes.isEmpty else { throw .trailingBytes(in: message, count: bytes.count) }
  }
}

/// Appends big-endian fields, the encoders' half of ``ByteReader``.
struct ByteWriter {
  var bytes: [UInt8] = []

  mutating func uint8(_ value: UInt8) { bytes.append(value) }
  mutating func uint32(_ value: UInt32) {
    for shift in stride(from: 24, through: 0, by: -8) {
      bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift)))
    }
  }
  mutating func uint64(_ value: UInt64) {
    for shift in stride(from: 56, through: 0, by: -8) {
      bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
    }
  }
  mutating func lsn(_ value: LSN) { uint64(value.rawValue) }
  mutating func timestamp(_ value: PostgresTimestamp) { uint64(UInt64(bitPattern: value.microsecondsSince2000)) }
  mutating func append(_ more: some Collection<UInt8>) { bytes.append(contentsOf: more) }
}
