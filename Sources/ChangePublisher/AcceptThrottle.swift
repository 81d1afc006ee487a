import DaemonSupport
import Glibc

/// Whether notifyd watches its listening socket for subscribers to accept.
///
/// Out of descriptors (EMFILE, ENFILE) or kernel memory, accept(2) fails and
/// the connection stays in the backlog: the socket stays readable, and a
/// level-triggered poll would wake the loop for it at once, forever (100 % CPU
/// while nothing changes). So the socket is left alone for a pause that grows
/// while the shortage lasts, and watched again at once when a subscriber
/// leaves, which gives a descriptor back.
public struct AcceptThrottle: Sendable {
  public enum Decision: Equatable, Sendable {
    /// A failure that passes by itself (nothing waiting, a signal, an aborted connection).
    case watching
    /// Stop watching for `for`; `firstInARow` when accepts worked before it (worth a log line).
    case paused(for: Duration, firstInARow: Bool)
  }

  /// Until when the listening socket is not watched.
  public private(set) var pausedUntil: Duration?
  private var pausesInARow = 0
  private var backoff: Backoff

  public init(backoff: Backoff = .acceptOutOfDescriptors) {
    self.backoff = backoff
  }

  /// Whether to poll the listening socket at `now`; a pause that is over ends here.
  public mutating func watchesListeningSocket(now: Duration) -> Bool {
    guard let until = pausedUntil else { return true }
    guard now >= until else { return false }
    pausedUntil = nil
    return true
  }

  /// When the loop must wake to watch the socket again, while paused.
  public var nextDeadline: Duration? { pausedUntil }

  /// accept(2) failed with `errno`.
  public mutating func acceptFailed(errno code: Int32, now: Duration) -> Decision {
    guard [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(code) else { return .watching }
    let wait = backoff.next()
    pausesInARow += 1
    pausedUntil = now + wait
    return .paused(for: wait, firstInARow: pausesInARow == 1)
  }

  /// A subscriber was accepted; returns how many pauses came before it (0 in normal times).
  public mutating func accepted() -> Int {
    defer {
      pausesInARow = 0
      backoff.reset()
    }
    return pausesInARow
  }

  /// A subscriber's descriptor was closed: the next accept may well work.
  public mutating func descriptorReleased() {
    pausedUntil = nil
  }
}

extension Backoff {
  /// From 50 ms up to 1 s without the socket: short enough that a subscriber
  /// is accepted soon after a descriptor frees up elsewhere, long enough to cost nothing.
  /// No jitter: there is nobody to fall into lockstep with.
  public static let acceptOutOfDescriptors = Backoff(first: .milliseconds(50), cap: .seconds(1), jitter: 1...1)
}
