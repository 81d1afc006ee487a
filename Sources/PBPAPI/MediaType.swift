import DaemonSupport

/// The media type of a Content-Type header, without its parameters, in lower case
/// (`application/json; charset=utf-8` → `application/json`); nil without a header.
func mediaType(of contentType: String?) -> String? {
  guard let contentType else { return nil }
  let type = contentType.split(separator: ";", omittingEmptySubsequences: false).first ?? ""
  return type.trimmingWhitespace().lowercased()
}
