import CFastCGI
import Glibc

/// The listening socket nginx connects to.
public enum FastCGISocket {
  /// Opens a unix socket at `path` (replacing a stale one) with a backlog
  /// large enough for a burst of long-polls, and sets its mode so that
  /// nginx's workers may connect.
  public static func open(path: String, mode: mode_t, backlog: Int32 = 16384) -> Int32? {
    unlink(path)
    let fd = FCGX_OpenSocket(path, backlog)
    guard fd >= 0 else { return nil }
    guard chmod(path, mode) == 0 else {
      close(fd)
      return nil
    }
    return fd
  }
}
