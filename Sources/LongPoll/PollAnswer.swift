import ChangeStream

/// What a poll is answered with, before anything is rendered for the wire:
/// the hub decides answers under its lock and renders each distinct one once,
/// outside it, with the renderer the API hands it.
public enum PollAnswer: Sendable {
  /// The events after the poll's cursor that its subscriptions match, in
  /// order; the client polls next from `through`.
  case events([MatchedEvent], through: Cursor)
  /// Nothing for this poll (yet); `cursor` is the newest position.
  case noEvents(cursor: Cursor)
  /// The cursor is no longer in the stream (its epoch ended, or the ring
  /// moved past it): reload the snapshot, then poll from `current`.
  case reset(current: Cursor)
  /// The worker has never followed notifyd: there is no position to give.
  case streamUnavailable
}

/// An event as a poll receives it: its cursor, and which of the poll's
/// subscriptions (by index, ascending) it reached as is, and which only as a
/// removal (``ChangeStream/EventForm``). The answer renders the event once for
/// each of the two lists that is not empty: the removal first, so that a
/// client's copy fed both (one replica of two such subscriptions) ends with
/// the row one of them may see.
public struct MatchedEvent: Sendable {
  public let event: ChangeEvent
  public let cursor: Cursor
  /// Reached as is.
  public let matches: [Int]
  /// Reached only as a removal: rendered without the new row.
  public let removals: [Int]
  /// Reached as an arrival: rendered as an insert, without the old row.
  public let arrivals: [Int]

  public init(event: ChangeEvent, cursor: Cursor, matches: [Int], removals: [Int] = [], arrivals: [Int] = []) {
    self.event = event
    self.cursor = cursor
    self.matches = matches
    self.removals = removals
    self.arrivals = arrivals
  }

  public init(event: ChangeEvent, cursor: Cursor, _ matches: EventMatches) {
    self.init(
      event: event, cursor: cursor, matches: matches.asIs, removals: matches.asRemoval, arrivals: matches.asArrival)
  }
}
