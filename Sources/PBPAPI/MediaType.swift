import DaemonSupport

/// The media type of a Content-Type header, without its parameters and the
/// whitespace around it, in lower case (`application/json; charset=utf-8` →
/// `application/json`); nil without a header, or for one that is empty.
func mediaType(of contentType: String?) -> String? {
  contentType?.split(separator: ";").first.map { $0.trimmingWhitespace().lowercased() }
}
