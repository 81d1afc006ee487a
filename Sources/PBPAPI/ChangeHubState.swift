import ChangeStream
import HeapModule

/// Something that can be answered later: a parked FastCGI request, or a fake in tests.
public protocol PollResponder: AnyObject, Sendable {
  /// The connection to nginx, watched for a hang-up while parked.
  var socket: Int32 { get }
  func respond(_ response: HTTPResponse)
  /// The client went away: free what the request holds, write nothing.
  func abandon()
}

/// A poll the hub took out of the parking lot, with its answer.
public struct Delivery: Sendable {
  public let id: UInt64
  public let responder: any PollResponder
  public let response: HTTPResponse
}

/// A worker's view of the change stream and its parked polls: the state
/// machine behind ``ChangeHub``. Every event returns the polls it answers;
/// the caller writes the answers outside the lock.
struct ChangeHubState {
  struct ParkedPoll {
    let responder: any PollResponder
    let poll: ChangePoll
  }

  struct Deadline: Comparable {
    let at: Duration
    let id: UInt64
    static func < (lhs: Deadline, rhs: Deadline) -> Bool { (lhs.at, lhs.id) < (rhs.at, rhs.id) }
  }

  enum Decision {
    case answer(HTTPResponse)
    case park(id: UInt64)
  }

  /// nil until the first WELCOME from notifyd: before it no cursor can be judged.
  private(set) var epoch: UInt64?
  /// Whether the stream from notifyd is connected and greeted.
  var isFollowing = false
  private(set) var ring: ChangeRing<ChangeEvent>
  private(set) var parked: [UInt64: ParkedPoll] = [:]
  private var deadlines = Heap<Deadline>()
  private var nextID: UInt64 = 1
  /// Events per answer at most; a client further behind comes straight back for the rest.
  let maximumEventsPerAnswer: Int
  private(set) var eventsDelivered: UInt64 = 0
  /// Epochs this worker has seen end: a cursor of one of them must reset.
  private(set) var pastEpochs: Set<UInt64> = []

  init(ringCapacity: Int, maximumEventsPerAnswer: Int = 1000) {
    ring = ChangeRing(capacity: ringCapacity)
    self.maximumEventsPerAnswer = maximumEventsPerAnswer
  }

  /// The newest position, which snapshot reads hand out as their cursor.
  var current: Cursor? { epoch.map { Cursor(epoch: $0, seq: ring.newestSeq) } }

  // MARK: Polls

  /// Set when the worker shuts down: polls are answered at once from then on.
  private(set) var isDraining = false

  mutating func poll(_ poll: ChangePoll, responder: any PollResponder, now: Duration) -> Decision {
    let standing = standing(of: poll.cursor)
    if let answer = answerNow(poll, standing) { return .answer(answer) }
    if isDraining { return .answer(timeoutAnswer(poll)) }
    let id = nextID
    nextID += 1
    parked[id] = ParkedPoll(responder: responder, poll: poll)
    // A cursor this worker cannot place yet gets a short wait, not the whole timeout.
    let wait =
      standing == .notYetKnown || standing == .awaitingStream
      ? min(poll.timeout, Self.graceForUnknownCursors) : poll.timeout
    deadlines.insert(Deadline(at: now + wait, id: id))
    return .park(id: id)
  }

  /// How long a cursor ahead of this worker may wait for the worker to catch up.
  static let graceForUnknownCursors: Duration = .seconds(1)

  enum Standing: Equatable {
    /// The stream's position is not known yet (no WELCOME).
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
    /// Ahead of this worker: another worker has already seen a newer event or
    /// epoch, and this one will shortly. (A forged cursor looks the same, and
    /// is reset when the grace runs out.)
    case notYetKnown
  }

  func standing(of cursor: Cursor?) -> Standing {
    guard let epoch else { return .streamUnknown }
    guard let cursor else { return isFollowing ? .fresh : .awaitingStream }
    if cursor.epoch == epoch {
      if cursor.seq > ring.newestSeq { return .notYetKnown }
      return ring.events(after: cursor.seq) == nil ? .gone : .current
    }
    return pastEpochs.contains(cursor.epoch) ? .gone : .notYetKnown
  }

  /// The answer a poll gets without waiting, or nil when it must wait.
  private mutating func answerNow(_ poll: ChangePoll, _ standing: Standing) -> HTTPResponse? {
    guard let epoch, let current else { return nil }
    switch standing {
    case .streamUnknown, .notYetKnown, .awaitingStream: return nil
    case .fresh: return ChangeResponses.noEvents(cursor: current)
    case .gone: return ChangeResponses.reset(current: current)
    case .current:
      guard let found = answer(poll, with: ring.events(after: poll.cursor!.seq) ?? [], epoch: epoch) else {
        return nil
      }
      eventsDelivered += UInt64(found.eventCount)
      return found.response
    }
  }

  struct Answer {
    let response: HTTPResponse
    let eventCount: Int
  }

