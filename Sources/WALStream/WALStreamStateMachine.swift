/// One event of the change stream as the WAL carries it: a transactional
/// `pbp` message of a committed transaction, with its position.
public struct WALEvent: Equatable, Sendable {
  public var position: WALPosition
  /// The end of the message's own WAL record.
  public var messageLSN: LSN
  public var content: [UInt8]

  public init(position: WALPosition, messageLSN: LSN, content: [UInt8]) {
    self.position = position
    self.messageLSN = messageLSN
    self.content = content
  }
}

/// The stream did not go as pgoutput's protocol promises; the reader drops
/// the connection and starts again from the slot.
public enum WALStreamError: Error, Equatable, Sendable, CustomStringConvertible {
  case malformed(WALDecodingError)
  case beginInsideTransaction(open: LSN, begun: LSN)
  case commitWithoutBegin(commitLSN: LSN)
  case commitMismatch(begin: LSN, commit: LSN)
  case transactionalMessageOutsideTransaction(lsn: LSN)
  case commitOrderViolated(deliveredThrough: LSN, begun: LSN)
  case tooManyEventsInTransaction(commitLSN: LSN)

  public var description: String {
    switch self {
    case .malformed(let error): return "malformed replication data: \(error)"
    case .beginInsideTransaction(let open, let begun):
      return "a Begin for \(begun) inside the transaction committing at \(open)"
    case .commitWithoutBegin(let lsn): return "a Commit at \(lsn) without a Begin"
    case .commitMismatch(let begin, let commit): return "Begin announced the commit at \(begin), Commit says \(commit)"
    case .transactionalMessageOutsideTransaction(let lsn):
      return "a transactional message at \(lsn) outside a transaction"
    case .commitOrderViolated(let delivered, let begun):
      return "a transaction committing at \(begun), before \(delivered), which was already delivered"
    case .tooManyEventsInTransaction(let lsn): return "more than 2^32 events in the transaction committing at \(lsn)"
    }
  }
}

/// The reader of a logical replication slot, without the connection: fed the
/// walsender's messages in order, it yields the `pbp` events of committed
/// transactions, stamped and in commit order, drops those a previous run
/// already stamped, and says when to send a standby status update and what
/// flush position it may confirm.
///
/// The confirm rule. The slot skips, on the next start, every transaction
/// whose commit LSN is *below* its confirmed flush position, and sends again
/// every other one (at-least-once). So a position may be confirmed only when
/// (1) every transaction committing before it has been delivered whole
/// (`deliveredThrough`: the end of the last Commit, or, between transactions,
/// the end position of a keepalive, since the walsender has then sent every
/// transaction that commits before it: this is what lets the slot advance
/// while the watched tables are idle), and (2) the caller no longer needs any
/// event of a transaction committing before it (`confirmable`: the commit LSN
/// of the oldest event the ring must be able to re-read, since that
/// transaction is then sent again; ``LSN/max`` when it needs none). The
/// flush reported is the lesser of the two, and never less than the slot's
/// position at the start or anything reported before: the slot never goes back.
public struct WALStreamStateMachine: Sendable {
  public enum State: Equatable, Sendable {
    case betweenTransactions
    /// Inside Begin … Commit; `nextIndex` is the index the next event gets.
    case inTransaction(commitLSN: LSN, nextIndex: UInt32)
  }

  public private(set) var state = State.betweenTransactions
  /// Every transaction committing before this has been delivered whole.
  public private(set) var deliveredThrough: LSN
  /// The furthest position the walsender said it has sent (the `write` reported).
  public private(set) var receivedThrough: LSN
  /// The flush position last reported (initially the slot's own).
  public private(set) var confirmedFlush: LSN
  /// Events dropped because a previous run had stamped them.
  public private(set) var duplicatesSkipped = 0

  private let prefix: [UInt8]
  private let alreadyStamped: WALPosition?
  private let statusInterval: Duration
  private var nextStatusAt: Duration
  private var replyRequestedAt: Duration?

  /// - Parameters:
  ///   - confirmedFlush: the slot's confirmed_flush_lsn when streaming starts
  ///     (the stream resumes there: nothing committing before it comes).
  ///   - alreadyStamped: the newest position a previous run stamped; events
  ///     at or before it are dropped.
  ///   - statusInterval: how often to report without being asked; well
  ///     within the server's wal_sender_timeout (60 s by default).
  public init(
    startingAt confirmedFlush: LSN, alreadyStamped: WALPosition?, prefix: String = "pbp",
    statusInterval: Duration = .seconds(10), now: Duration
  ) {
    self.deliveredThrough = confirmedFlush
    self.receivedThrough = confirmedFlush
    self.confirmedFlush = confirmedFlush
    self.alreadyStamped = alreadyStamped
    self.prefix = Array(prefix.utf8)
    self.statusInterval = statusInterval
    self.nextStatusAt = now + statusInterval
  }

