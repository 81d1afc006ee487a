// Cursor(parsing:): the position a client sends back. Properties: it accepts
// exactly `EPOCH:MAJOR` or `EPOCH:MAJOR.MINOR` with a nonzero epoch in 16
// lowercase hex digits, a decimal major without leading zeros that fits 64
// bits and a nonzero decimal minor without leading zeros that fits 32
// (checked against a plain reimplementation); what it accepts formats back to
// the same text; a slice inside a longer string parses alike; every cursor
// survives description → parsing.
import ChangeStream

/// What the format allows, written out byte by byte.
private func referenceParse(_ bytes: [UInt8]) -> Cursor? {
  guard bytes.count >= 18, bytes[16] == UInt8(ascii: ":") else { return nil }
  var epoch: UInt64 = 0
  for byte in bytes[..<16] {
    let digit: UInt8
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
    default: return nil
    }
    epoch = epoch << 4 | UInt64(digit)
  }
  let rest = bytes[17...]
  let dot = rest.firstIndex(of: UInt8(ascii: "."))
  guard let major = referenceNumber(rest[..<(dot ?? rest.endIndex)], limit: UInt64.max) else { return nil }
  var minor: UInt64 = 0
  if let dot {
    guard let parsed = referenceNumber(rest[(dot + 1)...], limit: UInt64(UInt32.max)), parsed != 0 else { return nil }
    minor = parsed
  }
  guard epoch != 0 else { return nil }
  return Cursor(epoch: epoch, position: StreamPosition(major: major, minor: UInt32(minor)))
}

/// Decimal digits without a leading zero, at most `limit`.
private func referenceNumber(_ digits: ArraySlice<UInt8>, limit: UInt64) -> UInt64? {
  guard !digits.isEmpty, digits.count == 1 || digits.first != UInt8(ascii: "0") else { return nil }
  var value: UInt64 = 0
  for byte in digits {
    guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
    let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
    let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
    guard !overflow1 && !overflow2, sum <= limit else { return nil }
    value = sum
  }
  return value
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCursor(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
  let bytes = FuzzInput.bytes(data, size)
  let text = String(decoding: bytes, as: UTF8.self)

  let parsed = Cursor(parsing: text)
  let expected = referenceParse(Array(text.utf8))
  require(parsed == expected, "parsed \(String(describing: parsed)), expected \(String(describing: expected))")
  if let parsed {
    require(parsed.description == text, "\(text) formats back as \(parsed.description)")
  }

  // The same text as a slice of a longer string (indices not starting at 0;
  // cut by scalars, since the text may begin with a combining mark).
  let framed = "é[" + text + "]"
  let scalars = framed.unicodeScalars
  let inner = framed[scalars.index(scalars.startIndex, offsetBy: 2)..<scalars.index(before: scalars.endIndex)]
  require(inner.utf8.elementsEqual(text.utf8), "the slice is not the text")
  require(Cursor(parsing: inner) == parsed, "a slice parses differently from its text")

  // Any cursor with a nonzero epoch survives its text form.
  var input = FuzzInput(data, size)
  var epoch: UInt64 = 0
  var major: UInt64 = 0
  var minor: UInt32 = 0
  for _ in 0..<8 { epoch = epoch << 8 | UInt64(input.byte()) }
  for _ in 0..<8 { major = major << 8 | UInt64(input.byte()) }
  for _ in 0..<4 { minor = minor << 8 | UInt32(input.byte()) }
  if epoch != 0 {
    let cursor = Cursor(epoch: epoch, position: StreamPosition(major: major, minor: minor))
    require(Cursor(parsing: cursor.description) == cursor, "\(cursor) does not parse back")
  }
  return 0
}
