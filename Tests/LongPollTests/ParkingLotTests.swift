import ChangeStream
import JSON
import Testing

@testable import LongPoll

/// An answer reduced to what a test compares.
enum Seen: Equatable {
  case events(keys: [String], matches: [[Int]], through: Cursor)
  case noEvents(Cursor)
  case reset(Cursor)
  case streamUnavailable

  init(_ answer: PollAnswer) {
    switch answer {
    case .events(let matched, let through):
      self = .events(
        keys: matched.map { $0.event.key.scalarText ?? "?" }, matches: matched.map(\.matches), through: through)
    case .noEvents(let cursor): self = .noEvents(cursor)
    case .reset(let cursor): self = .reset(cursor)
    case .streamUnavailable: self = .streamUnavailable
    }
  }
}

extension Deliveries {
  /// Each poll with what it gets, in the order they were delivered.
  var seen: [(id: UInt64, answer: Seen)] { recipients.map { ($0.id, Seen(answers[$0.answer])) } }
}

extension ParkingLot.AppendOutcome {
  var deliveries: Deliveries? {
    if case .appended(let deliveries) = self { return deliveries }
    return nil
  }
}

func event(_ seq: UInt64, id: Int, table: String = "t") -> ChangeEvent {
  ChangeEvent(
    seq: seq,
    payload: Array(
      #"{"table":"\#(table)","op":"insert","key":\#(id),"mtime":"2024-01-01T00:00:00Z","new":{"id":\#(id)},"old":null}"#
        .utf8))
}

extension ParkingLot {
  /// A poll decided as the hub decides it: its scans run (here, at once)
  /// until it is answered or parked.
  mutating func settle(_ poll: ChangePoll, now: Duration) -> PollDecision {
    var decision = self.poll(poll, now: now)
    while case .scan(let pending) = decision { decision = finishScan(pending, pending.run(), now: now) }
    return decision
  }
}

func poll(_ cursor: Cursor?, _ subscriptions: [Subscription] = [Subscription(table: "t")]) -> ChangePoll {
  ChangePoll(cursor: cursor, subscriptions: subscriptions, timeout: .seconds(25))
}

@Suite struct ParkingLotTests {
  let epoch: UInt64 = 0xE1
  func at(_ seq: UInt64, epoch: UInt64? = nil) -> Cursor { Cursor(epoch: epoch ?? self.epoch, seq: seq) }

  func started(ringCapacity: Int = 4) -> ParkingLot {
    var lot = ParkingLot(ringCapacity: ringCapacity)
    _ = lot.streamStarted(at: at(0), resumed: false)
    return lot
  }

  func parkedID(_ decision: ParkingLot.PollDecision) -> UInt64? {
    if case .park(let id) = decision { return id }
    return nil
  }

  func answer(_ decision: ParkingLot.PollDecision) -> Seen? {
    if case .answer(let answer) = decision { return Seen(answer) }
    return nil
  }

  @Test func theStreamIsUnknownThenFollowedThenInterruptedThenFollowedAgain() {
    var lot = ParkingLot(ringCapacity: 4)
    #expect(lot.stream == .unknown)
    #expect(lot.current == nil)
    lot.streamInterrupted()
    #expect(lot.stream == .unknown, "nothing was followed, so nothing is interrupted")
    _ = lot.streamStarted(at: at(3), resumed: false)
    #expect(lot.stream == .following(epoch: epoch))
    lot.streamInterrupted()
    #expect(lot.stream == .interrupted(epoch: epoch))
    #expect(lot.current == at(3), "the last position stays known while the stream is away")
    _ = lot.streamStarted(at: at(0, epoch: epoch + 1), resumed: false)
    #expect(lot.stream == .following(epoch: epoch + 1))
    #expect(lot.pastEpochs == [epoch])
  }

  @Test func pollsBeforeTheStreamIsKnownWaitThenGetAnswered() {
    var lot = ParkingLot(ringCapacity: 4)
    let id = parkedID(lot.settle(poll(nil), now: .zero))
    #expect(id != nil, "a poll must wait until the stream's position is known")
    let deliveries = lot.streamStarted(at: at(3), resumed: false)
    #expect(deliveries.seen.map(\.id) == [id])
    #expect(deliveries.seen.map(\.answer) == [.noEvents(at(3))])
  }

