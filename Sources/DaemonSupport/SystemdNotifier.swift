import Glibc

/// The sd_notify protocol: datagrams to the unix socket named by
/// `$NOTIFY_SOCKET` (READY=1, STATUS=…, WATCHDOG=1, STOPPING=1, RELOADING=1).
/// Without that variable (not under systemd) every call does nothing.
public struct SystemdNotifier: Sendable {
  private let socketPath: String?
  /// How often to send WATCHDOG=1: half of `$WATCHDOG_USEC`, or nil when no watchdog is set.
  public let watchdogInterval: Duration?

  public init() {
    socketPath = getenv("NOTIFY_SOCKET").map { String(cString: $0) }
    if let text = getenv("WATCHDOG_USEC").map({ String(cString: $0) }), let usec = Int64(text), usec > 0 {
      let pidMatches = getenv("WATCHDOG_PID").map { Int32(String(cString: $0)) == getpid() } ?? true
      watchdogInterval = pidMatches ? .microseconds(usec / 2) : nil
    } else {
      watchdogInterval = nil
    }
  }

  public func ready(status: String? = nil) { send("READY=1" + (status.map { "\nSTATUS=\($0)" } ?? "")) }
  public func status(_ text: String) { send("STATUS=\(text)") }
  public func watchdog() { send("WATCHDOG=1") }
  public func stopping() { send("STOPPING=1") }

  public func reloading() {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    let usec = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    send("RELOADING=1\nMONOTONIC_USEC=\(usec)")
  }

  public func send(_ message: String) {
    guard let path = socketPath, !path.isEmpty, let address = try? UnixAddress(path) else { return }
    let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return }
    defer { close(fd) }
    let payload = Array(message.utf8)
    _ = address.withSocketAddress { socketAddress, length in
      payload.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), socketAddress, length) }
    }
  }
}
