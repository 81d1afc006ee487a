import ChangePublisher
import DaemonSupport
import Glibc

/// One connected stream client (a pbp-fcgi worker process): its socket,
/// driven by its ``StreamClientStateMachine``. Every method reports whether
/// the connection stays open; a closed one is the server's to forget.
final class StreamClientConnection {
  enum Status: Equatable {
    case open
    case finished(reason: String)
  }

  let fd: Int32
  private var machine: StreamClientStateMachine
  private let log: Log

  init(fd: Int32, bufferLimit: Int, log: Log) {
    self.fd = fd
    self.machine = StreamClientStateMachine(bufferLimit: bufferLimit)
    self.log = log
  }

  /// Whether to poll the socket for room to write.
  var wantsToWrite: Bool { machine.wantsToWrite }

  /// The socket has input (or hung up).
  func readAvailable(history: ChangeHistory) -> Status {
    var chunk = [UInt8](repeating: 0, count: 4096)
    let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
    if count == 0 { return .finished(reason: "disconnected") }
    if count < 0 {
      return errno == EAGAIN || errno == EINTR ? .open : .finished(reason: "read failed")
    }
    return perform(machine.received(chunk[0..<count], history: history), history: history)
  }

  /// The socket has room: write what is queued, then catch up from the ring
  /// as long as the socket keeps taking it.
  func writeAvailable(history: ChangeHistory) -> Status {
    while true {
      let outcome = machine.output.pending.withUnsafeBytes { SocketWrite.write(fd, $0) }
      switch outcome {
      case .complete:
        machine.wrote(machine.output.pendingByteCount)
      case .wouldBlock(let written):
        machine.wrote(written)
        return .open
      case .failed:
        return .finished(reason: "write failed")
      }
      switch machine.outputDrained(history: history) {
      case .drop(let reason): return .finished(reason: reason.description)
      case .write, .greeted: continue
      case .none: return .open
      }
    }
  }

  func epochStarted(history: ChangeHistory) -> Status {
    perform(machine.epochStarted(history: history), history: history)
  }

  func eventsAppended(_ events: [StoredEvent], history: ChangeHistory) -> Status {
    perform(machine.eventsAppended(events), history: history)
  }

  func close() {
    Glibc.close(fd)
  }

  private func perform(_ action: StreamClientStateMachine.Action, history: ChangeHistory) -> Status {
    switch action {
    case .none:
      return .open
    case .drop(let reason):
      return .finished(reason: reason.description)
    case .greeted(let from, let resumed):
      log.debug(
        "subscriber \(fd) greeted at \(from) (newest \(history.ring.newestPosition)), \(resumed ? "resuming" : "reset")"
      )
      return writeAvailable(history: history)
    case .write:
      return writeAvailable(history: history)
    }
  }
}
