import Glibc

/// The one way PBP writes bytes to a socket: as much as it takes, retrying
/// interrupted calls, never raising SIGPIPE. A blocking socket takes all or
/// fails; a non-blocking one may stop early, and the caller keeps the rest.
public enum SocketWrite {
  public enum Outcome: Equatable, Sendable {
    /// Everything was written.
    case complete
    /// A non-blocking socket is full; `written` bytes went out.
    case wouldBlock(written: Int)
    /// The peer is gone or the socket failed (errno); `written` bytes went out first.
    case failed(written: Int, code: Int32)
  }

  /// `waiting: false` treats a blocking socket as a non-blocking one for this write.
  public static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, waiting: Bool = true) -> Outcome {
    let flags = Int32(MSG_NOSIGNAL) | (waiting ? 0 : Int32(MSG_DONTWAIT))
    var offset = 0
    while offset < bytes.count {
      let sent = send(fd, bytes.baseAddress! + offset, bytes.count - offset, flags)
      if sent < 0 {
        let code = errno
        if code == EINTR { continue }
        if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock(written: offset) }
        return .failed(written: offset, code: code)
      }
      offset += sent
    }
    return .complete
  }

  /// Writes all of `bytes` to a blocking socket.
  public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(SystemError) {
    let outcome = bytes.withUnsafeBytes { write(fd, $0) }
    switch outcome {
    case .complete: return
    case .wouldBlock: throw SystemError("send", code: EAGAIN)
    case .failed(_, let code): throw SystemError("send", code: code)
    }
  }
}
