import Dispatch
import Synchronization

/// Runs `operation` on Swift concurrency's pool and blocks the calling thread
/// until it is done.
///
/// For plain threads only (pbp-fcgi's `main`, before its workers start): the
/// one place PBP needs jwt-kit's `async` API is loading keys, once. Called
/// from inside a task it would hold one of the pool's few threads while
/// another runs `operation`, and could wait forever if none is free.
func waitForAsync<Value: Sendable>(_ operation: @escaping @Sendable () async -> Value) -> Value {
  let result = Mutex<Value?>(nil)
  let done = DispatchSemaphore(value: 0)
  Task.detached {
    let value = await operation()
    result.withLock { $0 = value }
    done.signal()
  }
  done.wait()
  return result.withLock { stored in
    guard let value = stored.take() else {
      preconditionFailure("the semaphore was signalled before the value was stored")
    }
    return value
  }
}
