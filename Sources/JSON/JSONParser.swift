/// Why a byte string is not a JSON document we accept.
public struct JSONParseError: Error, Equatable, Sendable, CustomStringConvertible {
  public enum Reason: Equatable, Sendable {
    case unexpectedEnd
    case unexpectedByte(UInt8)
    case invalidNumber
    case invalidEscape
    case invalidUTF8
    case tooDeep(limit: Int)
    case trailingData
  }
  public let reason: Reason
  public let offset: Int

  public var description: String {
    switch reason {
    case .unexpectedEnd: return "unexpected end of JSON"
    case .unexpectedByte(let byte): return "unexpected byte 0x\(String(byte, radix: 16)) at offset \(offset)"
    case .invalidNumber: return "invalid number at offset \(offset)"
    case .invalidEscape: return "invalid escape at offset \(offset)"
    case .invalidUTF8: return "invalid UTF-8 in string at offset \(offset)"
    case .tooDeep(let limit): return "nested deeper than \(limit) levels"
    case .trailingData: return "data after the JSON value at offset \(offset)"
    }
  }
}

/// A strict RFC 8259 parser with a nesting limit, for input from outside.
/// A member name given twice keeps its last value, as PostgreSQL's `jsonb`
/// does; the nesting limit applies to the text, the overwritten value included.
public struct JSONParser {
  public static let defaultMaximumDepth = 32

  public static func parse<Bytes: Collection>(
    _ bytes: Bytes, maximumDepth: Int = defaultMaximumDepth
  ) throws(JSONParseError) -> JSONValue where Bytes.Element == UInt8 {
    let array = Array(bytes)
    var parser = JSONParser(bytes: array, maximumDepth: maximumDepth)
    parser.skipWhitespace()
    let value = try parser.parseValue(depth: 0)
    parser.skipWhitespace()
    guard parser.index == array.count else { throw parser.error(.trailingData) }
    return value
  }

  public static func parse(_ text: String, maximumDepth: Int = defaultMaximumDepth) throws(JSONParseError)
    -> JSONValue
  {
    try parse(Array(text.utf8), maximumDepth: maximumDepth)
  }

  /// Throws what ``parse(_:maximumDepth:)`` would throw for `bytes`, and
  /// builds nothing: for a text that is kept as it is and only read in parts
  /// (a change event's payload), where building the tree was most of a
  /// worker's cost per event.
  public static func validate(_ bytes: [UInt8], maximumDepth: Int = defaultMaximumDepth) throws(JSONParseError) {
    var parser = JSONParser(bytes: bytes, maximumDepth: maximumDepth, buildsValues: false)
    parser.skipWhitespace()
    _ = try parser.parseValue(depth: 0)
    parser.skipWhitespace()
    guard parser.index == bytes.count else { throw parser.error(.trailingData) }
  }

  private let bytes: [UInt8]
  private let maximumDepth: Int
  /// False while validating: every value parses to `.null` and no string is
  /// made, though each is checked exactly as when building.
  private let buildsValues: Bool
  private var index = 0

  private init(bytes: [UInt8], maximumDepth: Int, buildsValues: Bool = true) {
    self.bytes = bytes
    self.maximumDepth = maximumDepth
    self.buildsValues = buildsValues
  }

  private func error(_ reason: JSONParseError.Reason) -> JSONParseError {
    JSONParseError(reason: reason, offset: index)
  }

  private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

