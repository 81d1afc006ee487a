/// The media type of a Content-Type header, without its parameters, in lower case
/// (`application/json; charset=utf-8` → `application/json`); nil without a header.
func mediaType(of contentType: String?) -> String? {
  guard let contentType else { return nil }
  let type = contentType.split(separator: ";", omittingEmptySubsequences: false).first ?? ""
  return type.trimmingSpaces().lowercased()
}

extension StringProtocol {
  /// Without the spaces and tabs HTTP allows around a value.
  func trimmingSpaces() -> String {
    let isSpace = { (character: Character) in character == " " || character == "\t" }
    return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
  }
}
