import ChangeStream
import DaemonSupport

/// One worker process's view of the change stream and its parking lot,
/// shared by its threads.
///
/// Accepting threads park polls here and return to accept at once; the
/// stream follower's thread answers the polls its events match; the watcher
/// (``runWatcher()``, on a thread of the process's) answers polls whose time
/// is up and frees those whose client went away (nginx closes the upstream
/// connection, which epoll reports as a hang-up). A parked poll costs its
/// responder and one descriptor, no thread.
///
/// Every decision is the ``ParkingLot``'s, taken under the lock; the answers
/// are rendered (each distinct one once) and written after it.
public final class ChangeHub<Responder: PollResponder>: StreamCursorSource {
  private struct Lot: Sendable {
    var machine: ParkingLot
    var responders: [ParkingLot.PollID: Responder] = [:]

    /// Takes the responders of the delivered polls out of the lot.
    mutating func take(_ deliveries: Deliveries) -> Taken {
      let polls = deliveries.recipients.compactMap { recipient in
        responders.removeValue(forKey: recipient.id).map { ($0, recipient.answer) }
      }
      return Taken(polls: polls, answers: deliveries.answers)
    }
  }

  /// Polls out of the lot with their answers, to render and write after the lock.
  private struct Taken {
    /// Each responder with the index of its answer.
    let polls: [(Responder, Int)]
    let answers: [PollAnswer]
  }

  private let lot: ConditionLock<Lot>
  private let ringCapacity: Int
  private let hangUps: Epoll
  private let render: @Sendable (PollAnswer) -> Responder.Answer
  private let log: Log

  /// `ringByteBudget` bounds the ring's memory as `ringCapacity` bounds its
  /// events.
  public init(
    ringCapacity: Int, ringByteBudget: Int = .max, log: Log,
    render: @escaping @Sendable (PollAnswer) -> Responder.Answer
  ) throws(SystemError) {
    lot = ConditionLock(
      Lot(
        machine: ParkingLot(
          ringCapacity: ringCapacity, ringByteBudget: ringByteBudget)))
    self.ringCapacity = ringCapacity
    hangUps = try Epoll()
    self.render = render
    self.log = log
  }

  public var current: Cursor? { lot.withLock { $0.machine.current } }

  /// The cursor a snapshot read hands out, taken before its query runs. While
  /// the stream is interrupted the position may belong to an epoch that has
  /// just ended (notifyd restarted), which would send the client through a
  /// second reset: wait up to `patience` for the stream to come back first.
  /// After that, the last known position is still better than no answer.
  public func snapshotCursor(patience: Duration = .seconds(1)) -> Cursor? {
    lot.wait(
      until: { $0.machine.stream.isFollowing }, deadline: MonotonicClock.now() + patience,
      then: { $0.machine.current })
  }

  /// Waits up to `patience` until the worker knows a position (its first
  /// greeting from notifyd); whether it does.
  public func awaitPosition(patience: Duration) -> Bool {
    lot.wait(
      until: { $0.machine.current != nil }, deadline: MonotonicClock.now() + patience,
      then: { $0.machine.current != nil })
  }

  /// How many recent events a worker without a position asks notifyd for, so
  /// that a new worker can serve the cursors its older peers handed out. Those
  /// are seconds old at most (clients poll again at once); a client back from a
  /// long sleep with an older one resets. Bounded so that the catch-up ends well
  /// within the grace that polls ahead of the worker get.
  var historyOnJoin: UInt32 { UInt32(clamping: min(ringCapacity, 16_384)) }

  public struct Statistics: Sendable {
    public let parked: Int
    public let eventsDelivered: UInt64
    public let current: Cursor?
    public let ringEvents: Int
    public let ringBytes: Int
    public let payloadsRefused: UInt64
  }

  public var statistics: Statistics {
    lot.withLock {
      Statistics(
        parked: $0.machine.parked.count, eventsDelivered: $0.machine.eventsDelivered, current: $0.machine.current,
        ringEvents: $0.machine.ring.count, ringBytes: $0.machine.ring.retainedBytes,
        payloadsRefused: $0.machine.payloadsRefused)
    }
  }

