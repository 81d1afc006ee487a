import DaemonSupport

/// The media type of a Content-Type header, without its parameters and the
/// whitespace around it, in lower case (`application/json; charset=utf-8` →
/// `application/json`); nil without a header, or for one that is empty.
/// Media types are ASCII (RFC 9110), so only ASCII letters are lowered:
/// this runs for every poll, and byte work spares the Unicode machinery.
func mediaType(of contentType: String?) -> String? {
  guard let contentType, !contentType.isEmpty else { return nil }
  let end = contentType.utf8.firstIndex(of: UInt8(ascii: ";")) ?? contentType.endIndex
  let type = contentType[..<end].trimmingWhitespace()
  let isUpper = { (byte: UInt8) in byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") }
  guard type.utf8.contains(where: isUpper) else { return type }
  return String(decoding: type.utf8.map { isUpper($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
}
