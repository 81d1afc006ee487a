import ChangeStream

/// A parked poll's way back to its client: a detached FastCGI request, or a
/// recording fake in tests. The hub calls exactly one of `respond` and
/// `abandon`, once, from whichever thread took the poll out of the lot.
public protocol PollResponder: Sendable {
  /// What the hub's renderer makes of a ``PollAnswer`` (an HTTP response).
  associatedtype Answer: Sendable
  /// The connection to nginx, watched for a hang-up while the poll is parked.
  var socket: Int32 { get }
  /// Whether the connection may outlive the answer (nginx keeps it): the hub
  /// then stops watching it before answering, since it may be parked again.
  var mayKeepConnection: Bool { get }
  func respond(_ answer: Answer)
  /// The client went away: free what the request holds, write nothing.
  func abandon()
}

extension PollResponder {
  public var mayKeepConnection: Bool { false }
}

/// What the HTTP API needs to know of the stream: the position snapshot reads
/// hand out.
public protocol StreamCursorSource: Sendable {
  /// The newest position this worker knows.
  var current: Cursor? { get }
  /// The cursor a snapshot read hands out, waiting up to `patience` while the
  /// stream is interrupted (see ``ChangeHub/snapshotCursor(patience:)``).
  func snapshotCursor(patience: Duration) -> Cursor?
}