  @Test func aWorkerThatNeverFollowedAnswersTimeoutsWithStreamUnavailable() {
    var lot = ParkingLot(ringCapacity: 4)
    _ = lot.settle(poll(nil), now: .zero)
    #expect(lot.expire(now: .seconds(25)).seen.map(\.answer) == [.streamUnavailable])
  }

  @Test func pollsThatAgreeShareOneAnswerAndPollsThatDifferGetTheirOwn() {
    var lot = started()
    _ = lot.append([event(1, id: 1)])
    for _ in 0..<3 { _ = lot.settle(poll(at(1)), now: .zero) }
    // An older cursor, parked because event 1 is not its row.
    _ = lot.settle(poll(at(0), [Subscription(table: "t", filters: ["id": "2"])]), now: .zero)
    _ = lot.settle(poll(at(1), [Subscription(table: "u"), Subscription(table: "t")]), now: .zero)
    let deliveries = lot.append([event(2, id: 2)]).deliveries!
    #expect(deliveries.recipients.count == 5)
    #expect(deliveries.answers.count == 3, "three polls agree: one answer for them, one each for the others")
    let seen = Set(deliveries.seen.map { "\($0.answer)" })
    #expect(seen.count == 2, "the row-filtered poll happens to get the same events; the other differs in matches")
    #expect(deliveries.seen.filter { $0.answer == .events(keys: ["2"], matches: [[1]], through: at(2)) }.count == 1)
    #expect(lot.eventsDelivered == 5)
  }

  @Test func pollsLeavingTogetherWithNoEventsShareOneAnswer() {
    var lot = started()
    for _ in 0..<3 { _ = lot.settle(poll(at(0), [Subscription(table: "other")]), now: .zero) }
    let expired = lot.expire(now: .seconds(25))
    #expect(expired.recipients.count == 3)
    #expect(expired.answers.count == 1)
    #expect(expired.seen.map(\.answer) == Array(repeating: .noEvents(at(0)), count: 3))
  }

  @Test func parkedPollsAreAnsweredByMatchingEventsOnly() {
    var lot = started()
    let all = parkedID(lot.settle(poll(at(0)), now: .zero))
    let rowTwo = parkedID(lot.settle(poll(at(0), [Subscription(table: "t", filters: ["id": "2"])]), now: .zero))
    let first = lot.append([event(1, id: 1)]).deliveries!
    #expect(first.seen.map(\.id) == [all])
    #expect(lot.parked.count == 1)
    let second = lot.append([event(2, id: 2)]).deliveries!
    #expect(second.seen.map(\.id) == [rowTwo])
    #expect(second.seen.map(\.answer) == [.events(keys: ["2"], matches: [[0]], through: at(2))])
  }

  @Test func eventsThatDoNotFollowTheRingAreOutOfOrderAndChangeNothing() {
    var lot = started()
    _ = lot.settle(poll(at(0)), now: .zero)
    #expect(lot.append([event(2, id: 2)]).deliveries?.recipients.count == 1, "positions need not be consecutive")
    _ = lot.settle(poll(at(2)), now: .zero)
    guard case .outOfOrder(let newest, let received) = lot.append([event(2, id: 2)]) else {
      Issue.record("2 again after 2: out of order")
      return
    }
    #expect((newest, received) == (StreamPosition(major: 2), StreamPosition(major: 2)))
    guard case .outOfOrder(let newestInside, let receivedInside) = lot.append([event(4, id: 4), event(3, id: 3)])
    else {
      Issue.record("4 then 3: out of order")
      return
    }
    #expect((newestInside, receivedInside) == (StreamPosition(major: 4), StreamPosition(major: 3)))
    #expect(lot.ring.newestPosition == StreamPosition(major: 2), "nothing of a batch out of order is appended")
    #expect(lot.parked.count == 1, "and no poll is answered by it")
    #expect(lot.append([]).deliveries?.isEmpty == true)
    #expect(lot.append([event(3, id: 3)]).deliveries?.recipients.count == 1)
  }

