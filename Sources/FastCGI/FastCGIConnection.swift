import CFastCGI
import DaemonSupport
import Glibc
import Synchronization

/// A connection from nginx, with the one libfcgi request it is read with for
/// its whole life. With nginx's keep flag (`fastcgi_keep_conn on`), a
/// request that ended cleanly leaves the descriptor open in that request, and
/// libfcgi's next accept on the *same* request reads the next request from it
/// instead of accepting (a fresh request per accept would orphan it).
///
/// Threading rule: one thread at a time serves the connection (the worker's
/// idle set hands it out once per readiness); the mutex makes that a rule the
/// compiler sees, and orders what one thread did before the next one reads.
public final class FastCGIConnection: Sendable {
  private let library: Mutex<LibraryRequest>
  private let descriptor: Atomic<Int32>
  /// The id of the request last read (nginx's is always 1), for the release record.
  private let lastRequestID = Atomic<UInt16>(1)

  /// Why an accept returned no connection.
  public struct AcceptError: Error, Sendable {
    public let code: Int32
  }

  /// What is left of the connection once a request on it is over.
  public enum Outcome: Sendable, Equatable {
    /// Answered, its body read to its end: open, and nginx may send the next
    /// request on it if it set the keep flag.
    case open(keepAsked: Bool)
    /// Closed (a broken request, a body left unread, a peer gone).
    case closed
    /// Waiting for a detached answer: the ``ParkedRequest`` holds it now.
    case parked
  }

  /// Accepts a connection on `listenSocket` and reads its first request's
  /// parameters (the listening socket is non-blocking: -EAGAIN when another
  /// thread took the connection).
  public static func accept(listenSocket: Int32) -> Result<FastCGIConnection, AcceptError> {
    let connection = FastCGIConnection(listenSocket: listenSocket)
    let code = connection.library.withLock { library in
      let code = library.acceptFirst()
      if code >= 0 { connection.descriptor.store(library.raw.pointee.ipcFd, ordering: .releasing) }
      return code
    }
    guard code >= 0 else { return .failure(AcceptError(code: code)) }
    return .success(connection)
  }

  private init(listenSocket: Int32) {
    descriptor = Atomic(-1)
    library = Mutex(LibraryRequest(listenSocket: listenSocket))
  }

  /// The descriptor to nginx (it changes only if libfcgi, failing to read a
  /// kept connection's next request, accepted another one in its place).
  public var socket: Int32 { descriptor.load(ordering: .acquiring) }

  /// Serves the connection's next request with `body`: the one read at
  /// accept, or the next one read now (call it only once the connection is
  /// readable: the read blocks). Nil when no request could be read (the
  /// connection is then closed). A request `body` leaves unanswered is closed.
  public func serve<Result: Sendable>(_ body: (FastCGIRequest) -> Result) -> (Result, Outcome)? {
    library.withLock { library -> (Result, Outcome)? in
      guard library.readRequest() else { return nil }
      descriptor.store(library.raw.pointee.ipcFd, ordering: .releasing)
      let request = FastCGIRequest(raw: library.raw, connection: self)
      lastRequestID.store(UInt16(truncatingIfNeeded: library.raw.pointee.requestId), ordering: .relaxed)
      let result = body(request)
      let outcome = request.end()
      library.hasRequest = false
      if outcome == .closed { library.isOpen = false }
      return (result, outcome)
    }
  }

  /// Asks nginx to drop the idle connection (a worker that stops): the
  /// release record of ``FastCGIRecords/release(requestID:)``. Not while a
  /// thread serves the connection (that request's end releases it again),
  /// and never waiting on a peer that does not read (the release then
  /// expires and the connection is closed). Whether it was written.
  @discardableResult
  public func release() -> Bool {
    let written = library.withLockIfAvailable { library -> Bool in
      guard library.isOpen else { return false }
      let record = FastCGIRecords.release(requestID: lastRequestID.load(ordering: .relaxed))
      return record.withUnsafeBytes { SocketWrite.write(library.raw.pointee.ipcFd, $0, waiting: false) == .complete }
    }
    return written ?? false
  }

  /// Writes on the connection while no other thread does: a detached answer,
  /// which a release on a connection just taken from the idle set could meet.
  func write(_ send: (Int32) -> Bool) -> Bool {
    library.withLock { library in
      guard library.isOpen else { return false }
      let fd = library.raw.pointee.ipcFd
      return send(fd)
    }
  }

  /// Closes the connection (idle, or after a detached answer). Once.
  public func close() {
    library.withLock { $0.close() }
  }
}

/// The libfcgi request a connection is read with, and whether it holds an
/// open descriptor and a request not yet served.
struct LibraryRequest: ~Copyable {
  let raw: UnsafeMutablePointer<FCGX_Request>
  var isOpen = false
  /// The request accept read and nobody served yet.
  var hasRequest = false

  init(listenSocket: Int32) {
    raw = .allocate(capacity: 1)
    // Never fails: it only fills in the structure.
    _ = FCGX_InitRequest(raw, listenSocket, 0)
  }

  /// Accepts a connection and reads its first request's parameters.
  mutating func acceptFirst() -> Int32 {
    let code = FCGX_Accept_r(raw)
    guard code >= 0 else {
      FCGX_Free(raw, 1)
      return code
    }
    isOpen = true
    hasRequest = true
    return code
  }

  /// Reads the next request on the open connection unless one is waiting.
  mutating func readRequest() -> Bool {
    guard isOpen else { return false }
    if hasRequest { return true }
    // libfcgi finishes the previous request (its buffers are freed already,
    // the descriptor is kept) and reads from the kept descriptor.
    guard FCGX_Accept_r(raw) >= 0 else {
      // It closed the descriptor (and found no other connection to accept).
      isOpen = false
      return false
    }
    hasRequest = true
    return true
  }

  mutating func close() {
    guard isOpen else { return }
    isOpen = false
    FCGX_Free(raw, 0)
    _ = Glibc.close(raw.pointee.ipcFd)
  }

  deinit {
    if isOpen {
      FCGX_Free(raw, 0)
      _ = Glibc.close(raw.pointee.ipcFd)
    }
    raw.deallocate()
  }
}
