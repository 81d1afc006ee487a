/// A position in the change stream: the epoch (one unbroken run of notifyd's
/// LISTEN connection) and the sequence number of the last event seen in it.
///
/// Clients treat its text form as opaque; it is `EPOCH:SEQ` with the epoch in
/// 16 hex digits and the sequence in decimal.
public struct Cursor: Hashable, Sendable, CustomStringConvertible {
  public var epoch: UInt64
  public var seq: UInt64

  public init(epoch: UInt64, seq: UInt64) {
    self.epoch = epoch
    self.seq = seq
  }

  public var description: String {
    let hex = String(epoch, radix: 16)
    return String(repeating: "0", count: max(0, 16 - hex.utf8.count)) + hex + ":" + String(seq)
  }

  /// Parses the text form; `nil` for anything else (forged, truncated, padded).
  public init?(parsing text: Substring) {
    let utf8 = text.utf8
    guard utf8.count >= 18, utf8.count <= 37,
      let colon = utf8.firstIndex(of: UInt8(ascii: ":")),
      utf8.distance(from: utf8.startIndex, to: colon) == 16
    else { return nil }
    let epochText = text[text.startIndex..<colon]
    // By bytes: a combining mark after the colon would join it in one Character.
    let seqText = text[utf8.index(after: colon)...]
    guard epochText.utf8.allSatisfy(Cursor.isLowerHex),
      !seqText.isEmpty, seqText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
      seqText.utf8.count == 1 || seqText.utf8.first != UInt8(ascii: "0"),
      let epoch = UInt64(epochText, radix: 16), epoch != 0,
      let seq = UInt64(seqText)
    else { return nil }
    self.init(epoch: epoch, seq: seq)
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
