import ChangeStream

/// A long-poll for changes: where the client stands, what it watches, and how
/// long it may wait for a match.
public struct ChangePoll: Equatable, Sendable {
  /// nil: the client wants the newest position (a fresh start, or a probe).
  public var cursor: Cursor?
  public var subscriptions: [Subscription]
  public var timeout: Duration

  public init(cursor: Cursor?, subscriptions: [Subscription], timeout: Duration) {
    self.cursor = cursor
    self.subscriptions = subscriptions
    self.timeout = timeout
  }
}
