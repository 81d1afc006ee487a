/// The records that carry a response to the web server (FastCGI 1.0, section
/// 3.3): the CGI response as FCGI_STDOUT records of at most 65,535 bytes, an
/// empty FCGI_STDOUT that ends the stream, and FCGI_END_REQUEST.
///
/// libfcgi does the same through its 8 KB stream buffers; encoding the records
/// here lets a request drop those buffers while it waits (a parked poll keeps
/// only its descriptor and request id) and leaves in a single write, or in
/// pieces of about a megabyte for a large body (a collection page), so that
/// the body is not held twice, as itself and as its records.
public enum FastCGIRecords {
  static let version: UInt8 = 1
  static let stdoutType: UInt8 = 6
  static let endRequestType: UInt8 = 3
  static let stderrType: UInt8 = 7
  static let maximumContentLength = 65_535

  /// The CGI response head (status line and headers) that starts the stdout stream.
  static func cgiHead(status: Int, reason: String, headers: [(String, String)], contentLength: Int) -> [UInt8] {
    var head = "Status: \(status) \(reason)\r\n"
    for (name, value) in headers { head += "\(name): \(value)\r\n" }
    head += "Content-Length: \(contentLength)\r\n\r\n"
    return Array(head.utf8)
  }

  /// The whole response for request `requestID`: `head` then `body` as the
  /// stdout stream, then the end of the request with application status 0.
  public static func response(requestID: UInt16, head: [UInt8], body: [UInt8]) -> [UInt8] {
    var records: [UInt8] = []
    records.reserveCapacity(head.count + body.count + 8 * ((head.count + body.count) / maximumContentLength + 3) + 8)
    _ = write(requestID: requestID, head: head, body: body, piecesUpTo: .max) { piece in
      records.append(contentsOf: piece)
      return true
    }
    return records
  }

  /// The same records, handed to `send` in pieces of about `piecesUpTo`
  /// bytes (whole records, one at least), so that a large body is not copied
  /// whole into its records before it leaves. Stops when `send` returns
  /// false; whether every piece was sent.
  public static func write(
    requestID: UInt16, head: [UInt8], body: [UInt8], piecesUpTo pieceBytes: Int = 1 << 20,
    send: (UnsafeRawBufferPointer) -> Bool
  ) -> Bool {
    // What the records of the whole response take (a stdout header per
    // 65,535 bytes, the empty stdout, the end of the request), or a piece
    // and the one record that may overflow it: a small answer (every
    // delivered poll) reserves what it needs, not 64 KB, which cost a large
    // allocation per answer (malloc_consolidate and page faults in perf).
    let content = head.count + body.count
    let stdoutRecords = (content + maximumContentLength - 1) / maximumContentLength
    let whole = content + 8 * stdoutRecords + 8 + 16
    var piece: [UInt8] = []
    piece.reserveCapacity(whole <= pieceBytes ? whole : min(whole, pieceBytes + 8 + maximumContentLength))
    func flush() -> Bool {
      defer { piece.removeAll(keepingCapacity: true) }
      return piece.isEmpty || piece.withUnsafeBytes(send)
    }
    var remainingHead = head[...]
    var remainingBody = body[...]
    while !remainingHead.isEmpty || !remainingBody.isEmpty {
      let fromHead = min(remainingHead.count, maximumContentLength)
      let fromBody = min(remainingBody.count, maximumContentLength - fromHead)
      if !piece.isEmpty && piece.count + 8 + fromHead + fromBody > pieceBytes {
        guard flush() else { return false }
      }
      appendHeader(to: &piece, type: stdoutType, requestID: requestID, contentLength: fromHead + fromBody)
      piece.append(contentsOf: remainingHead.prefix(fromHead))
      piece.append(contentsOf: remainingBody.prefix(fromBody))
      remainingHead = remainingHead.dropFirst(fromHead)
      remainingBody = remainingBody.dropFirst(fromBody)
    }
    appendHeader(to: &piece, type: stdoutType, requestID: requestID, contentLength: 0)
    appendHeader(to: &piece, type: endRequestType, requestID: requestID, contentLength: 8)
    // appStatus (4 bytes, 0), protocolStatus FCGI_REQUEST_COMPLETE (0), 3 reserved.
    piece.append(contentsOf: [0, 0, 0, 0, 0, 0, 0, 0])
    return flush()
  }

  /// What a worker that stops sends on an idle kept connection instead of
  /// closing it: an empty FCGI_STDERR record of the connection's last
  /// request. nginx closes a kept connection on which anything arrives while
  /// it is idle; a request nginx sent on it meanwhile reads it, at the head of
  /// its response, as an empty stderr stream and skips it. (Closing the
  /// connection ourselves could break a request nginx is sending just then.)
  public static func release(requestID: UInt16) -> [UInt8] {
    var record: [UInt8] = []
    appendHeader(to: &record, type: stderrType, requestID: requestID, contentLength: 0)
    return record
  }

  private static func appendHeader(to records: inout [UInt8], type: UInt8, requestID: UInt16, contentLength: Int) {
    records.append(contentsOf: [
      version, type, UInt8(requestID >> 8), UInt8(requestID & 0xFF),
      UInt8(contentLength >> 8), UInt8(contentLength & 0xFF), 0, 0,
    ])
  }
}
