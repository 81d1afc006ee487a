import DaemonSupport

/// A request as the API sees it, independent of FastCGI.
public struct APIRequest: Sendable {
  public var method: String
  /// The path below the API prefix's root, e.g. `/api/testtype/5`, percent-decoded (nginx's DOCUMENT_URI).
  public var path: String
  public var query: [(String, String)]
  public var contentType: String?
  public var body: [UInt8]
  public var headers: [String: String]

  public init(
    method: String, path: String, query: [(String, String)] = [], contentType: String? = nil,
    body: [UInt8] = [], headers: [String: String] = [:]
  ) {
    self.method = method
    self.path = path
    self.query = query
    self.contentType = contentType
    self.body = body
    self.headers = headers
  }

  /// Whether the client sent the validator collections honour: If-None-Match.
  /// If-Modified-Since is ignored (RFC 9110 lets a server): Last-Modified has a
  /// resolution of a second and follows statement time, not commit order, so
  /// a copy can lack a write and still carry the current date, and a 304 to
  /// it would hand out the current cursor for that copy.
  var isConditional: Bool { headers["if-none-match"] != nil }

  /// Whether the client's copy is current: If-None-Match names the ETag (or `*`).
  func isFresh(_ stamp: TableResource.Stamp) -> Bool {
    guard let tags = headers["if-none-match"] else { return false }
    return tags.split(separator: ",").contains { tag in
      let trimmed = tag.trimmingWhitespace()
      return trimmed == "*" || trimmed == stamp.etag || trimmed == "W/" + stamp.etag
    }
  }

  public func queryValue(_ name: String) -> String? {
    query.first { $0.0 == name }?.1
  }
}
