import ChangePublisher

/// Where notifyd's events come from: the LISTEN connection (`--source
/// notify`) or the replication slot (`--source wal`). The server's loop polls
/// its socket and calls it; the source appends to the history and says what
/// the stream clients must be told.
protocol ChangeSource: AnyObject {
  /// The socket to poll; -1 (which poll(2) skips) while disconnected.
  var socket: Int32 { get }
  /// Whether the socket must also be polled for room to write.
  var wantsToWrite: Bool { get }
  /// The latest time the loop may sleep until before calling ``tick(history:)``.
  var nextDeadline: Duration { get }
  /// For the status line: the source's own figures (the slot's lag), if any.
  var statusDetail: String? { get }

  /// Connects, probes or reports, as due now.
  func tick(history: inout ChangeHistory) -> SourceChange
  /// The socket is ready: reads what came, into the history.
  func readAvailable(into history: inout ChangeHistory) -> SourceArrivals
  /// Ends the connection, as cleanly as the source can.
  func close(history: ChangeHistory)
}

enum SourceChange {
  case none
  /// The history starts over from here (a new epoch, or the wal source's
  /// history after a gap): greeted clients must forget what they had.
  case startedOver(reason: String)
  /// Connected again and the history goes on: nothing for the clients.
  case continued
  /// The connection is gone (it is retried).
  case lost(reason: String)
}

/// What one read brought.
struct SourceArrivals {
  /// The events appended to the history.
  var events: [StoredEvent] = []
  /// The history began to be served (the wal source read its backlog).
  var startedServing = false
  var lostBecause: String?
}
