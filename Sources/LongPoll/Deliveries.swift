import ChangeStream

/// The polls one transition of the ``ParkingLot`` answers: the distinct
/// answers, and which poll gets which. The hub renders each distinct answer
/// once (ten thousand polls of one table at one cursor share one body) and
/// writes it to each of its polls, outside its lock.
struct Deliveries {
  private(set) var answers: [PollAnswer] = []
  /// Which poll gets which answer (an index into `answers`).
  private(set) var recipients: [(id: ParkingLot.PollID, answer: Int)] = []
  /// Answers without events are shared by value: every poll timing out at one
  /// position gets the same.
  private var answersWithoutEvents: [AnswerWithoutEvents: Int] = [:]

  private enum AnswerWithoutEvents: Hashable {
    case noEvents(Cursor)
    case reset(Cursor)
    case streamUnavailable
  }

  var isEmpty: Bool { recipients.isEmpty }

  /// Adds an answer that several polls may share; returns its index.
  mutating func addShared(_ answer: PollAnswer) -> Int {
    answers.append(answer)
    return answers.count - 1
  }

  mutating func add(_ id: ParkingLot.PollID, sharing index: Int) {
    recipients.append((id, index))
  }

  mutating func add(_ id: ParkingLot.PollID, _ answer: PollAnswer) {
    let key: AnswerWithoutEvents
    switch answer {
    case .events:
      add(id, sharing: addShared(answer))
      return
    case .noEvents(let cursor): key = .noEvents(cursor)
    case .reset(let cursor): key = .reset(cursor)
    case .streamUnavailable: key = .streamUnavailable
    }
    if let index = answersWithoutEvents[key] {
      add(id, sharing: index)
    } else {
      let index = addShared(answer)
      answersWithoutEvents[key] = index
      add(id, sharing: index)
    }
  }
}
