import DaemonSupport

/// The media type of a Content-Type header, without its parameters and the
/// whitespace around it, in lower case (`application/json; charset=utf-8` →
/// `application/json`); nil without a header, or for one that is empty.
/// Separators before the type are skipped (`;application/json` is
/// `application/json`), as they always were. Media types are ASCII (RFC
/// 9110), so only ASCII letters are lowered: this runs for every poll, and
/// byte work spares the Unicode machinery.
func mediaType(of contentType: String?) -> String? {
  guard let contentType else { return nil }
  let bytes = contentType.utf8
  let separator = UInt8(ascii: ";")
  guard let start = bytes.firstIndex(where: { $0 != separator }) else { return nil }
  let end = bytes[start...].firstIndex(of: separator) ?? bytes.endIndex
  let type = contentType[start..<end].trimmingWhitespace()
  let isUpper = { (byte: UInt8) in byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") }
  guard type.utf8.contains(where: isUpper) else { return type }
  return String(decoding: type.utf8.map { isUpper($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
}
