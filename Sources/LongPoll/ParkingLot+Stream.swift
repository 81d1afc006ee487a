import ChangeStream

extension ParkingLot {
  /// What appending a batch of events did.
  enum AppendOutcome {
    /// The events continue the ring; these parked polls are answered.
    case appended(Deliveries)
    /// The events' positions do not follow the ring's newest (`newest`):
    /// nothing was appended, and the stream must be re-established.
    case outOfOrder(newest: StreamPosition, received: StreamPosition)
  }

  /// notifyd greeted the worker. Unless it resumed the worker's position,
  /// everything held is void: parked polls of an old epoch are told to reset.
  mutating func streamStarted(at position: Cursor, resumed: Bool) -> Deliveries {
    let previous = stream.epoch
    stream = .following(epoch: position.epoch)
    // Polls without a cursor waited for the stream to come back.
    if resumed && position.epoch == previous { return reevaluateParked() }
    if let previous, previous != position.epoch {
      if pastEpochs.count >= 64 { pastEpochs.removeAll() }
      pastEpochs.insert(previous)
    }
    ring.reset(at: position.position)
    return reevaluateParked()
  }

  /// The connection to notifyd ended; the next greeting will say where it stands.
  mutating func streamInterrupted() {
    if let epoch = stream.epoch { stream = .interrupted(epoch: epoch) }
  }

  /// What an answer depends on, besides the events appended together: polls
  /// that agree on it get the same answer, built once. (Thousands of browsers
  /// watching the same table at the same cursor are the common case.)
  private struct AnswerKey: Hashable {
    let after: StreamPosition
    let subscriptions: SubscriptionSet
  }

  /// New events, in stream order, after the ring's newest.
  mutating func append(_ events: [ChangeEvent]) -> AppendOutcome {
    guard let first = events.first else { return .appended(Deliveries()) }
    guard first.position > ring.newestPosition else {
      return .outOfOrder(newest: ring.newestPosition, received: first.position)
    }
    for (previous, next) in zip(events, events.dropFirst()) where next.position <= previous.position {
      return .outOfOrder(newest: previous.position, received: next.position)
    }
    guard let epoch = stream.epoch else { return .appended(Deliveries()) }
    for event in events {
      ring.append(event)
      if event.isRefused { payloadsRefused += 1 }
    }
    var deliveries = Deliveries()
    var shared: [AnswerKey: (index: Int, eventCount: Int)?] = [:]
    for (id, poll) in parked {
      // A poll still ahead of us, or in an epoch we have not reached, waits on.
      guard let cursor = poll.cursor, cursor.epoch == epoch, cursor.position < ring.newestPosition else { continue }
      let key = AnswerKey(after: cursor.position, subscriptions: poll.subscriptions)
      let found: (index: Int, eventCount: Int)?
      if let known = shared[key] {
        found = known
      } else {
        found = matching(poll, in: events.drop { $0.position <= cursor.position }, epoch: epoch).map {
          (deliveries.addShared($0.answer), $0.eventCount)
        }
        shared[key] = .some(found)
      }
      guard let found else { continue }
      eventsDelivered += UInt64(found.eventCount)
      parked[id] = nil
      deliveries.add(id, sharing: found.index)
    }
    return .appended(deliveries)
  }

  private mutating func reevaluateParked() -> Deliveries {
    var deliveries = Deliveries()
    for (id, poll) in parked {
      if let answer = answerNow(standing(of: poll.cursor)) {
        parked[id] = nil
        deliveries.add(id, answer)
      }
    }
    return deliveries
  }
}
