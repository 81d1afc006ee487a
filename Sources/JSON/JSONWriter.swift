/// Writes JSON text. Output is ASCII-safe only where JSON requires escapes;
/// other characters pass through as UTF-8.
public enum JSONWriter {
  public static func quoted(_ text: String) -> String {
    var output = "\""
    output.reserveCapacity(text.utf8.count + 2)
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": output += "\\\""
      case "\\": output += "\\\\"
      case "\n": output += "\\n"
      case "\r": output += "\\r"
      case "\t": output += "\\t"
      case let s where s.value < 0x20:
        let hex = String(s.value, radix: 16)
        output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      default: output.unicodeScalars.append(scalar)
      }
    }
    output += "\""
    return output
  }

  public static func serialize(_ value: JSONValue) -> String {
    var output = ""
    write(value, into: &output)
    return output
  }

  public static func write(_ value: JSONValue, into output: inout String) {
    switch value {
    case .null: output += "null"
    case .bool(let flag): output += flag ? "true" : "false"
    case .number(let text): output += text
    case .string(let text): output += quoted(text)
    case .array(let elements):
      output += "["
      for (offset, element) in elements.enumerated() {
        if offset > 0 { output += "," }
        write(element, into: &output)
      }
      output += "]"
    case .object(let members):
      output += "{"
      for (offset, key) in members.keys.sorted().enumerated() {
        if offset > 0 { output += "," }
        output += quoted(key)
        output += ":"
        write(members[key]!, into: &output)
      }
      output += "}"
    }
  }
}