  /// An answer with the events among `events` that the poll's subscriptions
  /// match, or nil when none does.
  private func answer(_ poll: ChangePoll, with events: some Collection<ChangeEvent>, epoch: UInt64) -> Answer? {
    var matched: [(event: ChangeEvent, matches: [Int])] = []
    var through = ring.newestSeq
    for event in events {
      let matches = poll.subscriptions.indices.filter { poll.subscriptions[$0].matches(event) }
      guard !matches.isEmpty else { continue }
      matched.append((event, matches))
      if matched.count == maximumEventsPerAnswer {
        through = event.seq
        break
      }
    }
    guard !matched.isEmpty else { return nil }
    return Answer(
      response: ChangeResponses.events(matched, epoch: epoch, cursor: Cursor(epoch: epoch, seq: through)),
      eventCount: matched.count)
  }

  // MARK: The stream

  /// notifyd said where the stream stands. Unless it resumed our position,
  /// everything we held is void: parked polls of an old epoch are told to reset.
  mutating func streamStarted(at position: Cursor, resumed: Bool) -> [Delivery] {
    isFollowing = true
    // Polls without a cursor waited for the stream to come back.
    if resumed && position.epoch == epoch { return reevaluateParked() }
    if let old = epoch, old != position.epoch {
      if pastEpochs.count >= 64 { pastEpochs.removeAll() }
      pastEpochs.insert(old)
    }
    epoch = position.epoch
    ring.reset(newestSeq: position.seq)
    return reevaluateParked()
  }

  /// What an answer depends on, besides the events appended together: polls
  /// that agree on it get the same answer, built once. (Thousands of browsers
  /// watching the same table at the same cursor are the common case.)
  private struct AnswerKey: Hashable {
    let after: UInt64
    let subscriptions: [Subscription]
  }

  /// New events, in sequence order. Returns the parked polls they answer.
  mutating func append(_ events: [ChangeEvent]) -> [Delivery] {
    guard let epoch else { return [] }
    for event in events { ring.append(event) }
    var deliveries: [Delivery] = []
    var answers: [AnswerKey: Answer?] = [:]
    for (id, entry) in parked {
      // A poll still ahead of us, or in an epoch we have not reached, waits on.
      guard let cursor = entry.poll.cursor, cursor.epoch == epoch, cursor.seq < ring.newestSeq else { continue }
      let key = AnswerKey(after: cursor.seq, subscriptions: entry.poll.subscriptions)
      let found: Answer?
      if let known = answers[key] {
        found = known
      } else {
        found = answer(entry.poll, with: events.drop { $0.seq <= cursor.seq }, epoch: epoch)
        answers[key] = .some(found)
      }
      if let found {
        eventsDelivered += UInt64(found.eventCount)
        parked[id] = nil
        deliveries.append(Delivery(id: id, responder: entry.responder, response: found.response))
      }
    }
    return deliveries
  }

  private mutating func reevaluateParked() -> [Delivery] {
    var deliveries: [Delivery] = []
    for (id, entry) in parked {
      if let response = answerNow(entry.poll, standing(of: entry.poll.cursor)) {
        parked[id] = nil
        deliveries.append(Delivery(id: id, responder: entry.responder, response: response))
      }
    }
    return deliveries
  }

  // MARK: Leaving the lot

  /// Polls whose time is up, answered with no events and the newest cursor.
  mutating func expire(now: Duration) -> [Delivery] {
    var deliveries: [Delivery] = []
    while let soonest = deadlines.min, soonest.at <= now {
      deadlines.removeMin()
      guard let entry = parked.removeValue(forKey: soonest.id) else { continue }
      deliveries.append(Delivery(id: soonest.id, responder: entry.responder, response: parkedAnswer(entry.poll)))
    }
    return deliveries
  }

  /// The poll's client went away: take it out, unanswered.
  mutating func abandon(id: UInt64) -> (any PollResponder)? {
    parked.removeValue(forKey: id)?.responder
  }

  /// Shutting down: every parked poll is answered at once with the newest
  /// cursor, so that its client comes straight back (to another worker).
  mutating func releaseAll() -> [Delivery] {
    isDraining = true
    let deliveries = parked.map { id, entry in
      Delivery(id: id, responder: entry.responder, response: parkedAnswer(entry.poll))
    }
    parked.removeAll()
    deadlines = Heap()
    return deliveries
  }

  /// A parked poll leaving without a match. Every event appended while it
  /// waited was tested against it (a new epoch or a gap answers it at once, in
  /// `streamStarted`), so a cursor of this epoch that the ring has since moved
  /// past missed nothing: the newest cursor, not a reset. (Otherwise every
  /// row view would reload after any transaction larger than the ring.)
  private func parkedAnswer(_ poll: ChangePoll) -> HTTPResponse {
    if let current, let cursor = poll.cursor, cursor.epoch == current.epoch, cursor.seq <= current.seq {
      return ChangeResponses.noEvents(cursor: current)
    }
    return timeoutAnswer(poll)
  }

  private func timeoutAnswer(_ poll: ChangePoll) -> HTTPResponse {
    guard let current else { return HTTPResponse(error: .streamUnavailable()) }
    switch standing(of: poll.cursor) {
    // The stream still away: the last known position is better than no answer.
    case .current, .fresh, .awaitingStream: return ChangeResponses.noEvents(cursor: current)
    case .gone, .notYetKnown, .streamUnknown: return ChangeResponses.reset(current: current)
    }
  }

  var nextDeadline: Duration? { deadlines.min?.at }
}
