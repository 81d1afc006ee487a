import CSystemShim
import Glibc

/// Starts detached OS threads. The daemons use plain threads, not Swift
/// concurrency: a libfcgi accept or a poll(2) loop blocks its thread by design.
public enum Threads {
  private final class Box {
    let name: String
    let body: @Sendable () -> Void
    init(_ name: String, _ body: @escaping @Sendable () -> Void) {
      self.name = name
      self.body = body
    }
  }

  /// Runs `body` on a new detached thread named `name` (as `top -H` shows it).
  public static func start(name: String, _ body: @escaping @Sendable () -> Void) {
    let context = Unmanaged.passRetained(Box(String(name.prefix(15)), body)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(
      &thread, nil,
      { context in
        let box = Unmanaged<Box>.fromOpaque(context!).takeRetainedValue()
        pbp_set_thread_name(box.name)
        box.body()
        return nil
      }, context)
    precondition(result == 0, "pthread_create failed: \(result)")
    pthread_detach(thread)
  }

  /// Blocks the calling thread for `duration` (nothing if it is not positive):
  /// a retry's backoff, a wait for the next allowed reading.
  public static func sleep(for duration: Duration) {
    guard duration > .zero else { return }
    let (seconds, attoseconds) = duration.components
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
  }
}
