import ChangeStream
import Glibc

/// One connected worker process, as notifyd sees it.
struct Subscriber {
  var decoder = StreamFrameDecoder()
  var output: [UInt8] = []
  var outputOffset = 0
  /// What a HELLO asked for.
  struct Hello {
    let resumeFrom: Cursor?
    let history: UInt32
  }

  /// The HELLO, kept until an epoch exists to answer it with.
  var pendingHello: Hello?
  var isGreeted = false
  /// While catching up from the ring: the next sequence number to send.
  /// Catch-up is paced by the socket, so it never counts against the buffer limit.
  var replayNext: UInt64?

  var isLive: Bool { isGreeted && replayNext == nil }

  var hasSaidHello: Bool { pendingHello != nil || isGreeted }
  var hasPendingOutput: Bool { outputOffset < output.count }
  var pendingByteCount: Int { output.count - outputOffset }

  /// Writes as much as the socket takes; returns true when the socket failed.
  mutating func writePending(to fd: Int32) -> Bool {
    while outputOffset < output.count {
      let written = output.withUnsafeBytes {
        send(fd, $0.baseAddress! + outputOffset, $0.count - outputOffset, Int32(MSG_NOSIGNAL))
      }
      if written < 0 {
        if errno == EINTR { continue }
        return errno != EAGAIN
      }
      outputOffset += written
    }
    output.removeAll(keepingCapacity: output.capacity <= 1 << 20)
    outputOffset = 0
    return false
  }
}
