import CSystemShim
import Glibc

/// An epoll instance: descriptors watched for readiness, each registered with
/// a 64-bit token that ``wait(timeout:)`` hands back.
///
/// Threading rule: epoll is thread-safe in the kernel; any thread may add,
/// remove and wait. Threads waiting on one instance are woken one per
/// readiness. The instance is closed when the last reference goes.
public final class Epoll: Sendable {
  public struct Events: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let readable = Events(rawValue: pbp_EPOLLIN)
    /// The peer closed its end (or shut down writing).
    public static let peerClosed = Events(rawValue: pbp_EPOLLRDHUP)
    /// Reported once, then disarmed until the descriptor is removed or re-armed.
    public static let oneShot = Events(rawValue: pbp_EPOLLONESHOT)
    /// For a descriptor many epoll sets watch (a listening socket every
    /// worker shares): a readiness wakes one set's waiter, not all.
    public static let exclusive = Events(rawValue: pbp_EPOLLEXCLUSIVE)
    /// Always reported: the connection is gone (both directions) or broken.
    public static let hungUp = Events(rawValue: pbp_EPOLLHUP)
    public static let error = Events(rawValue: pbp_EPOLLERR)
  }

  public struct Ready: Sendable {
    public let events: Events
    public let token: UInt64
  }

  private let fd: Int32

  public init() throws(SystemError) {
    fd = pbp_epoll_create()
    guard fd >= 0 else { throw SystemError("epoll_create1") }
  }

  deinit { close(fd) }

  public func add(_ watched: Int32, events: Events, token: UInt64) throws(SystemError) {
    guard pbp_epoll_add(fd, watched, events.rawValue, token) == 0 else { throw SystemError("epoll_ctl add \(watched)") }
  }

  /// Re-arms `watched` (a one-shot registration that fired) with new events
  /// and token, or adds it if it is not in the set.
  public func watch(_ watched: Int32, events: Events, token: UInt64) throws(SystemError) {
    guard pbp_epoll_watch(fd, watched, events.rawValue, token) == 0 else {
      throw SystemError("epoll_ctl watch \(watched)")
    }
  }

  /// Keeps `watched` in the set but quiet: only a hang-up or an error is
  /// reported, once, with token 0. Far cheaper than removing it and adding
  /// it again (no allocation, no tree or wait-queue change in the kernel)
  /// for a descriptor that comes back soon; a descriptor closed meanwhile
  /// leaves the set by itself.
  public func disarm(_ watched: Int32) {
    _ = pbp_epoll_disarm(fd, watched)
  }

  public func remove(_ watched: Int32) {
    _ = pbp_epoll_del(fd, watched)
  }

  /// Up to `maximum` ready descriptors, waiting at most `timeout`; none after
  /// an interruption or the timeout.
  public func wait(maximum: Int = 256, timeout: Duration) -> [Ready] {
    var events = [UInt32](repeating: 0, count: maximum)
    var tokens = [UInt64](repeating: 0, count: maximum)
    let count = pbp_epoll_wait(fd, &events, &tokens, Int32(maximum), Int32(clamping: max(0, timeout.milliseconds)))
    return (0..<max(0, Int(count))).map { Ready(events: Events(rawValue: events[$0]), token: tokens[$0]) }
  }
}
