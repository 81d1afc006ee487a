/// A position in PostgreSQL's write-ahead log: a byte offset, written `X/Y`
/// (the high and low 32 bits in hexadecimal) as `pg_lsn` prints it.
public struct LSN: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
  public var rawValue: UInt64

  public init(rawValue: UInt64) { self.rawValue = rawValue }
  public init(_ rawValue: UInt64) { self.rawValue = rawValue }

  public static let zero = LSN(0)
  /// Beyond any real position: as a `confirmable` bound, "nothing is still needed".
  public static let max = LSN(UInt64.max)

  /// Parses `X/Y`, each half one to eight hex digits, either case (as `pg_lsn` accepts).
  public init?(_ text: some StringProtocol) {
    let halves = text.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
    guard halves.count == 2, let high = Self.hex(halves[0]), let low = Self.hex(halves[1]) else { return nil }
    rawValue = high << 32 | low
  }

  private static func hex(_ digits: some Collection<UInt8>) -> UInt64? {
    guard (1...8).contains(digits.count) else { return nil }
    var value: UInt64 = 0
    for digit in digits {
      let nibble: UInt8
      switch digit {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = digit - UInt8(ascii: "0")
      case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = digit - UInt8(ascii: "a") + 10
      case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = digit - UInt8(ascii: "A") + 10
      default: return nil
      }
      value = value << 4 | UInt64(nibble)
    }
    return value
  }

  public var description: String {
    String(rawValue >> 32, radix: 16, uppercase: true) + "/"
      + String(rawValue & 0xFFFF_FFFF, radix: 16, uppercase: true)
  }

  public static func < (lhs: LSN, rhs: LSN) -> Bool { lhs.rawValue < rhs.rawValue }
}
