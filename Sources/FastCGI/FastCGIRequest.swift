import CFastCGI
import DaemonSupport
import Glibc

/// One FastCGI request on a ``FastCGIConnection``, read with libfcgi's
/// reentrant API, served by the thread that holds the connection (it is not
/// Sendable: libfcgi's request is not).
///
/// libfcgi reads the parameters and the body. Once the body has been read to
/// its end, the answer no longer needs libfcgi: ``detach()`` frees its buffers
/// (about 17 KB a request) and hands over a ``ParkedRequest``, the connection
/// and request id that a parked poll holds, which any thread may answer.
public final class FastCGIRequest {
  /// libfcgi's request (the connection's), until this request is over.
  private var raw: UnsafeMutablePointer<FCGX_Request>?
  private let connection: FastCGIConnection
  private var outcome: FastCGIConnection.Outcome?
  /// Whether stdin has been read to its end (then what follows on the
  /// connection is the next request, and the answer may bypass libfcgi).
  private var bodyConsumed = false
  /// The connection to nginx.
  public let socket: Int32
  private let requestID: UInt16

  /// Call once per process, after installing signal handling, before any accept.
  public static func initializeLibrary() -> Bool {
    FCGX_Init() == 0
  }

  init(raw: UnsafeMutablePointer<FCGX_Request>, connection: FastCGIConnection) {
    self.raw = raw
    self.connection = connection
    socket = raw.pointee.ipcFd
    requestID = UInt16(truncatingIfNeeded: raw.pointee.requestId)
  }

  /// Whether nginx asked to keep the connection after this request (FCGI_KEEP_CONN).
  private var keepAsked: Bool { raw.map { $0.pointee.keepConnection != 0 } ?? false }

  /// Ends the request if its handler did not (closing the connection) and
  /// says what is left of the connection.
  func end() -> FastCGIConnection.Outcome {
    if outcome == nil { finish() }
    return outcome ?? .closed
  }

  /// A CGI parameter (REQUEST_METHOD, DOCUMENT_URI, QUERY_STRING, …); nil after ``detach()``.
  public func parameter(_ name: String) -> String? {
    guard let raw, let value = FCGX_GetParam(name, raw.pointee.envp) else { return nil }
    return String(cString: value)
  }

  /// Frees libfcgi's buffers and parameters and hands the connection over,
  /// for a request that will wait; this request is then finished. Only once
  /// the body has been read to its end (nil otherwise, and nothing changes).
  public func detach(keeper: any ConnectionKeeper) -> ParkedRequest? {
    guard bodyConsumed, outcome == nil, let raw else { return nil }
    let keep = keepAsked
    FCGX_Free(raw, 0)
    self.raw = nil
    outcome = .parked
    return ParkedRequest(connection: connection, requestID: requestID, keepAsked: keep, keeper: keeper)
  }

  public enum BodyError: Error, Equatable, Sendable {
    case tooLarge(limit: Int)
    case readFailed
    /// The stream ended (or the connection broke) before the declared length.
    case truncated(declared: Int, received: Int)
  }

  /// Reads the whole request body, refusing more than `limit` bytes. A body
  /// is complete only when its stream ended cleanly with exactly
  /// CONTENT_LENGTH bytes: libfcgi reports a connection that broke mid-body as
  /// an end of stream too, and only its error state tells them apart.
  public func readBody(limit: Int) throws(BodyError) -> [UInt8] {
    guard let raw else { return [] }
    var body: [UInt8] = []
    let declared = parameter("CONTENT_LENGTH").flatMap { $0.isEmpty ? nil : Int($0) }
    if let declared, declared > limit { throw .tooLarge(limit: limit) }
    // Sized by the declared length (nginx declares it), plus one byte to see the end.
    var chunk = [CChar](repeating: 0, count: min(max(declared ?? 16 * 1024, 0), 16 * 1024) + 1)
    while true {
      let count = FCGX_GetStr(&chunk, Int32(chunk.count), raw.pointee.in)
      if count < 0 { throw .readFailed }
      if count == 0 { break }
      chunk.withUnsafeBytes { body.append(contentsOf: $0.prefix(Int(count))) }
      if body.count > limit { throw .tooLarge(limit: limit) }
    }
    let broken = FCGX_GetError(raw.pointee.in) != 0
    bodyConsumed = !broken && FCGX_HasSeenEOF(raw.pointee.in) != 0
    if broken || (declared.map { $0 != body.count } ?? false) {
      throw .truncated(declared: declared ?? body.count, received: body.count)
    }
    return body
  }

  /// Writes a complete response and finishes the request. Returns false when
  /// the peer is gone (nothing else to do: the request is finished either way).
  @discardableResult
  public func respond(status: Int, reason: String, headers: [(String, String)], body: [UInt8]) -> Bool {
    precondition(outcome == nil, "a request is answered once")
    let head = FastCGIRecords.cgiHead(status: status, reason: reason, headers: headers, contentLength: body.count)
    guard bodyConsumed, let raw else {
      // nginx may still be sending a body we refused: libfcgi's close drains
      // it first, so that nginx reads our answer instead of an error. The
      // connection is not kept: the rest of the body would be read as the
      // next request.
      var ok = writeThroughLibrary(head)
      if ok && !body.isEmpty { ok = writeThroughLibrary(body) }
      if let raw = self.raw {
        _ = FCGX_FClose(raw.pointee.err)
        _ = FCGX_FClose(raw.pointee.out)
        FCGX_Free(raw, 1)
        self.raw = nil
      }
      outcome = .closed
      return ok
    }
    let sent = FastCGIRecords.write(requestID: requestID, head: head, body: body) {
      SocketWrite.write(socket, $0) == .complete
    }
    guard sent else {
      finish()
      return false
    }
    // Our own records ended the request: libfcgi's buffers go, the descriptor stays.
    let keep = keepAsked
    FCGX_Free(raw, 0)
    self.raw = nil
    outcome = .open(keepAsked: keep)
    return true
  }

  private func writeThroughLibrary(_ bytes: [UInt8]) -> Bool {
    guard let raw else { return false }
    return bytes.withUnsafeBytes { buffer in
      FCGX_PutStr(buffer.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(buffer.count), raw.pointee.out)
        == Int32(buffer.count)
    }
  }

  /// Closes the connection without an answer (the client went away). With
  /// stdin read to the end a plain close suffices (libfcgi would otherwise
  /// wait up to 2 s for nginx to close first).
  public func finish() {
    guard outcome == nil else { return }
    outcome = .closed
    guard let raw else { return }
    if bodyConsumed {
      FCGX_Free(raw, 0)
      close(raw.pointee.ipcFd)
    } else {
      // As libfcgi's finish, but never keeping the connection: the end of
      // the stream, then a close that drains what nginx still sends.
      _ = FCGX_FClose(raw.pointee.err)
      _ = FCGX_FClose(raw.pointee.out)
      FCGX_Free(raw, 1)
    }
    self.raw = nil
  }
}
