import CFastCGI
import DaemonSupport
import Glibc

/// One FastCGI request, accepted with libfcgi's reentrant API, owned by the
/// thread that accepted it (it is not Sendable: libfcgi's request is not).
///
/// libfcgi reads the parameters and the body. Once the body has been read to
/// its end, the answer no longer needs libfcgi: ``detach()`` frees its buffers
/// (about 17 KB a request) and hands over a ``ParkedRequest``, the descriptor
/// and request id that a parked poll holds, which any thread may answer.
public final class FastCGIRequest {
  /// libfcgi's request, until detached or finished.
  private var raw: UnsafeMutablePointer<FCGX_Request>?
  private var isFinished = false
  /// Whether stdin has been read to its end (then finishing may simply close the socket).
  private var bodyConsumed = false
  /// The connection to nginx.
  public let socket: Int32
  private let requestID: UInt16

  /// Call once per process, after installing signal handling, before any accept.
  public static func initializeLibrary() -> Bool {
    FCGX_Init() == 0
  }

  /// Why an accept returned no request.
  public struct AcceptError: Error, Sendable {
    public let code: Int32
  }

  /// Blocks until nginx sends a request on `listenSocket`. A fresh request
  /// every time: libfcgi's accept first finishes whatever a request held.
  public static func accept(listenSocket: Int32) -> Result<FastCGIRequest, AcceptError> {
    let raw = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
    guard FCGX_InitRequest(raw, listenSocket, 0) == 0 else {
      raw.deallocate()
      return .failure(AcceptError(code: -1))
    }
    let code = FCGX_Accept_r(raw)
    guard code >= 0 else {
      FCGX_Free(raw, 1)
      raw.deallocate()
      return .failure(AcceptError(code: code))
    }
    return .success(FastCGIRequest(raw: raw))
  }

  private init(raw: UnsafeMutablePointer<FCGX_Request>) {
    self.raw = raw
    socket = raw.pointee.ipcFd
    requestID = UInt16(truncatingIfNeeded: raw.pointee.requestId)
  }

  deinit {
    if !isFinished { finish() }
  }

  /// A CGI parameter (REQUEST_METHOD, DOCUMENT_URI, QUERY_STRING, …); nil after ``detach()``.
  public func parameter(_ name: String) -> String? {
    guard let raw, let value = FCGX_GetParam(name, raw.pointee.envp) else { return nil }
    return String(cString: value)
  }

  /// Frees libfcgi's buffers and parameters and hands the connection over,
  /// for a request that will wait; this request is then finished. Only once
  /// the body has been read to its end (nil otherwise, and nothing changes).
  public func detach() -> ParkedRequest? {
    guard bodyConsumed, !isFinished, let raw else { return nil }
    FCGX_Free(raw, 0)
    raw.deallocate()
    self.raw = nil
    isFinished = true
    return ParkedRequest(socket: socket, requestID: requestID)
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
    precondition(!isFinished, "a request is answered once")
    let head = FastCGIRecords.cgiHead(status: status, reason: reason, headers: headers, contentLength: body.count)
    guard bodyConsumed else {
      // nginx may still be sending a body we refused: libfcgi's finish drains
      // it before closing, so that nginx reads our answer instead of an error.
      var ok = writeThroughLibrary(head)
      if ok && !body.isEmpty { ok = writeThroughLibrary(body) }
      finish()
      return ok
    }
    let sent = FastCGIRecords.write(requestID: requestID, head: head, body: body) {
      SocketWrite.write(socket, $0) == .complete
    }
    finish()
    return sent
  }

  private func writeThroughLibrary(_ bytes: [UInt8]) -> Bool {
    guard let raw else { return false }
    return bytes.withUnsafeBytes { buffer in
      FCGX_PutStr(buffer.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(buffer.count), raw.pointee.out)
        == Int32(buffer.count)
    }
  }

  /// Closes the connection without an answer (the client went away), or
  /// after one. With stdin read to the end a plain close suffices (libfcgi
  /// would otherwise wait up to 2 s for nginx to close first).
  public func finish() {
    guard !isFinished else { return }
    isFinished = true
    guard let raw else {
      close(socket)
      return
    }
    if bodyConsumed {
      FCGX_Free(raw, 0)
      close(socket)
    } else {
      FCGX_Finish_r(raw)
    }
    raw.deallocate()
    self.raw = nil
  }
}
