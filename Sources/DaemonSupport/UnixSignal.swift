import CSystemShim
import Glibc

/// The signals the daemons use, typed: SIGTERM and SIGINT stop, SIGHUP
/// reloads, SIGCHLD reaps, SIGUSR1 tells the pool's master that a worker
/// accepts, SIGKILL ends a worker that would not stop, SIGPIPE is ignored (a write to a vanished peer
/// returns EPIPE instead of killing the process).
public enum UnixSignal: Int32, Sendable, CaseIterable, CustomStringConvertible {
  case hangup = 1
  case interrupt = 2
  case kill = 9
  case userDefined1 = 10
  case pipe = 13
  case terminate = 15
  case child = 17

  public var description: String {
    switch self {
    case .hangup: "SIGHUP"
    case .interrupt: "SIGINT"
    case .kill: "SIGKILL"
    case .userDefined1: "SIGUSR1"
    case .pipe: "SIGPIPE"
    case .terminate: "SIGTERM"
    case .child: "SIGCHLD"
    }
  }

  /// The process ignores `signal` from now on (and children inherit that until they exec).
  public static func ignore(_ signal: UnixSignal) {
    Glibc.signal(signal.rawValue, SIG_IGN)
  }

  /// Blocks `signals` in the calling thread and every thread it starts later,
  /// so that they are only ever received by a ``SignalWaiter`` or a
  /// ``SignalDescriptor``, never by a handler (libfcgi installs its own).
  static func block(_ signals: [UnixSignal]) {
    let numbers = signals.map(\.rawValue)
    _ = numbers.withUnsafeBufferPointer { pbp_block_signals($0.baseAddress, Int32($0.count)) }
  }
}

/// A thread that waits for signals (sigtimedwait): the main thread of a
/// process whose work runs on other threads.
public struct SignalWaiter: Sendable {
  private let numbers: [Int32]

  /// Blocks `signals` in the calling thread (and threads it starts later).
  /// Create it before starting threads, so that none of them receives them.
  public init(_ signals: [UnixSignal]) {
    numbers = signals.map(\.rawValue)
    UnixSignal.block(signals)
  }

  /// The next of the signals, or nil when `timeout` passed first (nil: wait for ever).
  public func wait(timeout: Duration? = nil) -> UnixSignal? {
    let milliseconds = timeout.map { Int32(clamping: max(0, $0.milliseconds)) } ?? -1
    while true {
      let received = numbers.withUnsafeBufferPointer {
        pbp_wait_signal($0.baseAddress, Int32($0.count), milliseconds)
      }
      if received > 0 { return UnixSignal(rawValue: received) }
      // EINTR (a signal outside the set, a debugger) restarts only an unbounded wait.
      if errno == EINTR && milliseconds < 0 { continue }
      return nil
    }
  }
}

/// Signals as a readable descriptor (signalfd), for a poll(2) loop: the
/// descriptor turns readable when one is pending, and ``next()`` takes it.
///
/// Threading rule: owned by the loop's one thread.
public struct SignalDescriptor: ~Copyable {
  public let fd: Int32

  /// Blocks `signals` in the calling thread and opens the descriptor (non-blocking, close-on-exec).
  public init(_ signals: [UnixSignal]) throws(SystemError) {
    let numbers = signals.map(\.rawValue)
    let fd = numbers.withUnsafeBufferPointer { pbp_signalfd($0.baseAddress, Int32($0.count)) }
    guard fd >= 0 else { throw SystemError("signalfd") }
    self.fd = fd
  }

  deinit { close(fd) }

  /// A pending signal, or nil when none is.
  public func next() -> UnixSignal? {
    while true {
      let number = pbp_signalfd_read(fd)
      guard number != 0 else { return nil }
      if let signal = UnixSignal(rawValue: number) { return signal }
    }
  }
}
