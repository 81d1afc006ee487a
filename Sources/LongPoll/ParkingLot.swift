import ChangeStream
import HeapModule

/// The state machine behind ``ChangeHub``: a worker's view of notifyd's
/// stream (its state, its ring of recent events) and the polls parked on it.
/// Pure: time is passed in, nothing is written; each event returns the polls
/// it answers as ``Deliveries``, which the hub renders and writes outside its
/// lock. Polls are known by id: the hub keeps their responders.
///
/// The stream's transitions are in `ParkingLot+Stream.swift`; only those two
/// files change the state.
struct ParkingLot: Sendable {
  typealias PollID = UInt64

  enum PollDecision {
    case answer(PollAnswer)
    case park(PollID)
    /// The events after the poll's cursor must be scanned first, outside the lock.
    case scan(PendingScan)
  }

  struct Deadline: Comparable {
    let at: Duration
    let id: PollID
    static func < (lhs: Deadline, rhs: Deadline) -> Bool { (lhs.at, lhs.id) < (rhs.at, rhs.id) }
  }

  var stream: StreamState = .unknown
  var ring: EventRing
  var parked: [PollID: ChangePoll] = [:]
  private var deadlines = Heap<Deadline>()
  private var nextID: PollID = 1
  /// Events per answer at most; a client further behind comes straight back for the rest.
  let maximumEventsPerAnswer: Int
  /// What examining events for one answer may cost at most, whatever the
  /// poll's cursor and subscriptions (about one unit per event and column
  /// looked up: ``SubscriptionSet/judge(_:work:)``): a poll that used it up
  /// is answered with what it found and the cursor of the last event
  /// examined, and comes straight back for the rest. This bounds the CPU of
  /// one poll.
  let scanBudget: Int
  var eventsDelivered: UInt64 = 0
  /// Payloads refused because the triggers could not have produced them.
  var payloadsRefused: UInt64 = 0
  /// Epochs this worker has seen end: a cursor of one of them must reset.
  var pastEpochs: Set<UInt64> = []
  /// Set when the worker shuts down: polls are answered at once from then on.
  private(set) var isDraining = false

  /// How long a cursor this worker cannot place yet may wait for the worker to catch up.
  static let graceForUnknownCursors: Duration = .seconds(1)

  init(
    ringCapacity: Int, ringByteBudget: Int = .max, maximumEventsPerAnswer: Int = 1000,
    scanBudget: Int = ParkingLot.defaultScanBudget
  ) {
    ring = EventRing(capacity: ringCapacity, byteBudget: ringByteBudget)
    self.maximumEventsPerAnswer = maximumEventsPerAnswer
    self.scanBudget = scanBudget
  }

  /// About 4 ms of a worker's CPU on the 2-core development machine (some
  /// 4,000 events of a three-column table), so that with the request's own
  /// parsing no poll costs over 10 ms (bench/hostile_poll.py measures it).
  static let defaultScanBudget = 16_384

  /// The newest position, which snapshot reads hand out as their cursor.
  var current: Cursor? { stream.epoch.map { Cursor(epoch: $0, position: ring.newestPosition) } }

  // MARK: Polls

  mutating func poll(_ poll: ChangePoll, now: Duration) -> PollDecision {
    let standing = standing(of: poll.cursor)
    if standing == .current, let cursor = poll.cursor, cursor.position < ring.newestPosition {
      return .scan(
        PendingScan(
          poll: poll, snapshot: ring.snapshot, epoch: cursor.epoch, after: cursor.position,
          budget: scanBudget, maximumMatches: maximumEventsPerAnswer))
    }
    if let answer = answerNow(standing) { return .answer(answer) }
    return park(poll, standing, now: now)
  }

  /// Settles a poll with what its scan found: answered when it found events
  /// or used its budget (the cursor then is the last event examined, so that
  /// nothing unexamined is skipped); scanned again for the events appended
  /// meanwhile; parked when it has seen everything.
  mutating func finishScan(_ pending: PendingScan, _ result: RingScanResult, now: Duration) -> PollDecision {
    // The ring was reset meanwhile (a new epoch): judge the poll afresh.
    guard stream.epoch == pending.epoch, ring.generation == pending.snapshot.generation else {
      return poll(pending.poll, now: now)
    }
    let through = Cursor(epoch: pending.epoch, position: result.through)
    if !result.matched.isEmpty {
      let matched = result.matched.map {
        MatchedEvent(event: $0.event, cursor: Cursor(epoch: pending.epoch, position: $0.event.position), $0.matches)
      }
      eventsDelivered += UInt64(matched.count)
      return .answer(.events(matched, through: through))
    }
    let budget = pending.budget - result.work
    // Out of budget, or the ring moved past where the scan stopped: the
    // client continues from there (and is told to reset if it must).
    if budget <= 0 || result.through < pending.snapshot.newestPosition || !ring.covers(after: result.through) {
      return .answer(.noEvents(cursor: through))
    }
    if result.through < ring.newestPosition {
      return .scan(
        PendingScan(
          poll: pending.poll, snapshot: ring.snapshot, epoch: pending.epoch, after: result.through, budget: budget,
          maximumMatches: maximumEventsPerAnswer))
    }
    var caughtUp = pending.poll
    caughtUp.cursor = through
    return park(caughtUp, .current, now: now)
  }

  private mutating func park(_ poll: ChangePoll, _ standing: Standing, now: Duration) -> PollDecision {
    if isDraining { return .answer(timeoutAnswer(poll)) }
    let id = nextID
    nextID += 1
    parked[id] = poll
    // A cursor this worker cannot place yet gets a short wait, not the whole timeout.
    let wait =
      standing == .notYetKnown || standing == .awaitingStream
      ? min(poll.timeout, Self.graceForUnknownCursors) : poll.timeout
    deadlines.insert(Deadline(at: now + wait, id: id))
    return .park(id)
  }

