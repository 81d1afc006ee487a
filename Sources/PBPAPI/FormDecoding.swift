/// `application/x-www-form-urlencoded`, as in query strings and form bodies.
public enum FormDecoding {
  /// Splits `a=1&b=2`, decoding `+` and percent escapes. Rejects broken
  /// escapes, text that is not UTF-8, and NUL.
  public static func decode(_ text: Substring) throws(APIError) -> [(String, String)] {
    var pairs: [(String, String)] = []
    // Split on bytes: a combining mark after `&` or `=` would join it in one Character.
    for bytes in text.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
      let part = Substring(bytes)
      let name: Substring
      let value: Substring
      if let equals = part.utf8.firstIndex(of: UInt8(ascii: "=")) {
        name = part[..<equals]
        value = part[part.utf8.index(after: equals)...]
      } else {
        name = part
        value = ""
      }
      pairs.append((try percentDecode(name), try percentDecode(value)))
    }
    return pairs
  }

  public static func decode(_ bytes: [UInt8]) throws(APIError) -> [(String, String)] {
    guard let text = String(validating: bytes, as: UTF8.self) else {
      throw .badRequest("invalid_form", "the form body is not UTF-8")
    }
    return try decode(text[...])
  }

  static func percentDecode(_ text: Substring) throws(APIError) -> String {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.utf8.count)
    var iterator = text.utf8.makeIterator()
    while let byte = iterator.next() {
      switch byte {
      case UInt8(ascii: "+"): bytes.append(0x20)
      case UInt8(ascii: "%"):
        guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
          throw .badRequest("invalid_encoding", "a percent escape in the form or query string is broken")
        }
        bytes.append(high << 4 | low)
      default: bytes.append(byte)
      }
    }
    guard let decoded = String(validating: bytes, as: UTF8.self) else {
      throw .badRequest("invalid_encoding", "the form or query string does not decode to UTF-8")
    }
    // PostgreSQL text cannot hold NUL, and libpq would cut a parameter short at one.
    guard !bytes.contains(0) else {
      throw .badRequest("invalid_encoding", "the form or query string contains a NUL character (%00)")
    }
    return decoded
  }

  /// `text` as one query-string value: every byte but the unreserved ones
  /// (RFC 3986) percent-escaped, so that it decodes back exactly.
  static func percentEncoded(_ text: String) -> String {
    let hex = Array("0123456789ABCDEF".utf8)
    var bytes: [UInt8] = []
    for byte in text.utf8 {
      switch byte {
      case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
        UInt8(ascii: "~"):
        bytes.append(byte)
      default:
        bytes += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
      }
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  private static func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case 0x30...0x39: byte - 0x30
    case 0x41...0x46: byte - 0x41 + 10
    case 0x61...0x66: byte - 0x61 + 10
    default: nil
    }
  }
}
