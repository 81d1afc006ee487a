import CSystemShim
import Glibc

/// Starting and reaping the worker processes of a pool.
public enum ChildProcess {
  /// Starts `path` with `arguments` (argv[0] included), with `descriptors[i]`
  /// duplicated onto fd 3 + i in the child; its signal mask and handlers start
  /// at the defaults, whatever the parent had.
  public static func spawn(_ path: String, arguments: [String], descriptors: [Int32]) throws(SystemError) -> pid_t {
    precondition(descriptors.count <= 7, "a child receives descriptors 3 to 9 at most (10 and up are the parent's)")
    let cArguments = arguments.map { strdup($0) } + [nil]
    defer {
      for argument in cArguments { free(argument) }
    }
    let pid = descriptors.withUnsafeBufferPointer { fds in
      pbp_spawn_with_fds(path, cArguments, fds.baseAddress, Int32(fds.count))
    }
    guard pid > 0 else { throw SystemError("posix_spawn \(path)", code: -pid) }
    return pid
  }

  /// How a child ended, as waitpid reported it.
  public struct Exit: Sendable, CustomStringConvertible {
    public let pid: pid_t
    let status: Int32

    public var description: String {
      (status & 0x7f) == 0 ? "exited with \((status >> 8) & 0xff)" : "killed by signal \(status & 0x7f)"
    }
  }

  /// A child that has ended, if any, without waiting.
  public static func reap() -> Exit? {
    var status: Int32 = 0
    let pid = waitpid(-1, &status, WNOHANG)
    return pid > 0 ? Exit(pid: pid, status: status) : nil
  }

  /// Waits for `pid` to end.
  public static func waitFor(_ pid: pid_t) {
    while waitpid(pid, nil, 0) < 0 && errno == EINTR {}
  }

  public static func send(_ signal: UnixSignal, to pid: pid_t) {
    kill(pid, signal.rawValue)
  }

  /// Asks the kernel to send this process `signal` when its parent dies, so
  /// that no worker outlives its master.
  public static func dieWithParent(_ signal: UnixSignal) {
    _ = pbp_die_with_parent(signal.rawValue)
  }

  /// Moves `fd` to a number of 10 or more, close-on-exec, so that it cannot
  /// collide with the fixed numbers (3 and up) children receive.
  public static func moveOutOfTheWay(_ fd: Int32) -> Int32 {
    pbp_move_fd_high(fd)
  }
}
