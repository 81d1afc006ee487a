import CSystemShim
import Glibc

/// A failed system call, with what we were doing and errno's text.
public struct SystemError: Error, Sendable, CustomStringConvertible {
  public let operation: String
  public let code: Int32

  public init(_ operation: String, code: Int32 = errno) {
    self.operation = operation
    self.code = code
  }

  public var description: String { "\(operation): \(String(cString: strerror(code)))" }
}

/// Stream sockets in the unix domain: creating, binding, connecting, accepting.
public enum UnixSocket {
  /// Binds and listens on `path`, replacing a stale socket file. `mode` is applied to the file.
  public static func listen(path: String, mode: mode_t, backlog: Int32 = 1024) throws(SystemError) -> Int32 {
    let address = try UnixAddress(path)
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw SystemError("socket") }
    unlink(path)
    guard address.withSocketAddress({ bind(fd, $0, $1) }) == 0 else {
      let error = SystemError("bind \(path)")
      close(fd)
      throw error
    }
    guard chmod(path, mode) == 0 else {
      let error = SystemError("chmod \(path)")
      close(fd)
      throw error
    }
    guard Glibc.listen(fd, backlog) == 0 else {
      let error = SystemError("listen \(path)")
      close(fd)
      throw error
    }
    return fd
  }

  /// Connects to `path`, blocking.
  public static func connect(path: String) throws(SystemError) -> Int32 {
    let address = try UnixAddress(path)
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw SystemError("socket") }
    guard address.withSocketAddress({ Glibc.connect(fd, $0, $1) }) == 0 else {
      let error = SystemError("connect \(path)")
      close(fd)
      throw error
    }
    return fd
  }

  /// A waiting connection on a non-blocking listening socket, as a
  /// non-blocking, close-on-exec descriptor, or nil when none waits.
  public static func acceptNonBlocking(_ listenFD: Int32) -> Int32? {
    let fd = pbp_accept_nonblocking(listenFD)
    return fd >= 0 ? fd : nil
  }

  /// The path a unix socket is bound to (how an inherited listening socket
  /// is told from another), or nil for an unnamed or non-unix one.
  public static func boundPath(_ fd: Int32) -> String? {
    var address = sockaddr_un()
    var length = socklen_t(MemoryLayout<sockaddr_un>.size)
    let ok = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) == 0 }
    }
    guard ok, address.sun_family == sa_family_t(AF_UNIX) else { return nil }
    let pathBytes = Int(length) - MemoryLayout.offset(of: \sockaddr_un.sun_path)!
    guard pathBytes > 0 else { return nil }
    return withUnsafeBytes(of: address.sun_path) { raw in
      let bytes = raw.prefix(pathBytes).prefix { $0 != 0 }
      return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }
  }

  public static func setNonBlocking(_ fd: Int32) {
    let flags = fcntl(fd, F_GETFL)
    _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
  }
}

/// Monotonic time, for deadlines and backoff.
public enum MonotonicClock {
  public static func now() -> Duration {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return .seconds(time.tv_sec) + .nanoseconds(time.tv_nsec)
  }
}

extension Duration {
  public var milliseconds: Int64 {
    let (seconds, attoseconds) = components
    return seconds * 1000 + attoseconds / 1_000_000_000_000_000
  }
}
