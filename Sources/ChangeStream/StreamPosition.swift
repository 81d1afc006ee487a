/// Where an event stands in the change stream: ordered, and the same for the
/// same event wherever it is read. Positions are not consecutive; each
/// process numbers the events of its own ring separately (`seq`).
///
/// The notify source numbers events 1, 2, 3 … in an epoch: `major` is that
/// number, `minor` is 0. The wal source places them in the WAL: `major` is
/// the commit LSN of the event's transaction, `minor` the event's index in it
/// plus one, and `minor` 0 is the boundary before that transaction's events
/// (where a stream that has delivered every transaction committing before
/// `major` stands).
public struct StreamPosition: Hashable, Comparable, Sendable, CustomStringConvertible {
  public var major: UInt64
  public var minor: UInt32

  public init(major: UInt64, minor: UInt32 = 0) {
    self.major = major
    self.minor = minor
  }

  public static let zero = StreamPosition(major: 0)

  public static func < (lhs: StreamPosition, rhs: StreamPosition) -> Bool {
    (lhs.major, lhs.minor) < (rhs.major, rhs.minor)
  }

  /// `MAJOR` when minor is 0, else `MAJOR.MINOR`, both decimal.
  public var description: String {
    minor == 0 ? String(major) : String(major) + "." + String(minor)
  }

  /// Parses the text form; `nil` for anything else, including forms that
  /// are not canonical (leading zeros, `.0`), so that one position has one text.
  public init?(parsing text: Substring) {
    let utf8 = text.utf8
    let dot = utf8.firstIndex(of: UInt8(ascii: "."))
    let majorText = text[text.startIndex..<(dot ?? text.endIndex)]
    guard let major = Self.canonicalNumber(majorText).flatMap({ UInt64($0) }) else { return nil }
    var minor: UInt32 = 0
    if let dot {
      guard let parsed = Self.canonicalNumber(text[utf8.index(after: dot)...]).flatMap({ UInt32($0) }), parsed != 0
      else { return nil }
      minor = parsed
    }
    self.init(major: major, minor: minor)
  }

  /// The text when it is decimal digits without a leading zero (by bytes:
  /// a combining mark would join a digit in one Character).
  private static func canonicalNumber(_ text: Substring) -> Substring? {
    let utf8 = text.utf8
    guard !utf8.isEmpty, utf8.count <= 20, utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
      utf8.count == 1 || utf8.first != UInt8(ascii: "0")
    else { return nil }
    return text
  }
}
