extension StringProtocol {
  /// Without the spaces, tabs and line ends around it: configuration values,
  /// header values, libpq's messages. Judged by byte: the four are ASCII, so
  /// no trimmed byte is part of a longer scalar, and "\r\n" (one Character)
  /// or a space a combining mark joins is still trimmed.
  public func trimmingWhitespace() -> String {
    let isWhitespace = { (byte: UInt8) in
      byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
        || byte == UInt8(ascii: "\n")
    }
    let bytes = utf8
    guard let first = bytes.firstIndex(where: { !isWhitespace($0) }) else { return "" }
    // A StringProtocol's UTF8View is not bidirectional: the last one by a forward scan.
    var last = first
    var index = first
    while index < bytes.endIndex {
      if !isWhitespace(bytes[index]) { last = index }
      bytes.formIndex(after: &index)
    }
    return String(self[first...last])
  }
}
