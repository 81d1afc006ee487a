// Builds protocol messages byte by byte, as PostgreSQL writes them (big-endian),
// so that the tests state their inputs independently of the module's encoders.
struct WireBytes {
  var bytes: [UInt8] = []

  init(_ type: Character) { bytes = [type.asciiValue!] }

  func u8(_ value: UInt8) -> WireBytes { appending([value]) }
  func u32(_ value: UInt32) -> WireBytes {
    appending((0..<4).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) })
  }
  func u64(_ value: UInt64) -> WireBytes {
    appending((0..<8).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) })
  }
  func i64(_ value: Int64) -> WireBytes { u64(UInt64(bitPattern: value)) }
  func cString(_ text: String) -> WireBytes { appending(Array(text.utf8) + [0]) }
  func raw(_ more: [UInt8]) -> WireBytes { appending(more) }

  private func appending(_ more: [UInt8]) -> WireBytes {
    var copy = self
    copy.bytes += more
    return copy
  }

  var slice: ArraySlice<UInt8> { bytes[...] }
}
