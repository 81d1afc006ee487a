import CFastCGI
import Glibc

/// One FastCGI request, accepted with libfcgi's reentrant API.
///
/// Threading rule: exactly one thread owns a request at a time. The accepting
/// thread owns it first; a parked request is owned by whatever holds it under
/// the parking lot's lock, and whoever takes it out answers it. After
/// ``finish()`` the request is inert. Hence `@unchecked Sendable`.
public final class FastCGIRequest: @unchecked Sendable {
  private let raw: UnsafeMutablePointer<FCGX_Request>
  private var isFinished = false
  /// Whether stdin has been read to its end (then finishing may simply close the socket).
  private var bodyConsumed = false

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
  }

  deinit {
    if !isFinished { finish() }
    raw.deallocate()
  }

  /// The connection to nginx; readable while parked only when nginx closed it.
  public var socket: Int32 { raw.pointee.ipcFd }

  /// A CGI parameter (REQUEST_METHOD, DOCUMENT_URI, QUERY_STRING, …).
  public func parameter(_ name: String) -> String? {
    guard let value = FCGX_GetParam(name, raw.pointee.envp) else { return nil }
    return String(cString: value)
  }

  public enum BodyError: Error, Sendable {
    case tooLarge(limit: Int)
    case readFailed
  }

  /// Reads the whole request body, refusing more than `limit` bytes.
  public func readBody(limit: Int) throws(BodyError) -> [UInt8] {
    var body: [UInt8] = []
    if let declared = parameter("CONTENT_LENGTH").flatMap(Int.init), declared > limit {
      throw .tooLarge(limit: limit)
    }
    var chunk = [CChar](repeating: 0, count: 16 * 1024)
    while true {
      let count = FCGX_GetStr(&chunk, Int32(chunk.count), raw.pointee.in)
      if count < 0 { throw .readFailed }
      if count == 0 { break }
      chunk.withUnsafeBytes { body.append(contentsOf: $0.prefix(Int(count))) }
      if body.count > limit { throw .tooLarge(limit: limit) }
    }
    bodyConsumed = FCGX_HasSeenEOF(raw.pointee.in) != 0
    return body
  }

  /// Writes a complete response and finishes the request. Returns false when
  /// the peer is gone (nothing else to do: the request is finished either way).
  @discardableResult
  public func respond(status: Int, reason: String, headers: [(String, String)], body: [UInt8]) -> Bool {
    precondition(!isFinished, "a request is answered once")
    var head = "Status: \(status) \(reason)\r\n"
    for (name, value) in headers { head += "\(name): \(value)\r\n" }
    head += "Content-Length: \(body.count)\r\n\r\n"
    var ok = write(Array(head.utf8))
    if ok && !body.isEmpty { ok = write(body) }
    finish()
    return ok
  }

  private func write(_ bytes: [UInt8]) -> Bool {
    bytes.withUnsafeBytes { buffer in
      FCGX_PutStr(buffer.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(buffer.count), raw.pointee.out)
        == Int32(buffer.count)
    }
  }

  /// Flushes and closes. With stdin read to the end, a plain close suffices
  /// (libfcgi would otherwise wait up to 2 s for nginx to close first).
  public func finish() {
    guard !isFinished else { return }
    isFinished = true
    if bodyConsumed { raw.pointee.detached = 1 }
    FCGX_Finish_r(raw)
  }
}
