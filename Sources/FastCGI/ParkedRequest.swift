import DaemonSupport
import Glibc
import Synchronization

/// A request whose answer waits (a parked long-poll): what is left of a
/// ``FastCGIRequest`` once its body was read, its connection and request id,
/// with none of libfcgi's buffers. The answer goes out as FastCGI records of
/// our own in one write; then the connection goes back to the worker's
/// ``ConnectionKeeper``, which keeps it if nginx asked to, or closes it.
///
/// Sendable: its fields never change, and whichever thread takes it out of the
/// parking lot answers or abandons it; `isOver` makes sure the connection is
/// handed on once whatever happens.
public final class ParkedRequest: Sendable {
  public let connection: FastCGIConnection
  private let requestID: UInt16
  private let keepAsked: Bool
  private let isOver = Atomic<Bool>(false)
  /// Takes the connection after an answer written cleanly (nginx may send the next request on it).
  private let keeper: any ConnectionKeeper

  init(connection: FastCGIConnection, requestID: UInt16, keepAsked: Bool, keeper: any ConnectionKeeper) {
    self.connection = connection
    self.requestID = requestID
    self.keepAsked = keepAsked
    self.keeper = keeper
  }

  deinit { abandon() }

  /// The connection to nginx.
  public var socket: Int32 { connection.socket }

  /// Whether the connection may outlive the answer (nginx set the keep flag).
  public var mayKeepConnection: Bool { keepAsked }

  /// Writes a complete response, then hands the connection on (or closes
  /// it). Returns false when the peer is gone (the request is over either way).
  @discardableResult
  public func respond(status: Int, reason: String, headers: [(String, String)], body: [UInt8]) -> Bool {
    respond(encoded: EncodedResponse(status: status, reason: reason, headers: headers, body: body))
  }

  /// The same with a response encoded once for many polls: nginx's
  /// requests (id 1) get its records as they are.
  @discardableResult
  public func respond(encoded response: EncodedResponse) -> Bool {
    guard !isOver.exchange(true, ordering: .acquiringAndReleasing) else { return false }
    let sent = connection.write { socket in
      if requestID == EncodedResponse.sharedRequestID {
        return response.recordsOfRequestOne.withUnsafeBytes { SocketWrite.write(socket, $0) == .complete }
      }
      return FastCGIRecords.write(requestID: requestID, head: response.head, body: response.body) {
        SocketWrite.write(socket, $0) == .complete
      }
    }
    if sent {
      keeper.requestEnded(on: connection, keepAsked: keepAsked)
    } else {
      connection.close()
    }
    return sent
  }

  /// The client went away: close without an answer.
  public func abandon() {
    guard !isOver.exchange(true, ordering: .acquiringAndReleasing) else { return }
    connection.close()
  }
}

/// Whoever decides what becomes of a connection whose request is over and
/// whose answer was written cleanly: the worker's set of idle connections.
public protocol ConnectionKeeper: AnyObject, Sendable {
  /// `keepAsked`: nginx set the keep flag on the request. The keeper owns
  /// the connection from here (it closes it or watches it).
  func requestEnded(on connection: FastCGIConnection, keepAsked: Bool)
}
