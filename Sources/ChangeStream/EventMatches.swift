/// How an event reaches a subscription that it matches.
public enum EventForm: Sendable {
  /// As the trigger wrote it.
  case asIs
  /// As a delete of its old row, without its new row's content: the row was
  /// the viewer's and is no longer (``OwnerCondition``).
  case asRemoval
}

/// Which of a poll's subscriptions (by index, ascending) an event reaches, and how.
public struct EventMatches: Equatable, Sendable {
  public var asIs: [Int]
  public var asRemoval: [Int]

  public init(asIs: [Int] = [], asRemoval: [Int] = []) {
    self.asIs = asIs
    self.asRemoval = asRemoval
  }

  public var isEmpty: Bool { asIs.isEmpty && asRemoval.isEmpty }

  /// Every subscription reached, either way, ascending.
  public var all: [Int] { asRemoval.isEmpty ? asIs : (asIs + asRemoval).sorted() }
}
