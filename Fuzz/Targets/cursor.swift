// Cursor(parsing:): the position a client sends back. Properties: it accepts
// exactly `EPOCH:SEQ` with a nonzero epoch in 16 lowercase hex digits and a
// decimal sequence without leading zeros that fits 64 bits (checked against a
// plain reimplementation); what it accepts formats back to the same text; a
// slice inside a longer string parses alike; every cursor survives
// description → parsing.
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
  let digits = bytes[17...]
  guard digits.count == 1 || digits.first != UInt8(ascii: "0") else { return nil }
  var seq: UInt64 = 0
  for byte in digits {
    guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
    let (times10, overflow1) = seq.multipliedReportingOverflow(by: 10)
    let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
    guard !overflow1 && !overflow2 else { return nil }
    seq = sum
  }
  guard epoch != 0 else { return nil }
  return Cursor(epoch: epoch, seq: seq)
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
  var seq: UInt64 = 0
  for _ in 0..<8 { epoch = epoch << 8 | UInt64(input.byte()) }
  for _ in 0..<8 { seq = seq << 8 | UInt64(input.byte()) }
  if epoch != 0 {
    let cursor = Cursor(epoch: epoch, seq: seq)
    require(Cursor(parsing: cursor.description) == cursor, "\(cursor) does not parse back")
  }
  return 0
}
