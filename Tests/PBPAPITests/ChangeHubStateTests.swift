import ChangeStream
import JSON
import Synchronization
import Testing

@testable import PBPAPI

final class RecordingResponder: PollResponder {
  let socket: Int32 = -1
  private let answers = Mutex<[HTTPResponse]>([])
  func respond(_ response: HTTPResponse) { answers.withLock { $0.append(response) } }
  func abandon() {}
  var responses: [HTTPResponse] { answers.withLock { $0 } }
}

@Suite struct ChangeHubStateTests {
  let epoch: UInt64 = 0xE1

  func event(_ seq: UInt64, id: Int, table: String = "t") -> ChangeEvent {
    ChangeEvent(
      seq: seq, payload: Array(#"{"table":"\#(table)","op":"insert","key":\#(id),"new":{"id":\#(id)},"old":null}"#.utf8)
    )
  }

  func poll(_ cursor: Cursor?, _ subscriptions: [Subscription] = [Subscription(table: "t")]) -> ChangePoll {
    ChangePoll(cursor: cursor, subscriptions: subscriptions, timeout: .seconds(25))
  }

  func body(_ response: HTTPResponse) throws -> JSONValue { try JSONParser.parse(response.body) }

  func started() -> ChangeHubState {
    var state = ChangeHubState(ringCapacity: 4)
    _ = state.streamStarted(at: Cursor(epoch: epoch, seq: 0), resumed: false)
    return state
  }

  @Test func pollsBeforeTheStreamIsKnownWaitThenGetAnswered() throws {
    var state = ChangeHubState(ringCapacity: 4)
    let responder = RecordingResponder()
    guard case .park = state.poll(poll(nil), responder: responder, now: .zero) else {
      Issue.record("a poll must wait until the stream's position is known")
      return
    }
    let deliveries = state.streamStarted(at: Cursor(epoch: epoch, seq: 3), resumed: false)
    #expect(deliveries.count == 1)
    #expect(try body(deliveries[0].response)["cursor"] == .string(Cursor(epoch: epoch, seq: 3).description))
  }

  @Test func pollsThatAgreeGetTheSameAnswerAndPollsThatDifferTheirOwn() throws {
    var state = started()
    _ = state.append([event(1, id: 1)])
    for _ in 0..<3 { _ = state.poll(poll(Cursor(epoch: epoch, seq: 1)), responder: RecordingResponder(), now: .zero) }
    // An older cursor, parked because event 1 is not its row.
    _ = state.poll(
      poll(Cursor(epoch: epoch, seq: 0), [Subscription(table: "t", filters: ["id": "2"])]),
      responder: RecordingResponder(), now: .zero)
    _ = state.poll(
      poll(Cursor(epoch: epoch, seq: 1), [Subscription(table: "u"), Subscription(table: "t")]),
      responder: RecordingResponder(), now: .zero)
    let deliveries = state.append([event(2, id: 2)])
    #expect(deliveries.count == 5)
    func events(_ value: JSONValue) -> [JSONValue] {
      if case .array(let events) = value["events"] { return events }
      return []
    }
    let bodies = try deliveries.map { try body($0.response) }
    #expect(bodies.map { events($0).count } == [1, 1, 1, 1, 1])
    // The row-filtered poll happens to get the same text; the two-subscription one differs in "matches".
    #expect(Set(deliveries.map(\.response.body)).count == 2)
    let matches = bodies.compactMap { events($0).first?["matches"] }
    #expect(matches.filter { $0 == .array([.number("1")]) }.count == 1, "the two-subscription poll matches its second")
    #expect(state.eventsDelivered == 5)
  }

  @Test func parkedPollsAreAnsweredByMatchingEventsOnly() throws {
    var state = started()
    let all = RecordingResponder()
    let rowTwo = RecordingResponder()
    _ = state.poll(poll(Cursor(epoch: epoch, seq: 0)), responder: all, now: .zero)
    _ = state.poll(
      poll(Cursor(epoch: epoch, seq: 0), [Subscription(table: "t", filters: ["id": "2"])]), responder: rowTwo,
      now: .zero)
    let first = state.append([event(1, id: 1)])
    #expect(first.map(\.id) == [1])
    #expect(state.parked.count == 1)
    let second = state.append([event(2, id: 2)])
    #expect(second.count == 1)
    let answer = try body(second[0].response)
    #expect(answer["cursor"] == .string("00000000000000e1:2"))
    guard case .array(let events)? = answer["events"] else {
      Issue.record("no events")
      return
    }
    #expect(events.count == 1)
    #expect(events[0]["key"] == .number("2"))
    #expect(events[0]["matches"] == .array([.number("0")]))
  }

  @Test func aCursorBehindTheRingOrFromAnEndedEpochResetsAtOnce() {
    var state = started()
    _ = state.append((1...6).map { event(UInt64($0), id: $0) })
    _ = state.streamStarted(at: Cursor(epoch: epoch + 1, seq: 0), resumed: false)
    _ = state.append((1...6).map { event(UInt64($0), id: $0) })
    for cursor in [Cursor(epoch: epoch + 1, seq: 1), Cursor(epoch: epoch, seq: 6)] {
      guard case .answer(let response) = state.poll(poll(cursor), responder: RecordingResponder(), now: .zero) else {
        Issue.record("\(cursor) must be answered at once")
        continue
      }
      #expect(response.status == 409)
    }
    guard
      case .answer(let response) = state.poll(
        poll(Cursor(epoch: epoch + 1, seq: 2)), responder: RecordingResponder(), now: .zero)
    else {
      Issue.record("a cursor the ring still covers is answered from it")
      return
    }
    #expect(response.status == 200)
  }

  @Test func aCursorAheadOfThisWorkerWaitsBrieflyThenResets() {
    var state = started()
    for cursor in [Cursor(epoch: epoch, seq: 3), Cursor(epoch: epoch + 7, seq: 1)] {
      guard case .park = state.poll(poll(cursor), responder: RecordingResponder(), now: .zero) else {
        Issue.record("\(cursor) may be from a worker that is ahead: it must wait")
        continue
      }
    }
    let expired = state.expire(now: ChangeHubState.graceForUnknownCursors)
    #expect(expired.map(\.response.status) == [409, 409])
  }

  @Test func aWorkerThatCatchesUpAnswersOnlyWhatTheCursorHasNotSeen() throws {
    var state = started()
    _ = state.poll(poll(Cursor(epoch: epoch, seq: 2)), responder: RecordingResponder(), now: .zero)
    #expect(state.append([event(1, id: 1), event(2, id: 2)]).isEmpty)
    let deliveries = state.append([event(3, id: 3)])
    #expect(deliveries.count == 1)
    guard case .array(let events)? = try body(deliveries[0].response)["events"] else {
      Issue.record("no events")
      return
    }
    #expect(events.map { $0["key"] } == [.number("3")])
  }

  @Test func aPollInAnEpochNotYetReachedIsAnsweredWhenItStarts() {
    var state = started()
    _ = state.poll(poll(Cursor(epoch: epoch + 1, seq: 0)), responder: RecordingResponder(), now: .zero)
    #expect(state.streamStarted(at: Cursor(epoch: epoch + 1, seq: 0), resumed: false).isEmpty)
    let deliveries = state.append([event(1, id: 1)])
    #expect(deliveries.map(\.response.status) == [200])
  }

  @Test func aNewEpochResetsParkedPolls() {
    var state = started()
    _ = state.poll(poll(Cursor(epoch: epoch, seq: 0)), responder: RecordingResponder(), now: .zero)
    let deliveries = state.streamStarted(at: Cursor(epoch: epoch + 1, seq: 0), resumed: false)
    #expect(deliveries.map(\.response.status) == [409])
    #expect(state.parked.isEmpty)
  }

  @Test func aResumedStreamKeepsParkedPolls() {
    var state = started()
    _ = state.poll(poll(Cursor(epoch: epoch, seq: 0)), responder: RecordingResponder(), now: .zero)
    #expect(state.streamStarted(at: Cursor(epoch: epoch, seq: 0), resumed: true).isEmpty)
    #expect(state.parked.count == 1)
  }

  @Test func aPollWithoutACursorWaitsForAnInterruptedStream() throws {
    // notifyd restarted: until this worker hears of the new epoch, its newest
    // position is the old epoch's, and a client handed it would be reset.
    var state = started()
    state.isFollowing = false
    let responder = RecordingResponder()
    guard case .park = state.poll(poll(nil), responder: responder, now: .zero) else {
      Issue.record("a poll without a cursor was answered while the stream was away")
      return
    }
    let deliveries = state.streamStarted(at: Cursor(epoch: epoch + 1, seq: 5), resumed: false)
    try #require(deliveries.count == 1)
    #expect(try body(deliveries[0].response)["cursor"] == .string("00000000000000e2:5"))

    // The stream comes back where it was: answered at once.
    state.isFollowing = false
    _ = state.poll(poll(nil), responder: responder, now: .zero)
    let resumed = state.streamStarted(at: Cursor(epoch: epoch + 1, seq: 5), resumed: true)
    try #require(resumed.count == 1)
    #expect(try body(resumed[0].response)["cursor"] == .string("00000000000000e2:5"))

    // It stays away: after a short grace, the last known position.
    state.isFollowing = false
    _ = state.poll(poll(nil), responder: responder, now: .zero)
    #expect(state.expire(now: .milliseconds(999)).isEmpty)
    let late = state.expire(now: ChangeHubState.graceForUnknownCursors)
    try #require(late.count == 1)
    #expect(late[0].response.status == 200)
    #expect(try body(late[0].response)["cursor"] == .string("00000000000000e2:5"))
  }

  @Test func timeoutsAnswerWithTheNewestCursorAndNoEvents() throws {
    var state = started()
    _ = state.poll(
      poll(Cursor(epoch: epoch, seq: 0), [Subscription(table: "other")]), responder: RecordingResponder(), now: .zero)
    _ = state.append([event(1, id: 1)])
    #expect(state.expire(now: .seconds(24)).isEmpty)
    let expired = state.expire(now: .seconds(25))
    #expect(expired.count == 1)
    let answer = try body(expired[0].response)
    #expect(answer["events"] == .array([]))
    #expect(answer["cursor"] == .string("00000000000000e1:1"))
  }

  @Test func aPollParkedWhileTheRingMovesPastItsCursorTimesOutWithoutAReset() throws {
    // Ring of 4: six events the poll does not match pass while it waits.
    var state = started()
    let other = [Subscription(table: "other")]
    _ = state.poll(poll(Cursor(epoch: epoch, seq: 0), other), responder: RecordingResponder(), now: .zero)
    _ = state.poll(poll(Cursor(epoch: epoch, seq: 0), other), responder: RecordingResponder(), now: .seconds(1))
    #expect(state.append((1...6).map { event(UInt64($0), id: $0) }).isEmpty)
    for delivery in state.expire(now: .seconds(25)) + state.releaseAll() {
      #expect(delivery.response.status == 200)
      let answer = try body(delivery.response)
      #expect(answer["events"] == .array([]))
      #expect(answer["cursor"] == .string("00000000000000e1:6"))
    }
    #expect(state.parked.isEmpty)
    // A poll that arrives with that old cursor now has missed events: reset.
    guard
      case .answer(let response) = state.poll(
        poll(Cursor(epoch: epoch, seq: 0), other), responder: RecordingResponder(), now: .seconds(30))
    else {
      Issue.record("a cursor behind the ring is answered at once")
      return
    }
    #expect(response.status == 409)
  }

  @Test func abandonedPollsLeaveAndDrainingAnswersAtOnce() {
    var state = started()
    guard
      case .park(let id) = state.poll(poll(Cursor(epoch: epoch, seq: 0)), responder: RecordingResponder(), now: .zero)
    else {
      Issue.record("must park")
      return
    }
    #expect(state.abandon(id: id) != nil)
    #expect(state.parked.isEmpty)
    #expect(state.expire(now: .seconds(100)).isEmpty, "an abandoned poll's deadline is void")
    _ = state.poll(poll(Cursor(epoch: epoch, seq: 0)), responder: RecordingResponder(), now: .zero)
    #expect(state.releaseAll().count == 1)
    guard
      case .answer(let response) = state.poll(
        poll(Cursor(epoch: epoch, seq: 0)), responder: RecordingResponder(), now: .zero)
    else {
      Issue.record("a draining worker parks nothing")
      return
    }
    #expect(response.status == 200)
  }

  @Test func answersAreCappedAndTheCursorStopsAtTheLastIncluded() throws {
    var state = ChangeHubState(ringCapacity: 10, maximumEventsPerAnswer: 2)
    _ = state.streamStarted(at: Cursor(epoch: epoch, seq: 0), resumed: false)
    _ = state.append((1...5).map { event(UInt64($0), id: $0) })
    guard
      case .answer(let response) = state.poll(
        poll(Cursor(epoch: epoch, seq: 0)), responder: RecordingResponder(), now: .zero)
    else {
      Issue.record("must answer")
      return
    }
    #expect(try body(response)["cursor"] == .string("00000000000000e1:2"))
  }
}
