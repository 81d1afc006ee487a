import CSystemShim
import ChangeStream
import DaemonSupport
import Glibc
import Synchronization

/// One worker process's change stream and parking lot, shared by its threads.
///
/// Accepting threads park polls here and return to accept at once; the
/// stream thread answers the polls its events match; the watcher thread
/// answers polls whose time is up and frees those whose client went away
/// (nginx closes the upstream connection, which epoll reports as a hang-up).
/// A parked poll costs its request's memory and one descriptor, no thread.
public final class ChangeHub: Sendable {
  private let state: Mutex<ChangeHubState>
  private let epollFD: Int32
  private let log: Log

  public init(ringCapacity: Int, log: Log) {
    state = Mutex(ChangeHubState(ringCapacity: ringCapacity))
    epollFD = pbp_epoll_create()
    self.log = log
  }

  /// The newest position this worker knows.
  public var current: Cursor? { state.withLock { $0.current } }

  /// The cursor a snapshot read hands out, taken before its query runs. While
  /// the stream is interrupted the position may belong to an epoch that has
  /// just ended (notifyd restarted), which would send the client through a
  /// second reset: wait up to `patience` for the stream to come back first.
  /// After that, the last known position is still better than no answer.
  public func snapshotCursor(patience: Duration = .seconds(1)) -> Cursor? {
    let deadline = MonotonicClock.now() + patience
    while true {
      let (cursor, following) = state.withLock { ($0.current, $0.isFollowing) }
      if following || MonotonicClock.now() >= deadline { return cursor }
      usleep(2_000)
    }
  }

  /// How many recent events a worker without a position asks notifyd for, so
  /// that a new worker can serve the cursors its older peers handed out. Those
  /// are seconds old at most (clients poll again at once); a client back from a
  /// long sleep with an older one resets. Bounded so that the catch-up ends well
  /// within the grace that polls ahead of the worker get.
  var historyOnJoin: UInt32 { state.withLock { UInt32(clamping: min($0.ring.capacity, 16_384)) } }

  public struct Statistics: Sendable {
    public let parked: Int
    public let eventsDelivered: UInt64
    public let current: Cursor?
  }

  public var statistics: Statistics {
    state.withLock { Statistics(parked: $0.parked.count, eventsDelivered: $0.eventsDelivered, current: $0.current) }
  }

  /// Answers the poll now, or parks it. Returns at once either way.
  public func submit(_ poll: ChangePoll, responder: any PollResponder) {
    let decision = state.withLock { state in
      let decision = state.poll(poll, responder: responder, now: MonotonicClock.now())
      if case .park(let id) = decision {
        // Registered under the lock, so that no answer can close the socket first.
        // One-shot: a hang-up is reported once, even while the answer is being written.
        let watched = pbp_epoll_add(epollFD, responder.socket, pbp_EPOLLRDHUP | pbp_EPOLLIN | pbp_EPOLLONESHOT, id)
        if watched != 0 { log.warning("epoll_ctl add fd \(responder.socket): \(SystemError("epoll_ctl"))") }
      }
      return decision
    }
    if case .answer(let response) = decision { responder.respond(response) }
  }

  // MARK: From the stream thread

  /// The connection to notifyd ended; a new one will say where it stands.
  func streamInterrupted() {
    state.withLock { $0.isFollowing = false }
  }

  func streamStarted(at position: Cursor, resumed: Bool) {
    deliver(takeOut { $0.streamStarted(at: position, resumed: resumed) })
  }

  /// Appends events; returns false when their numbering does not continue
  /// ours (the stream must then be re-established).
  func append(_ events: [ChangeEvent]) -> Bool {
    var consistent = true
    let deliveries = takeOut { state in
      guard let first = events.first, first.seq == state.ring.nextSeq,
        zip(events, events.dropFirst()).allSatisfy({ $0.seq + 1 == $1.seq })
      else {
        consistent = events.isEmpty
        return []
      }
      return state.append(events)
    }
    deliver(deliveries)
    return consistent
  }

  /// Where a reconnecting stream should resume from.
  var resumePosition: Cursor? { current }

  // MARK: Watcher

  /// Runs the watcher loop on its own thread, for the life of the process.
  public func startWatcher() {
    Threads.start(name: "pbp-park-watch") { [self] in
      var events = [UInt32](repeating: 0, count: 256)
      var ids = [UInt64](repeating: 0, count: 256)
      while true {
        let count = pbp_epoll_wait(epollFD, &events, &ids, 256, 100)
        for index in 0..<max(0, Int(count)) { abandon(id: ids[index]) }
        deliver(takeOut { $0.expire(now: MonotonicClock.now()) })
      }
    }
  }

  private func abandon(id: UInt64) {
    let responder = state.withLock { state -> (any PollResponder)? in
      guard let responder = state.abandon(id: id) else { return nil }
      _ = pbp_epoll_del(epollFD, responder.socket)
      return responder
    }
    responder?.abandon()
  }

  /// Answers every parked poll at once, and every later one without parking it (shutdown).
  public func releaseAll() {
    deliver(takeOut { $0.releaseAll() })
  }

  // MARK: Plumbing

  /// Runs a transition under the lock. The sockets of the polls it took out
  /// stay in the epoll set until their answer closes them, which removes them
  /// (one epoll_ctl fewer per delivery, 10,000 in a big fan-out); a hang-up
  /// seen meanwhile names an id that is no longer parked and is ignored.
  private func takeOut(_ transition: (inout ChangeHubState) -> [Delivery]) -> [Delivery] {
    state.withLock { state in transition(&state) }
  }

  /// Writes answers outside the lock: a slow write never holds up parking.
  private func deliver(_ deliveries: [Delivery]) {
    for delivery in deliveries { delivery.responder.respond(delivery.response) }
  }
}
