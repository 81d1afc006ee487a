/// Bytes from the replication stream that are not what the protocol says.
/// `in` names the message being decoded, `field` the part that was wrong.
public enum WALDecodingError: Error, Equatable, Sendable, CustomStringConvertible {
  case empty(in: String)
  case unknownType(UInt8, in: String)
  case truncated(field: String, in: String, needed: Int, available: Int)
  case unterminatedString(field: String, in: String)
  case trailingBytes(in: String, count: Int)

  public var description: String {
    switch self {
    case .empty(let message): return "an empty \(message)"
    case .unknownType(let type, let message):
      let shown = (0x20..<0x7F).contains(type) ? "'\(Character(Unicode.Scalar(type)))'" : "0x\(String(type, radix: 16))"
      return "a \(message) of unknown type \(shown)"
    case .truncated(let field, let message, let needed, let available):
      return "\(message) cut short at \(field): \(needed) bytes needed, \(available) left"
    case .unterminatedString(let field, let message): return "\(message)'s \(field) has no terminating NUL"
    case .trailingBytes(let message, let count): return "\(count) bytes after the end of a \(message)"
    }
  }
}