  enum Standing: Equatable {
    /// The stream's position is not known yet (no greeting from notifyd).
    case streamUnknown
    /// No cursor: the client wants the newest position.
    case fresh
    /// No cursor while the stream is interrupted: the newest position known
    /// may belong to an epoch that has just ended (notifyd restarted), and a
    /// client handed it would be reset by the next worker. Waits briefly for
    /// the stream, as snapshot reads do.
    case awaitingStream
    /// The ring holds everything after the cursor.
    case current
    /// The cursor's epoch is over, or it is older than the ring: the client must reset.
    case gone
    /// Ahead of this worker: another worker (or host) has already seen a newer
    /// event or epoch, and this one will shortly. When the grace runs out a
    /// cursor of this epoch is handed back; one of another epoch (or forged
    /// so) is reset.
    case notYetKnown
  }

  func standing(of cursor: Cursor?) -> Standing {
    guard let epoch = stream.epoch else { return .streamUnknown }
    guard let cursor else { return stream.isFollowing ? .fresh : .awaitingStream }
    if cursor.epoch == epoch {
      if cursor.position > ring.newestPosition { return .notYetKnown }
      return ring.covers(after: cursor.position) ? .current : .gone
    }
    return pastEpochs.contains(cursor.epoch) ? .gone : .notYetKnown
  }

  /// The answer a poll gets without waiting or scanning, or nil when it must
  /// wait. A `.current` poll has nothing to be answered with here: it is
  /// scanned (``poll(_:now:)``), or, parked, it has been tested against every
  /// event after its cursor.
  func answerNow(_ standing: Standing) -> PollAnswer? {
    guard let current else { return nil }
    switch standing {
    case .streamUnknown, .notYetKnown, .awaitingStream, .current: return nil
    case .fresh: return .noEvents(cursor: current)
    case .gone: return .reset(current: current)
    }
  }

  struct Match {
    let answer: PollAnswer
    let eventCount: Int
  }

  /// The events among `events` (just appended) that the poll's subscriptions
  /// match, or nil when none does.
  func matching(_ poll: ChangePoll, in events: some Collection<ChangeEvent>, epoch: UInt64) -> Match? {
    var matched: [MatchedEvent] = []
    var through = ring.newestPosition
    for event in events {
      let matches = poll.subscriptions.judge(event)
      guard !matches.isEmpty else { continue }
      matched.append(MatchedEvent(event: event, cursor: Cursor(epoch: epoch, position: event.position), matches))
      if matched.count == maximumEventsPerAnswer {
        through = event.position
        break
      }
    }
    guard !matched.isEmpty else { return nil }
    return Match(
      answer: .events(matched, through: Cursor(epoch: epoch, position: through)), eventCount: matched.count)
  }

  // MARK: Leaving the lot

  /// Polls whose time is up, answered with no events and the newest cursor.
  mutating func expire(now: Duration) -> Deliveries {
    var deliveries = Deliveries()
    while let soonest = deadlines.min, soonest.at <= now {
      deadlines.removeMin()
      guard let poll = parked.removeValue(forKey: soonest.id) else { continue }
      deliveries.add(soonest.id, parkedAnswer(poll))
    }
    return deliveries
  }

  /// The poll's client went away: take it out, unanswered. False when it had left already.
  mutating func abandon(id: PollID) -> Bool {
    parked.removeValue(forKey: id) != nil
  }

  /// Shutting down: every parked poll is answered at once with the newest
  /// cursor, so that its client comes straight back (to another worker).
  mutating func releaseAll() -> Deliveries {
    isDraining = true
    var deliveries = Deliveries()
    for (id, poll) in parked { deliveries.add(id, parkedAnswer(poll)) }
    parked.removeAll()
    deadlines = Heap()
    return deliveries
  }

  /// A parked poll leaving without a match. Every event appended while it
  /// waited was tested against it (a new epoch or a gap answers it at once, in
  /// `streamStarted`), so a cursor of this epoch that the ring has since moved
  /// past missed nothing: the newest cursor, not a reset. (Otherwise every
  /// row view would reload after any transaction larger than the ring.)
  private func parkedAnswer(_ poll: ChangePoll) -> PollAnswer {
    if let current, let cursor = poll.cursor, cursor.epoch == current.epoch, cursor.position <= current.position {
      return .noEvents(cursor: current)
    }
    return timeoutAnswer(poll)
  }

  private func timeoutAnswer(_ poll: ChangePoll) -> PollAnswer {
    guard let current else { return .streamUnavailable }
    let standing = standing(of: poll.cursor)
    // A cursor the worker cannot place yet, handed back rather than reset:
    // - while it shuts down before it caught up with the client (another
    //   worker answered it sooner): the next worker can judge the cursor,
    //   this one cannot, even of an epoch it does not know;
    // - ahead in this worker's epoch: another worker, or another host on the
    //   same database (the wal source's epoch names the database's history),
    //   has seen it, and this one will. A reset would reload the client for a
    //   host that is merely behind (catching up after a restart). A forged
    //   cursor ahead gets no events until the stream gets there, which harms
    //   only its sender.
    if standing == .notYetKnown, let cursor = poll.cursor, isDraining || cursor.epoch == stream.epoch {
      return .noEvents(cursor: cursor)
    }
    switch standing {
    // The stream still away: the last known position is better than no answer.
    case .current, .fresh, .awaitingStream: return .noEvents(cursor: current)
    case .gone, .notYetKnown, .streamUnknown: return .reset(current: current)
    }
  }

}
