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
  private(set) var ring: ChangeRing<ChangeEvent>
  private(set) var parked: [UInt64: ParkedPoll] = [:]
  private var deadlines = Heap<Deadline>()
  private var nextID: UInt64 = 1
  /// Events per answer at most; a client further behind comes straight back for the rest.
  let maximumEventsPerAnswer: Int
  private(set) var eventsDelivered: UInt64 = 0

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
    if let answer = answerNow(poll) { return .answer(answer) }
    if isDraining { return .answer(timeoutAnswer(poll)) }
    let id = nextID
    nextID += 1
    parked[id] = ParkedPoll(responder: responder, poll: poll)
    deadlines.insert(Deadline(at: now + poll.timeout, id: id))
    return .park(id: id)
  }

  /// The answer a poll gets without waiting, or nil when it must wait.
  private mutating func answerNow(_ poll: ChangePoll) -> HTTPResponse? {
    guard let epoch, let current else { return nil }
    guard let cursor = poll.cursor else { return ChangeResponses.noEvents(cursor: current) }
    guard cursor.epoch == epoch, let missed = ring.events(after: cursor.seq) else {
      return ChangeResponses.reset(current: current)
    }
    return answer(poll, with: missed, epoch: epoch)
  }

  /// An answer with the events among `events` that the poll's subscriptions
  /// match, or nil when none does.
  private mutating func answer(_ poll: ChangePoll, with events: some Collection<ChangeEvent>, epoch: UInt64)
    -> HTTPResponse?
  {
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
    eventsDelivered += UInt64(matched.count)
    return ChangeResponses.events(matched, epoch: epoch, cursor: Cursor(epoch: epoch, seq: through))
  }

  // MARK: The stream

  /// notifyd said where the stream stands. Unless it resumed our position,
  /// everything we held is void: parked polls of an old epoch are told to reset.
  mutating func streamStarted(at position: Cursor, resumed: Bool) -> [Delivery] {
    if resumed && position.epoch == epoch { return [] }
    epoch = position.epoch
    ring.reset(newestSeq: position.seq)
    return reevaluateParked()
  }

  /// New events, in sequence order. Returns the parked polls they answer.
  mutating func append(_ events: [ChangeEvent]) -> [Delivery] {
    guard let epoch else { return [] }
    for event in events { ring.append(event) }
    var deliveries: [Delivery] = []
    for (id, entry) in parked {
      if let response = answer(entry.poll, with: events, epoch: epoch) {
        parked[id] = nil
        deliveries.append(Delivery(id: id, responder: entry.responder, response: response))
      }
    }
    return deliveries
  }

  private mutating func reevaluateParked() -> [Delivery] {
    var deliveries: [Delivery] = []
    for (id, entry) in parked {
      if let response = answerNow(entry.poll) {
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
      deliveries.append(Delivery(id: soonest.id, responder: entry.responder, response: timeoutAnswer(entry.poll)))
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
      Delivery(id: id, responder: entry.responder, response: timeoutAnswer(entry.poll))
    }
    parked.removeAll()
    deadlines = Heap()
    return deliveries
  }

  private func timeoutAnswer(_ poll: ChangePoll) -> HTTPResponse {
    guard let current else { return HTTPResponse(error: .streamUnavailable()) }
    if let cursor = poll.cursor, cursor.epoch != current.epoch { return ChangeResponses.reset(current: current) }
    return ChangeResponses.noEvents(cursor: current)
  }

  var nextDeadline: Duration? { deadlines.min?.at }
}
