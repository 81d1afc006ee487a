/// How an event reaches a subscription that it matches.
public enum EventForm: Sendable {
  /// As the trigger wrote it.
  case asIs
  /// As a delete of its old row, without its new row's content: the row was
  /// the viewer's and is no longer (``OwnerCondition``).
  case asRemoval
  /// As an insert of its new row, without its old one: the row is the
  /// viewer's now and was another's before (an update that moved it to them),
  /// so what it was is not theirs to see.
  case asArrival
}

/// Which of a poll's subscriptions (by index, ascending) an event reaches, and how.
public struct EventMatches: Equatable, Sendable {
  public var asIs: [Int]
  public var asRemoval: [Int]
  public var asArrival: [Int]

  public init(asIs: [Int] = [], asRemoval: [Int] = [], asArrival: [Int] = []) {
    self.asIs = asIs
    self.asRemoval = asRemoval
    self.asArrival = asArrival
  }

  public var isEmpty: Bool { asIs.isEmpty && asRemoval.isEmpty && asArrival.isEmpty }

  /// Every subscription reached, any way, ascending.
  public var all: [Int] {
    asRemoval.isEmpty && asArrival.isEmpty ? asIs : (asIs + asRemoval + asArrival).sorted()
  }
}
