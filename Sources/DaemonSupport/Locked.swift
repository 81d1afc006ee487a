import Glibc

/// A value behind a glibc mutex, for state that several threads touch on
/// every request. Not `Synchronization.Mutex`: on Linux, Swift 6.3's Mutex
/// takes a priority-inheritance futex once contended (swiftlang/swift#88440),
/// so the kernel hands the lock to each waiter in turn and every contended
/// lock and unlock is a system call. Under GET one row at 16 connections its
/// `_lockSlow` was 12% of pbp-fcgi's CPU, on the idle set's lock that the four
/// accepting threads of a worker take twice per request. glibc's default
/// mutex lets a running thread take a lock just released (no convoy).
///
/// Threading rule: the value is touched only with the mutex held; the mutex
/// is allocated once, never moves and is destroyed in deinit, when no thread
/// can hold a reference. Hence `@unchecked Sendable`.
public final class Locked<Value: Sendable>: @unchecked Sendable {
  private var value: Value
  private let mutex: UnsafeMutablePointer<pthread_mutex_t>

  public init(_ value: Value) {
    self.value = value
    mutex = .allocate(capacity: 1)
    pthread_mutex_init(mutex, nil)
  }

  deinit {
    pthread_mutex_destroy(mutex)
    mutex.deallocate()
  }

  public func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure)
    -> Result
  {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    return try body(&value)
  }

  /// `body` of the value if the lock is free now, nil if another thread holds it.
  public func withLockIfAvailable<Result>(_ body: (inout Value) -> Result) -> Result? {
    guard pthread_mutex_trylock(mutex) == 0 else { return nil }
    defer { pthread_mutex_unlock(mutex) }
    return body(&value)
  }
}