  /// Takes the next message; returns the event it carries, if any.
  public mutating func received(_ message: ReplicationMessage, now: Duration) throws(WALStreamError) -> WALEvent? {
    switch message {
    case .primaryKeepalive(let keepalive):
      receivedThrough = max(receivedThrough, keepalive.walEnd)
      if state == .betweenTransactions { deliveredThrough = max(deliveredThrough, keepalive.walEnd) }
      if keepalive.replyRequested, replyRequestedAt == nil { replyRequestedAt = now }
      return nil
    case .xLogData(let data):
      receivedThrough = max(receivedThrough, data.walEnd)
      let decoded: PgOutputMessage
      do { decoded = try PgOutputMessage.decode(data.data) } catch { throw .malformed(error) }
      return try received(decoded)
    }
  }

  private mutating func received(_ message: PgOutputMessage) throws(WALStreamError) -> WALEvent? {
    switch (message, state) {
    case (.begin(let final, _, _), .inTransaction(let open, _)):
      throw .beginInsideTransaction(open: open, begun: final)
    case (.begin(let final, _, _), .betweenTransactions):
      guard final >= deliveredThrough else {
        throw .commitOrderViolated(deliveredThrough: deliveredThrough, begun: final)
      }
      state = .inTransaction(commitLSN: final, nextIndex: 0)
      return nil
    case (.commit(_, let commit, _, _), .betweenTransactions):
      throw .commitWithoutBegin(commitLSN: commit)
    case (.commit(_, let commit, let end, _), .inTransaction(let begun, _)):
      guard commit == begun else { throw .commitMismatch(begin: begun, commit: commit) }
      deliveredThrough = max(deliveredThrough, end)
      state = .betweenTransactions
      return nil
    case (.message(let message), _) where !message.isTransactional:
      // Not the triggers': those are transactional, seen only if they commit.
      return nil
    case (.message(let message), .betweenTransactions):
      throw .transactionalMessageOutsideTransaction(lsn: message.lsn)
    case (.message(let message), .inTransaction(let commit, let index)):
      guard message.prefix == prefix else { return nil }
      guard index < UInt32.max else { throw .tooManyEventsInTransaction(commitLSN: commit) }
      state = .inTransaction(commitLSN: commit, nextIndex: index + 1)
      let position = WALPosition(commitLSN: commit, index: index)
      if let alreadyStamped, position <= alreadyStamped {
        duplicatesSkipped += 1
        return nil
      }
      return WALEvent(position: position, messageLSN: message.lsn, content: Array(message.content))
    case (.skipped, _):
      return nil
    }
  }

  // MARK: Status updates

  /// When the next status update is due (now or in the past when a reply was asked for).
  public var nextStatusDeadline: Duration { replyRequestedAt.map { min($0, nextStatusAt) } ?? nextStatusAt }

  /// The status update to send now, if one is due. `clock` is the wall clock
  /// to report; `confirmable` is explained in the type's description.
  ///
  /// A reply the server asked for reports the flush position only once it
  /// has reached the write position, and otherwise none (`0/0`, which the
  /// walsender reads as "unknown"): a walsender shutting down asks for a reply
  /// again and again, and exits only when the flush reported, or the write
  /// when no flush is, has reached what it sent. A flush held back for the
  /// ring would keep PostgreSQL from shutting down (`pg_ctl stop -m fast`
  /// times out, measured on PostgreSQL 15); no flush reported leaves the
  /// slot where the last update put it, which is what the ring needs.
  public mutating func statusUpdate(confirmable: LSN, clock: PostgresTimestamp, now: Duration) -> StandbyStatusUpdate? {
    if now >= nextStatusAt { return finalStatusUpdate(confirmable: confirmable, clock: clock, now: now) }
    guard replyRequestedAt != nil else { return nil }
    replyRequestedAt = nil
    let flush = max(confirmedFlush, min(deliveredThrough, confirmable))
    let write = max(receivedThrough, flush)
    guard flush >= write else {
      return StandbyStatusUpdate(write: write, flush: .zero, apply: .zero, clock: clock, replyRequested: false)
    }
    confirmedFlush = flush
    return StandbyStatusUpdate(write: write, flush: flush, apply: flush, clock: clock, replyRequested: false)
  }

  /// A status update to send now whatever the schedule (before closing the
  /// connection, so that the slot keeps what was confirmed).
  public mutating func finalStatusUpdate(confirmable: LSN, clock: PostgresTimestamp, now: Duration)
    -> StandbyStatusUpdate
  {
    confirmedFlush = max(confirmedFlush, min(deliveredThrough, confirmable))
    replyRequestedAt = nil
    nextStatusAt = now + statusInterval
    return StandbyStatusUpdate(
      write: max(receivedThrough, confirmedFlush), flush: confirmedFlush, apply: confirmedFlush, clock: clock,
      replyRequested: false)
  }
}
