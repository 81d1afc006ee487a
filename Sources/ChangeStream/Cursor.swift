/// A position in the change stream as clients hold it: the epoch (which
/// history the positions belong to) and the position of the last event seen
/// in it.
///
/// With the notify source an epoch is one unbroken run of notifyd's LISTEN
/// connection (random); with the wal source it names the database's WAL
/// history, so it survives restarts of notifyd and PostgreSQL, and every host
/// of the database hands out the same cursors.
///
/// Clients treat its text form as opaque; it is `EPOCH:POSITION` with the
/// epoch in 16 hex digits and the position as ``StreamPosition`` writes it.
public struct Cursor: Hashable, Sendable, CustomStringConvertible {
  public var epoch: UInt64
  public var position: StreamPosition

  public init(epoch: UInt64, position: StreamPosition) {
    self.epoch = epoch
    self.position = position
  }

  /// A cursor of the notify source: the `seq`-th event of the epoch.
  public init(epoch: UInt64, seq: UInt64) {
    self.init(epoch: epoch, position: StreamPosition(major: seq))
  }

  public var description: String {
    let hex = String(epoch, radix: 16)
    return String(repeating: "0", count: max(0, 16 - hex.utf8.count)) + hex + ":" + position.description
  }

  /// Parses the text form; `nil` for anything else (forged, truncated, padded).
  public init?(parsing text: Substring) {
    let utf8 = text.utf8
    guard utf8.count >= 18, utf8.count <= 48,
      let colon = utf8.firstIndex(of: UInt8(ascii: ":")),
      utf8.distance(from: utf8.startIndex, to: colon) == 16
    else { return nil }
    let epochText = text[text.startIndex..<colon]
    // By bytes: a combining mark after the colon would join it in one Character.
    let positionText = text[utf8.index(after: colon)...]
    guard epochText.utf8.allSatisfy(Cursor.isLowerHex),
      let epoch = UInt64(epochText, radix: 16), epoch != 0,
      let position = StreamPosition(parsing: positionText)
    else { return nil }
    self.init(epoch: epoch, position: position)
  }

  public init?(parsing text: String) {
    self.init(parsing: text[...])
  }

  private static func isLowerHex(_ byte: UInt8) -> Bool {
    (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66)
  }
}

extension Cursor {
  /// A fresh, nonzero epoch: random, so that no two runs of notifyd share one.
  public static func newEpoch() -> UInt64 {
    var generator = SystemRandomNumberGenerator()
    return UInt64.random(in: 1...UInt64.max, using: &generator)
  }
}