  private mutating func skipWhitespace() {
    while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
      index += 1
    }
  }

  private mutating func expect(_ literal: StaticString, _ value: JSONValue) throws(JSONParseError) -> JSONValue {
    let count = literal.utf8CodeUnitCount
    guard index + count <= bytes.count else { throw error(.unexpectedEnd) }
    for offset in 0..<count where bytes[index + offset] != literal.utf8Start[offset] {
      index += offset
      throw error(.unexpectedByte(bytes[index]))
    }
    index += count
    return value
  }

  private mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
    guard let byte = current else { throw error(.unexpectedEnd) }
    switch byte {
    case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
    case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
    case UInt8(ascii: "\""): return .string(try parseString())
    case UInt8(ascii: "t"): return try expect("true", .bool(true))
    case UInt8(ascii: "f"): return try expect("false", .bool(false))
    case UInt8(ascii: "n"): return try expect("null", .null)
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
    default: throw error(.unexpectedByte(byte))
    }
  }

  private mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
    guard depth <= maximumDepth else { throw error(.tooDeep(limit: maximumDepth)) }
    index += 1
    var members: [String: JSONValue] = [:]
    skipWhitespace()
    if current == UInt8(ascii: "}") {
      index += 1
      return .object(members)
    }
    while true {
      skipWhitespace()
      guard let byte = current else { throw error(.unexpectedEnd) }
      guard byte == UInt8(ascii: "\"") else { throw error(.unexpectedByte(byte)) }
      let key = try parseString()
      skipWhitespace()
      guard let colon = current else { throw error(.unexpectedEnd) }
      guard colon == UInt8(ascii: ":") else { throw error(.unexpectedByte(colon)) }
      index += 1
      skipWhitespace()
      let value = try parseValue(depth: depth)
      if buildsValues { members[key] = value }
      skipWhitespace()
      guard let next = current else { throw error(.unexpectedEnd) }
      index += 1
      if next == UInt8(ascii: "}") { return .object(members) }
      guard next == UInt8(ascii: ",") else {
        index -= 1
        throw error(.unexpectedByte(next))
      }
    }
  }

  private mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
    guard depth <= maximumDepth else { throw error(.tooDeep(limit: maximumDepth)) }
    index += 1
    var elements: [JSONValue] = []
    skipWhitespace()
    if current == UInt8(ascii: "]") {
      index += 1
      return .array(elements)
    }
    while true {
      skipWhitespace()
      let element = try parseValue(depth: depth)
      if buildsValues { elements.append(element) }
      skipWhitespace()
      guard let next = current else { throw error(.unexpectedEnd) }
      index += 1
      if next == UInt8(ascii: "]") { return .array(elements) }
      guard next == UInt8(ascii: ",") else {
        index -= 1
        throw error(.unexpectedByte(next))
      }
    }
  }

  private mutating func parseNumber() throws(JSONParseError) -> JSONValue {
    let start = index
    if current == UInt8(ascii: "-") { index += 1 }
    guard let first = current, first >= 0x30 && first <= 0x39 else { throw error(.invalidNumber) }
    if first == 0x30 {
      index += 1
    } else {
      skipDigits()
    }
    if current == UInt8(ascii: ".") {
      index += 1
      guard skipDigits() > 0 else { throw error(.invalidNumber) }
    }
    if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
      index += 1
      if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
      guard skipDigits() > 0 else { throw error(.invalidNumber) }
    }
    return buildsValues ? .number(String(decoding: bytes[start..<index], as: UTF8.self)) : .null
  }

  @discardableResult
  private mutating func skipDigits() -> Int {
    let start = index
    while let byte = current, byte >= 0x30 && byte <= 0x39 { index += 1 }
    return index - start
  }

  private mutating func parseString() throws(JSONParseError) -> String {
    index += 1
    var scalars: [UInt8] = []
    var runStart = index
    // Escapes are ASCII, so the text is valid UTF-8 exactly when each run
    // between them is: validation checks the runs where they lie.
    var runIsASCII = true
    while true {
      guard let byte = current else { throw error(.unexpectedEnd) }
      switch byte {
      case UInt8(ascii: "\""):
        guard buildsValues else {
          let valid = runIsASCII || Self.isValidUTF8(bytes[runStart..<index])
          index += 1
          guard valid else { throw error(.invalidUTF8) }
          return ""
        }
        scalars.append(contentsOf: bytes[runStart..<index])
        index += 1
        guard let text = String(validating: scalars, as: UTF8.self) else { throw error(.invalidUTF8) }
        return text
      case UInt8(ascii: "\\"):
        if buildsValues {
          scalars.append(contentsOf: bytes[runStart..<index])
        } else if !runIsASCII, !Self.isValidUTF8(bytes[runStart..<index]) {
          // Where building finds it: after the closing quote.
          try skipToClosingQuote()
          index += 1
          throw error(.invalidUTF8)
        }
        index += 1
        try parseEscape(into: &scalars)
        if !buildsValues { scalars.removeAll(keepingCapacity: true) }
        runStart = index
        runIsASCII = true
      case 0..<0x20:
        throw error(.unexpectedByte(byte))
      default:
        if byte >= 0x80 { runIsASCII = false }
        index += 1
      }
    }
  }

  /// With the same rules as `String(validating:as:)` (no overlong forms, no
  /// surrogates), without making a string.
  private static func isValidUTF8(_ run: ArraySlice<UInt8>) -> Bool {
    var iterator = run.makeIterator()
    var decoder = UTF8()
    while true {
      switch decoder.decode(&iterator) {
      case .scalarValue: continue
      case .emptyInput: return true
      case .error: return false
      }
    }
  }

  /// Goes on through the string as building would, to throw what it throws
  /// first: an error before the closing quote, or none.
  private mutating func skipToClosingQuote() throws(JSONParseError) {
    var ignored: [UInt8] = []
    while true {
      guard let byte = current else { throw error(.unexpectedEnd) }
      switch byte {
      case UInt8(ascii: "\""): return
      case UInt8(ascii: "\\"):
        index += 1
        try parseEscape(into: &ignored)
        ignored.removeAll(keepingCapacity: true)
      case 0..<0x20: throw error(.unexpectedByte(byte))
      default: index += 1
      }
    }
  }

  private mutating func parseEscape(into output: inout [UInt8]) throws(JSONParseError) {
    guard let byte = current else { throw error(.unexpectedEnd) }
    index += 1
    switch byte {
    case UInt8(ascii: "\""): output.append(0x22)
    case UInt8(ascii: "\\"): output.append(0x5C)
    case UInt8(ascii: "/"): output.append(0x2F)
    case UInt8(ascii: "b"): output.append(0x08)
    case UInt8(ascii: "f"): output.append(0x0C)
    case UInt8(ascii: "n"): output.append(0x0A)
    case UInt8(ascii: "r"): output.append(0x0D)
    case UInt8(ascii: "t"): output.append(0x09)
    case UInt8(ascii: "u"):
      var code = try parseHex4()
      if (0xD800..<0xDC00).contains(code) {
        guard current == UInt8(ascii: "\\"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "u")
        else { throw error(.invalidEscape) }
        index += 2
        let low = try parseHex4()
        guard (0xDC00..<0xE000).contains(low) else { throw error(.invalidEscape) }
        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
      } else if (0xDC00..<0xE000).contains(code) || code == 0 {
        // A lone low surrogate is not a character; NUL cannot be stored in a PostgreSQL text.
        throw error(.invalidEscape)
      }
      guard let scalar = Unicode.Scalar(code) else { throw error(.invalidEscape) }
      output.append(contentsOf: UTF8.encode(scalar)!)
    default:
      index -= 1
      throw error(.invalidEscape)
    }
  }

  private mutating func parseHex4() throws(JSONParseError) -> UInt32 {
    guard index + 4 <= bytes.count else { throw error(.unexpectedEnd) }
    var value: UInt32 = 0
    for _ in 0..<4 {
      let byte = bytes[index]
      let digit: UInt8
      switch byte {
      case 0x30...0x39: digit = byte - 0x30
      case 0x61...0x66: digit = byte - 0x61 + 10
      case 0x41...0x46: digit = byte - 0x41 + 10
      default: throw error(.invalidEscape)
      }
      value = value << 4 | UInt32(digit)
      index += 1
    }
    return value
  }
}