  /// Answers the poll now, or parks it. Returns once it is answered or parked.
  ///
  /// A poll behind the ring is scanned on a snapshot outside the lock (the
  /// scan is bounded, but appends and other polls need not wait for it), then
  /// settled under the lock, scanning again what was appended meanwhile.
  public func submit(_ poll: ChangePoll, responder: Responder) {
    var decision = settle(responder) { $0.poll(poll, now: MonotonicClock.now()) }
    while case .scan(let pending) = decision {
      let result = pending.run()
      decision = settle(responder) { $0.finishScan(pending, result, now: MonotonicClock.now()) }
    }
    if case .answer(let answer) = decision { responder.respond(render(answer)) }
  }

  /// Takes a decision under the lock; a parked poll's responder is kept there too.
  private func settle(_ responder: Responder, _ decide: (inout ParkingLot) -> ParkingLot.PollDecision)
    -> ParkingLot.PollDecision
  {
    lot.withLock { lot in
      let decision = decide(&lot.machine)
      if case .park(let id) = decision {
        lot.responders[id] = responder
        // Registered under the lock, so that no answer can close the socket first.
        // One-shot: a hang-up is reported once, even while the answer is being written.
        // A kept connection parked before is in the set already, disarmed: re-armed
        // (added if this is its first poll); any other is new to the set.
        do {
          let events: Epoll.Events = [.peerClosed, .readable, .oneShot]
          if responder.mayKeepConnection {
            try hangUps.watch(responder.socket, events: events, token: id)
          } else {
            try hangUps.add(responder.socket, events: events, token: id)
          }
        } catch {
          log.warning("\(error)")
        }
      }
      return decision
    }
  }

  // MARK: From the stream follower

  func streamInterrupted() {
    lot.withLock { $0.machine.streamInterrupted() }
  }

  func streamStarted(at position: Cursor, resumed: Bool) {
    // Snapshot reads and new polls may be waiting for the stream.
    deliver(lot.notifyingAll { lot in lot.take(lot.machine.streamStarted(at: position, resumed: resumed)) })
  }

  /// Appends events; false when they do not follow the ring's newest (the
  /// stream must then be re-established).
  func append(_ events: [ChangeEvent]) -> Bool {
    let taken = lot.withLock { lot -> Taken? in
      switch lot.machine.append(events) {
      case .appended(let deliveries): lot.take(deliveries)
      case .outOfOrder: nil
      }
    }
    guard let taken else { return false }
    deliver(taken)
    return true
  }

  // MARK: The watcher

  /// Answers polls whose time is up and frees those whose client went away,
  /// for the life of the process: run it on a thread of its own.
  public func runWatcher() -> Never {
    while true {
      for ready in hangUps.wait(timeout: .milliseconds(100)) { abandon(id: ready.token) }
      deliver(lot.withLock { lot in lot.take(lot.machine.expire(now: MonotonicClock.now())) })
    }
  }

  private func abandon(id: ParkingLot.PollID) {
    let responder = lot.withLock { lot -> Responder? in
      guard lot.machine.abandon(id: id), let responder = lot.responders.removeValue(forKey: id) else { return nil }
      hangUps.remove(responder.socket)
      return responder
    }
    responder?.abandon()
  }

  /// Answers every parked poll at once, and every later one without parking it (shutdown).
  public func releaseAll() {
    deliver(lot.withLock { lot in lot.take(lot.machine.releaseAll()) })
  }

  // MARK: Plumbing

  /// Renders each distinct answer once and writes it to its polls, outside
  /// the lock: a slow write never holds up parking. The sockets of the polls
  /// taken out stay in the epoll set until their answer closes them, which
  /// removes them (one epoll_ctl fewer per delivery, 10,000 in a big fan-out);
  /// a hang-up seen meanwhile names an id that is no longer parked and is
  /// ignored. A connection the answer may keep open is disarmed first, not
  /// removed: its next request must not wake the watcher, and it comes back
  /// here with its next poll (re-arming is far cheaper in the kernel than
  /// removing and adding; perf showed removal as a quarter of the delivering
  /// thread's time). Its hang-up, reported once with token 0, is ignored.
  private func deliver(_ taken: Taken) {
    guard !taken.polls.isEmpty else { return }
    var rendered: [Responder.Answer?] = Array(repeating: nil, count: taken.answers.count)
    for (responder, index) in taken.polls {
      let answer = rendered[index] ?? render(taken.answers[index])
      rendered[index] = answer
      if responder.mayKeepConnection { hangUps.disarm(responder.socket) }
      responder.respond(answer)
    }
  }
}
