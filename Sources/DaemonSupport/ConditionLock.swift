import Glibc

/// A value behind a lock that threads can also wait on: `withLock` changes
/// it, `notifyingAll` wakes the waiters after a change they may wait for, and
/// `wait(until:deadline:)` sleeps until the value satisfies a condition or the
/// (monotonic) deadline passes. For waits on a state, instead of sleep-polling.
///
/// Threading rule: the value is touched only with the mutex held; the mutex
/// and condition are allocated once, never move, and are destroyed in deinit,
/// when no thread can hold a reference. Hence `@unchecked Sendable`.
public final class ConditionLock<Value: Sendable>: @unchecked Sendable {
  private var value: Value
  private let mutex: UnsafeMutablePointer<pthread_mutex_t>
  private let condition: UnsafeMutablePointer<pthread_cond_t>

  public init(_ value: Value) {
    self.value = value
    mutex = .allocate(capacity: 1)
    pthread_mutex_init(mutex, nil)
    condition = .allocate(capacity: 1)
    var attributes = pthread_condattr_t()
    pthread_condattr_init(&attributes)
    // Deadlines are MonotonicClock's: the wall clock may jump.
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
    pthread_cond_init(condition, &attributes)
    pthread_condattr_destroy(&attributes)
  }

  deinit {
    pthread_cond_destroy(condition)
    condition.deallocate()
    pthread_mutex_destroy(mutex)
    mutex.deallocate()
  }

  public func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    return try body(&value)
  }

  /// As `withLock`, then wakes every waiter to look at the value again.
  public func notifyingAll<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
    pthread_mutex_lock(mutex)
    defer {
      pthread_cond_broadcast(condition)
      pthread_mutex_unlock(mutex)
    }
    return try body(&value)
  }

  /// Waits until `isSatisfied` holds or `deadline` (``MonotonicClock``) passes,
  /// then returns `body` of the value, under the lock either way.
  public func wait<Result>(
    until isSatisfied: (Value) -> Bool, deadline: Duration, then body: (inout Value) -> Result
  ) -> Result {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    var time = timespec()
    let (seconds, attoseconds) = deadline.components
    time.tv_sec = Int(seconds)
    time.tv_nsec = Int(attoseconds / 1_000_000_000)
    while !isSatisfied(value) {
      if pthread_cond_timedwait(condition, mutex, &time) == ETIMEDOUT { break }
    }
    return body(&value)
  }
}
