import ChangeStream

/// A long-poll for changes: where the client stands, what it watches, and how
/// long it may wait for a match.
public struct ChangePoll: Equatable, Sendable {
  /// nil: the client wants the newest position (a fresh start, or a probe).
  public var cursor: Cursor?
  /// Interned when the poll is read: every event is matched by lookups.
  public var subscriptions: SubscriptionSet
  public var timeout: Duration

  public init(cursor: Cursor?, subscriptions: [Subscription], timeout: Duration) {
    self.init(cursor: cursor, subscriptions: SubscriptionSet(subscriptions), timeout: timeout)
  }

  public init(cursor: Cursor?, subscriptions: SubscriptionSet, timeout: Duration) {
    self.cursor = cursor
    self.subscriptions = subscriptions
    self.timeout = timeout
  }
}
