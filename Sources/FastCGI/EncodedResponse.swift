/// A response encoded once for many requests: the CGI head and the body, and
/// the whole records for request id 1 (the id nginx gives every request), so
/// that a fan-out writes the same bytes to each of its polls and renders
/// nothing per poll. A request of another id is encoded for it when written.
public struct EncodedResponse: Sendable {
  public let head: [UInt8]
  public let body: [UInt8]
  /// The records of request 1: head, body, end of stream, end of request.
  let recordsOfRequestOne: [UInt8]
  static let sharedRequestID: UInt16 = 1

  public init(status: Int, reason: String, headers: [(String, String)], body: [UInt8]) {
    head = FastCGIRecords.cgiHead(status: status, reason: reason, headers: headers, contentLength: body.count)
    self.body = body
    recordsOfRequestOne = FastCGIRecords.response(requestID: Self.sharedRequestID, head: head, body: body)
  }
}
