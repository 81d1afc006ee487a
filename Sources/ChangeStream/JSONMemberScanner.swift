/// What a value in a JSON text is, told by its first byte (and, for strings,
/// whether it holds escapes), without building it.
public enum JSONValueKind: UInt8, Sendable {
  case string, escapedString, number, trueLiteral, falseLiteral, null, object, array
}

/// One member of a JSON object, as offsets into the text that holds it.
/// Offsets are 16-bit: a notifyd frame, and so a payload, is under 64 KiB
/// (``TriggerPayload`` refuses a longer one rather than trap).
public struct JSONMemberSpan: Sendable, Equatable {
  /// The name with its quotes.
  public let nameStart: UInt32
  public let nameEnd: UInt32
  public let valueStart: UInt32
  public let valueEnd: UInt32
  public let nameIsEscaped: Bool
  public let kind: JSONValueKind
}

/// Finds the members of an object in a text that is already known to be valid
/// JSON (``JSON/JSONParser`` said so): the spans let a row's columns be found
/// and compared later without keeping a parsed copy of the row.
enum JSONMemberScanner {
  /// The members of the object whose `{` is at `start`, in text order, and the
  /// offset after its `}`.
  static func members(of bytes: [UInt8], objectAt start: Int) -> (members: [JSONMemberSpan], end: Int) {
    var members: [JSONMemberSpan] = []
    var index = skipWhitespace(bytes, start + 1)
    if bytes[index] == UInt8(ascii: "}") { return (members, index + 1) }
    while true {
      index = skipWhitespace(bytes, index)
      let nameStart = index
      let (nameEnd, nameIsEscaped) = endOfString(bytes, nameStart)
      index = skipWhitespace(bytes, nameEnd) + 1  // the colon
      let valueStart = skipWhitespace(bytes, index)
      let (valueEnd, kind) = endOfValue(bytes, valueStart)
      members.append(
        JSONMemberSpan(
          nameStart: UInt32(nameStart), nameEnd: UInt32(nameEnd), valueStart: UInt32(valueStart),
          valueEnd: UInt32(valueEnd), nameIsEscaped: nameIsEscaped, kind: kind))
      index = skipWhitespace(bytes, valueEnd)
      let separator = bytes[index]
      index += 1
      if separator == UInt8(ascii: "}") { return (members, index) }
    }
  }

  static func skipWhitespace(_ bytes: [UInt8], _ start: Int) -> Int {
    var index = start
    while index < bytes.count,
      bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09
    {
      index += 1
    }
    return index
  }

  /// The offset after the closing quote of the string whose quote is at `start`.
  static func endOfString(_ bytes: [UInt8], _ start: Int) -> (end: Int, escaped: Bool) {
    var index = start + 1
    var escaped = false
    while bytes[index] != UInt8(ascii: "\"") {
      if bytes[index] == UInt8(ascii: "\\") {
        escaped = true
        index += 1
      }
      index += 1
    }
    return (index + 1, escaped)
  }

  static func endOfValue(_ bytes: [UInt8], _ start: Int) -> (end: Int, kind: JSONValueKind) {
    switch bytes[start] {
    case UInt8(ascii: "\""):
      let (end, escaped) = endOfString(bytes, start)
      return (end, escaped ? .escapedString : .string)
    case UInt8(ascii: "{"), UInt8(ascii: "["):
      return (endOfContainer(bytes, start), bytes[start] == UInt8(ascii: "{") ? .object : .array)
    case UInt8(ascii: "t"): return (start + 4, .trueLiteral)
    case UInt8(ascii: "f"): return (start + 5, .falseLiteral)
    case UInt8(ascii: "n"): return (start + 4, .null)
    default:
      var index = start
      while index < bytes.count, isNumberByte(bytes[index]) { index += 1 }
      return (index, .number)
    }
  }

  private static func endOfContainer(_ bytes: [UInt8], _ start: Int) -> Int {
    var depth = 0
    var index = start
    while true {
      switch bytes[index] {
      case UInt8(ascii: "\""):
        index = endOfString(bytes, index).end
        continue
      case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
      case UInt8(ascii: "}"), UInt8(ascii: "]"):
        depth -= 1
        if depth == 0 { return index + 1 }
      default: break
      }
      index += 1
    }
  }

  private static func isNumberByte(_ byte: UInt8) -> Bool {
    (byte >= 0x30 && byte <= 0x39) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")
      || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")
  }
}
