import DaemonSupport
import Glibc
import Synchronization

/// A request whose answer waits (a parked long-poll): what is left of a
/// ``FastCGIRequest`` once its body was read, the connection and the request
/// id, with none of libfcgi's buffers. The answer goes out as FastCGI records
/// of our own in one write; then the connection is closed.
///
/// Sendable: its fields never change, and whichever thread takes it out of the
/// parking lot answers or abandons it; `isClosed` makes sure the connection is
/// closed once whatever happens.
public final class ParkedRequest: Sendable {
  /// The connection to nginx.
  public let socket: Int32
  private let requestID: UInt16
  private let isClosed = Atomic<Bool>(false)

  init(socket: Int32, requestID: UInt16) {
    self.socket = socket
    self.requestID = requestID
  }

  deinit { close() }

  /// Writes a complete response and closes the connection. Returns false when
  /// the peer is gone (nothing else to do: the request is over either way).
  @discardableResult
  public func respond(status: Int, reason: String, headers: [(String, String)], body: [UInt8]) -> Bool {
    let head = FastCGIRecords.cgiHead(status: status, reason: reason, headers: headers, contentLength: body.count)
    let sent = FastCGIRecords.write(requestID: requestID, head: head, body: body) {
      SocketWrite.write(socket, $0) == .complete
    }
    close()
    return sent
  }

  /// The client went away: close without an answer.
  public func abandon() {
    close()
  }

  private func close() {
    guard !isClosed.exchange(true, ordering: .acquiringAndReleasing) else { return }
    _ = Glibc.close(socket)
  }
}
