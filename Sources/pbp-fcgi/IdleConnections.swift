import DaemonSupport
import FastCGI
import Synchronization
import WorkerPool

/// One listening socket's kept FastCGI connections that wait for their next
/// request: in an epoll set, never in a thread. The set also holds the
/// listening socket (token 0, exclusively: a new connection wakes one
/// worker), and the socket's accepting threads all wait on it, so that one
/// readiness wakes one thread: a new connection to accept, or an idle one to
/// serve (readable) or free (nginx closed it). The decisions are
/// ``KeptConnections``'; a connection is known by a token while it is idle.
final class IdleConnections: ConnectionKeeper {
  private struct State: Sendable {
    var machine: KeptConnections<UInt64>
    var connections: [UInt64: FastCGIConnection] = [:]
    var nextToken: UInt64 = 1
  }

  /// The listening socket and the idle connections, these armed one-shot:
  /// a readiness is reported once, to one thread.
  private let watched: Epoll
  private let state: Locked<State>
  /// Whether released connections may be waiting to expire (spares the
  /// state's lock in every wait until one was released: a drain, or more
  /// idle connections than the limit).
  private let mayHaveReleased = Atomic<Bool>(false)
  private let log: Log
  static let listeningToken: UInt64 = 0

  init(listening listenFD: Int32, limit: Int, log: Log) throws(SystemError) {
    watched = try Epoll()
    try watched.add(listenFD, events: [.readable, .exclusive], token: Self.listeningToken)
    state = Locked(State(machine: KeptConnections(limit: limit)))
    self.log = log
  }

  enum Readiness {
    /// A connection may be waiting on the listening socket.
    case listening
    /// A kept connection whose next request is coming.
    case request(FastCGIConnection)
    case nothing
  }

  /// Waits at most `timeout` for one thing to do. An idle connection nginx
  /// closed is freed here, and so is a released one nginx left too long.
  func wait(timeout: Duration) -> Readiness {
    defer { closeExpired() }
    guard let ready = watched.wait(maximum: 1, timeout: timeout).first else { return .nothing }
    if ready.token == Self.listeningToken { return .listening }
    let hungUp = !ready.events.isDisjoint(with: [.peerClosed, .hungUp, .error])
    let (wake, connection) = state.withLock { state -> (KeptConnections<UInt64>.Wake, FastCGIConnection?) in
      let wake = state.machine.woke(ready.token, readable: ready.events.contains(.readable), hungUp: hungUp)
      return (wake, wake == .ignore ? nil : state.connections.removeValue(forKey: ready.token))
    }
    switch wake {
    case .serve: if let connection { return .request(connection) }
    case .free: connection?.close()
    case .ignore: break
    }
    return .nothing
  }

  private func closeExpired() {
    guard mayHaveReleased.load(ordering: .relaxed) else { return }
    let closing = state.withLock { state -> [FastCGIConnection] in
      guard let deadline = state.machine.nextDeadline, deadline <= MonotonicClock.now() else {
        return []
      }
      return state.machine.expired(now: MonotonicClock.now()).compactMap { state.connections.removeValue(forKey: $0) }
    }
    for connection in closing { connection.close() }
  }

  var count: Int { state.withLock { $0.machine.idleCount } }

  /// A request on `connection` was answered cleanly: watch it for the next
  /// one if nginx asked to keep it, close it otherwise; release it if the
  /// worker drains or the idle set is full.
  func requestEnded(on connection: FastCGIConnection, keepAsked: Bool) {
    let now = MonotonicClock.now()
    var (token, ending) = state.withLock { state -> (UInt64, KeptConnections<UInt64>.Ending) in
      let token = state.nextToken
      state.nextToken += 1
      let ending = state.machine.requestEnded(token, keepAsked: keepAsked, endedCleanly: true, now: now)
      // Known before it is armed, so that the thread it wakes finds it.
      if ending != .close { state.connections[token] = connection }
      return (token, ending)
    }
    // Armed outside the lock: epoll_ctl is a system call, and the other
    // accepting threads take this lock for every readiness they are given.
    if ending != .close {
      do {
        try watched.watch(connection.socket, events: [.readable, .peerClosed, .oneShot], token: token)
      } catch {
        log.warning("\(error): the connection is closed instead")
        state.withLock { state in
          state.connections[token] = nil
          _ = state.machine.woke(token, readable: false, hungUp: true)
        }
        ending = .close
      }
    }
    switch ending {
    case .watch: break
    // Armed already: a thread may be serving a request nginx had sent; then
    // that request's end releases it.
    case .release:
      mayHaveReleased.store(true, ordering: .relaxed)
      connection.release()
    case .close: connection.close()
    }
  }

  /// Whether no connection is idle (a drained worker's threads may stop then).
  var isEmpty: Bool { state.withLock { $0.machine.idleCount == 0 } }

  /// The worker drains: no more connections are accepted, and every idle
  /// connection is released (nginx closes it and opens new ones, to the
  /// workers that serve; a request nginx had sent on it is served first).
  func drain(listening listenFD: Int32) {
    watched.remove(listenFD)
    mayHaveReleased.store(true, ordering: .relaxed)
    let releasing = state.withLock { state in
      state.machine.drain(now: MonotonicClock.now()).compactMap { state.connections[$0] }
    }
    for connection in releasing { connection.release() }
  }
}
