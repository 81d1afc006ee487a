import ChangeStream
import Testing

@testable import LongPoll

/// Polls behind the ring: scanned on a snapshot outside the lock, within a budget.
@Suite struct ParkingLotScanTests {
  let epoch: UInt64 = 0xE1
  func at(_ seq: UInt64) -> Cursor { Cursor(epoch: epoch, seq: seq) }

  func started(budget: Int) -> ParkingLot {
    var lot = ParkingLot(ringCapacity: 1000, scanBudget: budget)
    _ = lot.streamStarted(at: at(0), resumed: false)
    return lot
  }

  func answer(_ decision: ParkingLot.PollDecision) -> Seen? {
    if case .answer(let answer) = decision { return Seen(answer) }
    return nil
  }

  @Test func aPollThatUsesItsBudgetIsAnsweredAtOnceWithTheLastEventExaminedAndMissesNothing() {
    // An event of one column costs 2 units (3 when a filter passes): about ten events per answer.
    var lot = started(budget: 20)
    _ = lot.append((1...95).map { event(UInt64($0), id: $0) })
    let needle = [Subscription(table: "t", filters: ["id": "42"]), Subscription(table: "t", filters: ["id": "93"])]
    #expect(answer(lot.settle(poll(at(0), needle), now: .zero)) == .noEvents(at(10)), "not parked: it comes back")
    var cursor = at(0)
    var keys: [String] = []
    var answers = 0
    while true {
      answers += 1
      switch answer(lot.settle(poll(cursor, needle), now: .zero)) {
      case .noEvents(let next)?: cursor = next
      case .events(let found, let matches, let through)?:
        keys += found
        #expect(matches == found.map { $0 == "42" ? [0] : [1] })
        cursor = through
      default: Issue.record("parked or reset at \(cursor)")
      }
      if cursor == at(95) || answers > 20 { break }
    }
    #expect(keys == ["42", "93"], "each match once, in order")
    #expect(answers >= 9 && answers <= 12)
    #expect(lot.settle(poll(at(95), needle), now: .zero).isPark, "caught up: it waits")
  }

  @Test func eventsAppendedWhileAScanRanAreScannedBeforeThePollParks() {
    var lot = started(budget: 100)
    _ = lot.append((1...5).map { event(UInt64($0), id: $0) })
    let six = [Subscription(table: "t", filters: ["id": "6"])]
    guard case .scan(let pending) = lot.poll(poll(at(0), six), now: .zero) else {
      Issue.record("a poll behind the ring is scanned")
      return
    }
    let result = pending.run()
    #expect(lot.append([event(6, id: 6)]).deliveries?.isEmpty == true, "the poll is not parked yet")
    guard case .scan(let again) = lot.finishScan(pending, result, now: .zero) else {
      Issue.record("the event appended meanwhile must be scanned")
      return
    }
    #expect(
      answer(lot.finishScan(again, again.run(), now: .zero)) == .events(keys: ["6"], matches: [[0]], through: at(6)))
  }

  @Test func aPollParkedAfterItsScanWaitsFromWhereItScanned() {
    var lot = started(budget: 100)
    _ = lot.append((1...5).map { event(UInt64($0), id: $0) })
    let seven = [Subscription(table: "t", filters: ["id": "7"])]
    #expect(lot.settle(poll(at(0), seven), now: .zero).isPark)
    #expect(lot.parked.values.first?.cursor == at(5))
    #expect(lot.append([event(6, id: 6)]).deliveries?.isEmpty == true)
    #expect(
      lot.append([event(7, id: 7)]).deliveries?.seen.map(\.answer) == [
        .events(keys: ["7"], matches: [[0]], through: at(7))
      ])
  }

  @Test func aScanOfAnEpochThatEndedMeanwhileIsJudgedAfresh() {
    var lot = started(budget: 100)
    _ = lot.append((1...5).map { event(UInt64($0), id: $0) })
    guard case .scan(let pending) = lot.poll(poll(at(0)), now: .zero) else {
      Issue.record("a poll behind the ring is scanned")
      return
    }
    let result = pending.run()
    let next = Cursor(epoch: epoch + 1, seq: 0)
    _ = lot.streamStarted(at: next, resumed: false)
    #expect(answer(lot.finishScan(pending, result, now: .zero)) == .reset(next))
  }

  @Test func refusedPayloadsKeepTheirPlaceReachNoOneAndAreCounted() {
    var lot = started(budget: 100)
    let forged = ChangeEvent(
      seq: 2,
      payload: Array(#"{"table":"t","op":"insert","key":9,"mtime":"x","new":{"id":9},"old":null,"cursor":"x"}"#.utf8))
    let id = lot.settle(poll(at(0)), now: .zero)
    #expect(id.isPark)
    #expect(
      lot.append([event(1, id: 1), forged, event(3, id: 3)]).deliveries?.seen.map(\.answer) == [
        .events(keys: ["1", "3"], matches: [[0], [0]], through: at(3))
      ])
    #expect(lot.payloadsRefused == 1)
    #expect(answer(lot.settle(poll(at(1)), now: .zero)) == .events(keys: ["3"], matches: [[0]], through: at(3)))
  }
}

extension ParkingLot.PollDecision {
  var isPark: Bool {
    if case .park = self { return true }
    return false
  }
}
