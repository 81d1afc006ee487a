import ChangeStream
import Testing

@testable import LongPoll

/// Polls of different viewers of a table with a row rule: each gets what the
/// rule gives it, never an answer built for another viewer.
@Suite struct ParkingLotOwnerTests {
  let epoch: UInt64 = 0xE2
  func at(_ seq: UInt64) -> Cursor { Cursor(epoch: epoch, seq: seq) }

  static func notes(_ owner: String) -> [Subscription] {
    [Subscription(table: "notes", owner: OwnerCondition(column: "owner", value: owner))]
  }

  func moved(_ seq: UInt64, from: String, to: String) -> ChangeEvent {
    ChangeEvent(
      seq: seq,
      payload: Array(
        #"{"table":"notes","op":"update","key":5,"mtime":"m","new":{"id":5,"owner":"\#(to)"},"old":{"id":5,"owner":"\#(from)"}}"#
          .utf8))
  }

  /// Which answer each viewer's polls got: (matches, removals, arrivals) of its one event, or nil.
  func forms(_ deliveries: Deliveries, _ ids: [String: [UInt64]]) -> [String: [[[Int]]]] {
    ids.mapValues { polls in
      polls.map { id in
        let answer = deliveries.recipients.first { $0.id == id }.map { deliveries.answers[$0.answer] }
        guard case .events(let matched, _)? = answer else { return [] }
        return matched.flatMap { [$0.matches, $0.removals, $0.arrivals] }
      }
    }
  }

  @Test func parkedPollsOfDifferentOwnersNeverShareAnAnswer() throws {
    var lot = ParkingLot(ringCapacity: 8)
    _ = lot.streamStarted(at: at(0), resumed: false)
    var ids: [String: [UInt64]] = [:]
    for viewer in ["alice", "bob", "carol", "alice", "bob"] {
      guard case .park(let id) = lot.settle(poll(at(0), Self.notes(viewer)), now: .zero) else {
        Issue.record("not parked")
        return
      }
      ids[viewer, default: []].append(id)
    }
    guard case .appended(let deliveries) = lot.append([moved(1, from: "alice", to: "bob")]) else {
      Issue.record("a gap")
      return
    }
    #expect(
      forms(deliveries, ids) == [
        "alice": [[[], [0], []], [[], [0], []]], "bob": [[[], [], [0]], [[], [], [0]]], "carol": [[]],
      ], "Alice sees her row leave, Bob his arrive, without what it was")
    #expect(deliveries.answers.count == 2, "one answer per viewer the event reaches")
    let answerOf = Dictionary(uniqueKeysWithValues: deliveries.recipients.map { ($0.id, $0.answer) })
    #expect(answerOf[ids["alice"]![0]] == answerOf[ids["alice"]![1]])
    #expect(answerOf[ids["alice"]![0]] != answerOf[ids["bob"]![0]])
    #expect(lot.parked.count == 1, "Carol's poll waits on")
  }

  @Test func aScanGivesEachOwnerItsOwnForm() {
    var lot = ParkingLot(ringCapacity: 8)
    _ = lot.streamStarted(at: at(0), resumed: false)
    _ = lot.append([moved(1, from: "alice", to: "bob"), moved(2, from: "bob", to: "carol")])
    func seen(_ viewer: String) -> [[Int]] {
      guard case .answer(.events(let matched, let through)) = lot.settle(poll(at(0), Self.notes(viewer)), now: .zero)
      else { return [] }
      #expect(through == at(2))
      return matched.flatMap { [[Int($0.event.seq)], $0.matches, $0.removals, $0.arrivals] }
    }
    #expect(seen("alice") == [[1], [], [0], []])
    #expect(seen("bob") == [[1], [], [], [0], [2], [], [0], []])
    #expect(seen("carol") == [[2], [], [], [0]])
  }
}
