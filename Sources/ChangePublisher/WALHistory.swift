import ChangeStream
import WALStream

extension StreamPosition {
  /// A wal event's position: its transaction's commit LSN, and its index in
  /// the transaction plus one (minor 0 is the boundary before the transaction).
  public init(_ position: WALPosition) {
    self.init(major: position.commitLSN.rawValue, minor: position.index + 1)
  }

  /// The boundary before every event of the transactions committing at or after `lsn`.
  public init(before lsn: LSN) {
    self.init(major: lsn.rawValue, minor: 0)
  }

  /// The commit LSN of a wal position (of an event, or the boundary before it).
  public var commitLSN: LSN { LSN(major) }
}

/// The epoch of the wal source: a name for the database's WAL history, the
/// same on every start of notifyd and PostgreSQL and on every host that
/// follows the database, so that cursors outlive all of them. A new timeline
/// (a promoted standby) is another history: positions past the fork differ.
public enum WALEpoch {
  /// FNV-1a over the system identifier and the timeline, never 0 (no epoch is).
  public static func of(systemIdentifier: UInt64, timeline: UInt32) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    let bytes =
      (0..<8).map { UInt8(truncatingIfNeeded: systemIdentifier >> (8 * $0)) }
      + (0..<4).map { UInt8(truncatingIfNeeded: timeline >> (8 * $0)) }
    for byte in bytes {
      hash ^= UInt64(byte)
      hash = hash &* 0x100_0000_01b3
    }
    return hash == 0 ? 1 : hash
  }
}

/// How a stream from the slot joins notifyd's history, decided on every
/// connect from what the history holds and where the slot starts.
public enum WALStreamJoin: Equatable, Sendable {
  /// The history goes on: the slot starts at or before what the history
  /// still lacks, and re-sends what it already holds (dropped by position).
  case continues
  /// The history starts over at `position`, and clients holding older
  /// cursors reset.
  case startsOver(epoch: UInt64, at: StreamPosition, because: Reason)

  public enum Reason: Equatable, Sendable, CustomStringConvertible {
    case firstStart
    /// The database is not the one the history came from (another system,
    /// or a new timeline).
    case anotherHistory(previous: UInt64)
    /// The slot starts past what was delivered: transactions committing in
    /// between are lost (the slot was dropped and made again, or invalidated).
    case gap(deliveredThrough: LSN, slotStart: LSN)

    public var description: String {
      switch self {
      case .firstStart: "first start"
      case .anotherHistory(let previous):
        "the database's WAL history is not that of epoch \(String(previous, radix: 16))"
      case .gap(let delivered, let start):
        "the slot starts at \(start), past \(delivered) where the stream had got to: what committed in between is lost"
      }
    }
  }

  /// - Parameters:
  ///   - deliveredThrough: how far the previous connection had delivered
  ///     every transaction (nil before the first).
  ///   - slotStart: the slot's confirmed flush position: the stream sends
  ///     every transaction committing at or after it.
  public static func decide(history: ChangeHistory, epoch: UInt64, slotStart: LSN, deliveredThrough: LSN?) -> Self {
    guard let current = history.epoch, let deliveredThrough else {
      return .startsOver(epoch: epoch, at: StreamPosition(before: slotStart), because: .firstStart)
    }
    guard current == epoch else {
      return .startsOver(
        epoch: epoch, at: StreamPosition(before: slotStart), because: .anotherHistory(previous: current))
    }
    guard slotStart <= deliveredThrough else {
      return .startsOver(
        epoch: epoch, at: StreamPosition(before: slotStart),
        because: .gap(deliveredThrough: deliveredThrough, slotStart: slotStart))
    }
    return .continues
  }
}

extension ChangeHistory {
  /// What the slot may be told is flushed, as far as the ring goes: the
  /// commit LSN of the oldest event it holds (that transaction is then sent
  /// again after a restart, and the ring's whole window with it), or
  /// ``LSN/max`` when it holds none.
  public var walConfirmable: LSN {
    ring.oldest.map { $0.position.commitLSN } ?? .max
  }
}
