// Shared by every fuzz target (compiled into each driver; see Fuzz/fuzz.sh).

/// Stops with a message when a property does not hold, so that libFuzzer
/// records the input as a crash (the message says which property and how).
func require(
  _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID,
  line: UInt = #line
) {
  if !condition() {
    fatalError("property violated: \(message())", file: file, line: line)
  }
}

/// Reads the fuzzer's bytes as a sequence of decisions and data: a target
/// takes the control values it needs from the front and the rest as input.
struct FuzzInput {
  private var bytes: ArraySlice<UInt8>

  init(_ start: UnsafeRawPointer?, _ count: Int) {
    bytes = count > 0 && start != nil ? ArraySlice(UnsafeRawBufferPointer(start: start, count: count)) : []
  }

  /// The whole input, for targets that need no decisions.
  static func bytes(_ start: UnsafeRawPointer?, _ count: Int) -> [UInt8] {
    var input = FuzzInput(start, count)
    return input.rest()
  }

  var isEmpty: Bool { bytes.isEmpty }

  /// One byte, 0 when the input is used up.
  mutating func byte() -> UInt8 { bytes.popFirst() ?? 0 }

  /// A big-endian 16-bit value.
  mutating func uint16() -> UInt16 { UInt16(byte()) << 8 | UInt16(byte()) }

  /// The bytes up to (not including) the next `separator`, consuming it.
  mutating func line(separator: UInt8 = 0x0A) -> ArraySlice<UInt8> {
    if let end = bytes.firstIndex(of: separator) {
      let head = bytes[..<end]
      bytes = bytes[(end + 1)...]
      return head
    }
    let head = bytes
    bytes = []
    return head
  }

  /// Everything not taken yet.
  mutating func rest() -> [UInt8] {
    defer { bytes = [] }
    return Array(bytes)
  }
}

/// `application/x-www-form-urlencoded` for any text: unreserved bytes as they
/// are, space as `+`, everything else percent-escaped (upper or lower case hex
/// as `lowercaseHex` says, so that both spellings get decoded).
func formEncode(_ text: String, lowercaseHex: Bool = false) -> String {
  let digits = Array((lowercaseHex ? "0123456789abcdef" : "0123456789ABCDEF").utf8)
  var output: [UInt8] = []
  for byte in text.utf8 {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
      UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
      UInt8(ascii: "~"):
      output.append(byte)
    case UInt8(ascii: " "):
      output.append(UInt8(ascii: "+"))
    default:
      output += [UInt8(ascii: "%"), digits[Int(byte >> 4)], digits[Int(byte & 15)]]
    }
  }
  return String(decoding: output, as: UTF8.self)
}