  @Test func aCursorBehindTheRingOrFromAnEndedEpochResetsAtOnce() {
    var lot = started()
    _ = lot.append((1...6).map { event(UInt64($0), id: $0) })
    _ = lot.streamStarted(at: at(0, epoch: epoch + 1), resumed: false)
    _ = lot.append((1...6).map { event(UInt64($0), id: $0) })
    let current = at(6, epoch: epoch + 1)
    #expect(answer(lot.settle(poll(at(1, epoch: epoch + 1)), now: .zero)) == .reset(current))
    #expect(answer(lot.settle(poll(at(6)), now: .zero)) == .reset(current))
    #expect(
      answer(lot.settle(poll(at(2, epoch: epoch + 1)), now: .zero))
        == .events(keys: ["3", "4", "5", "6"], matches: [[0], [0], [0], [0]], through: current))
  }

  @Test func aCursorAheadOfThisWorkerInItsEpochWaitsBrieflyThenKeepsItsCursor() {
    // Another host (the wal source: every host shares the epoch) or worker is
    // ahead, and this one will get there: after the grace the client keeps
    // its cursor and polls again, maybe elsewhere. A reset would reload it
    // for nothing (a host catching up after a restart reset every client
    // that came to it from the others).
    var lot = started()
    #expect(parkedID(lot.settle(poll(at(3)), now: .zero)) != nil, "it may be from a worker that is ahead")
    #expect(lot.expire(now: ParkingLot.graceForUnknownCursors - .milliseconds(1)).isEmpty)
    #expect(lot.expire(now: ParkingLot.graceForUnknownCursors).seen.map(\.answer) == [.noEvents(at(3))])
    _ = lot.settle(poll(at(3)), now: .zero)
    lot.streamInterrupted()
    #expect(
      lot.expire(now: ParkingLot.graceForUnknownCursors).seen.map(\.answer) == [.noEvents(at(3))],
      "nor while its stream is away")
  }

  @Test func aCursorOfAnEpochThisWorkerDoesNotKnowWaitsBrieflyThenResets() {
    var lot = started()
    #expect(parkedID(lot.settle(poll(at(1, epoch: epoch + 7)), now: .zero)) != nil, "a new epoch may be coming")
    #expect(lot.expire(now: ParkingLot.graceForUnknownCursors - .milliseconds(1)).isEmpty)
    #expect(lot.expire(now: ParkingLot.graceForUnknownCursors).seen.map(\.answer) == [.reset(at(0))])
  }

  @Test func aWorkerThatCatchesUpAnswersOnlyWhatTheCursorHasNotSeen() {
    var lot = started()
    _ = lot.settle(poll(at(2)), now: .zero)
    #expect(lot.append([event(1, id: 1), event(2, id: 2)]).deliveries?.isEmpty == true)
    let deliveries = lot.append([event(3, id: 3)]).deliveries!
    #expect(deliveries.seen.map(\.answer) == [.events(keys: ["3"], matches: [[0]], through: at(3))])
  }

  @Test func aPollInAnEpochNotYetReachedIsAnsweredWhenItsEventsCome() {
    var lot = started()
    _ = lot.settle(poll(at(0, epoch: epoch + 1)), now: .zero)
    #expect(lot.streamStarted(at: at(0, epoch: epoch + 1), resumed: false).isEmpty)
    let deliveries = lot.append([event(1, id: 1)]).deliveries!
    #expect(deliveries.seen.map(\.answer) == [.events(keys: ["1"], matches: [[0]], through: at(1, epoch: epoch + 1))])
  }

  @Test func aNewEpochResetsParkedPollsAndAResumedStreamKeepsThem() {
    var lot = started()
    _ = lot.settle(poll(at(0)), now: .zero)
    #expect(lot.streamStarted(at: at(0), resumed: true).isEmpty)
    #expect(lot.parked.count == 1)
    let deliveries = lot.streamStarted(at: at(0, epoch: epoch + 1), resumed: false)
    #expect(deliveries.seen.map(\.answer) == [.reset(at(0, epoch: epoch + 1))])
    #expect(lot.parked.isEmpty)
  }

  @Test func aPollWithoutACursorWaitsForAnInterruptedStream() {
    // notifyd restarted: until this worker hears of the new epoch, its newest
    // position is the old epoch's, and a client handed it would be reset.
    var lot = started()
    lot.streamInterrupted()
    #expect(parkedID(lot.settle(poll(nil), now: .zero)) != nil, "answered while the stream was away")
    let next = at(5, epoch: epoch + 1)
    #expect(lot.streamStarted(at: next, resumed: false).seen.map(\.answer) == [.noEvents(next)])

    // The stream comes back where it was: answered at once.
    lot.streamInterrupted()
    _ = lot.settle(poll(nil), now: .zero)
    #expect(lot.streamStarted(at: next, resumed: true).seen.map(\.answer) == [.noEvents(next)])

    // It stays away: after a short grace, the last known position.
    lot.streamInterrupted()
    _ = lot.settle(poll(nil), now: .zero)
    #expect(lot.expire(now: .milliseconds(999)).isEmpty)
    #expect(lot.expire(now: ParkingLot.graceForUnknownCursors).seen.map(\.answer) == [.noEvents(next)])
  }

  @Test func timeoutsAnswerWithTheNewestCursorAndNoEvents() {
    var lot = started()
    _ = lot.settle(poll(at(0), [Subscription(table: "other")]), now: .zero)
    _ = lot.append([event(1, id: 1)])
    #expect(lot.expire(now: .seconds(24)).isEmpty)
    #expect(lot.expire(now: .seconds(25)).seen.map(\.answer) == [.noEvents(at(1))])
  }

  @Test func aPollParkedWhileTheRingMovesPastItsCursorTimesOutWithoutAReset() {
    // Ring of 4: six events the poll does not match pass while it waits.
    var lot = started()
    let other = [Subscription(table: "other")]
    _ = lot.settle(poll(at(0), other), now: .zero)
    _ = lot.settle(poll(at(0), other), now: .seconds(1))
    #expect(lot.append((1...6).map { event(UInt64($0), id: $0) }).deliveries?.isEmpty == true)
    #expect(lot.expire(now: .seconds(25)).seen.map(\.answer) == [.noEvents(at(6))])
    #expect(lot.releaseAll().seen.map(\.answer) == [.noEvents(at(6))])
    #expect(lot.parked.isEmpty)
    // A poll that arrives with that old cursor now has missed events.
    #expect(answer(lot.settle(poll(at(0), other), now: .seconds(30))) == .reset(at(6)))
  }

  @Test func abandonedPollsLeaveAndDrainingAnswersAtOnce() {
    var lot = started()
    let id = parkedID(lot.settle(poll(at(0)), now: .zero))!
    let first = lot.abandon(id: id)
    let second = lot.abandon(id: id)
    #expect(first)
    #expect(!second, "gone already")
    #expect(lot.parked.isEmpty)
    #expect(lot.expire(now: .seconds(100)).isEmpty, "an abandoned poll's deadline is void")
    _ = lot.settle(poll(at(0)), now: .zero)
    #expect(lot.releaseAll().recipients.count == 1)
    #expect(answer(lot.settle(poll(at(0)), now: .zero)) == .noEvents(at(0)), "a draining worker parks nothing")
  }

  @Test func aDrainingWorkerBehindTheClientHandsItsCursorBackInsteadOfResettingIt() {
    // Another worker has already answered with event 2 (or a newer epoch);
    // this one, shutting down, has seen event 1 only. It cannot judge the
    // cursor, and the next worker can: the client keeps its cursor.
    var lot = started()
    _ = lot.append([event(1, id: 1)])
    _ = lot.settle(poll(at(2)), now: .zero)
    #expect(lot.releaseAll().seen.map(\.answer) == [.noEvents(at(2))], "parked within the grace when the drain began")
    #expect(answer(lot.settle(poll(at(2)), now: .zero)) == .noEvents(at(2)), "arrived during the drain")
    #expect(answer(lot.settle(poll(at(0, epoch: epoch + 1)), now: .zero)) == .noEvents(at(0, epoch: epoch + 1)))
    #expect(
      answer(lot.settle(poll(at(0)), now: .zero)) == .events(keys: ["1"], matches: [[0]], through: at(1)),
      "a cursor it can judge gets its answer")
  }

  @Test func answersAreCappedAndTheCursorStopsAtTheLastIncluded() {
    var lot = ParkingLot(ringCapacity: 10, maximumEventsPerAnswer: 2)
    _ = lot.streamStarted(at: at(0), resumed: false)
    _ = lot.append((1...5).map { event(UInt64($0), id: $0) })
    #expect(
      answer(lot.settle(poll(at(0)), now: .zero)) == .events(keys: ["1", "2"], matches: [[0], [0]], through: at(2)))
  }
}
