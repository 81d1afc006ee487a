/// What a request's `Authorization` header says about who sends it
/// (RFC 6750 §2.1). A header that is present but is not a well-formed bearer
/// credential is `malformed`, never `absent`: a client that meant to send a
/// token must not be served as anonymous because it got the syntax wrong.
public enum BearerCredential: Equatable, Sendable {
  case absent
  case token(String)
  case malformed(reason: String)

  /// `value` is the header's value, or nil when the request has none.
  public init(authorizationHeader value: String?) {
    guard let value else {
      self = .absent
      return
    }
    // One contiguous copy: walking a String's UTF8View byte by byte, backwards too, costs microseconds.
    let bytes = Array(value.utf8)
    var start = bytes.startIndex
    var end = bytes.endIndex
    while start < end, Self.isSpace(bytes[start]) { start += 1 }
    while end > start, Self.isSpace(bytes[end - 1]) { end -= 1 }
    let trimmed = bytes[start..<end]
    let scheme = trimmed.prefix { !Self.isSpace($0) }
    guard Self.isBearerScheme(scheme) else {
      self = .malformed(
        reason: trimmed.isEmpty ? "the Authorization header is empty" : "the Authorization scheme is not Bearer")
      return
    }
    let credential = trimmed[scheme.endIndex...].drop(while: Self.isSpace)
    guard !credential.isEmpty else {
      self = .malformed(reason: "the Bearer credential is empty")
      return
    }
    guard credential.allSatisfy(Self.isToken68) else {
      self = .malformed(reason: "the Bearer credential has characters a token cannot have")
      return
    }
    self = .token(String(decoding: credential, as: UTF8.self))
  }

  private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

  private static let bearer = Array("bearer".utf8)

  private static func isBearerScheme(_ scheme: some Collection<UInt8>) -> Bool {
    let bearer = Self.bearer
    guard scheme.count == bearer.count else { return false }
    // ASCII case folding only: `| 0x20` lowers A-Z and leaves the letters of "bearer" as they are.
    return zip(scheme, bearer).allSatisfy { ($0 | 0x20) == $1 }
  }

  /// RFC 7235's token68: what a compact JWT (base64url parts joined by dots) is made of.
  private static func isToken68(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
      UInt8(ascii: "0")...UInt8(ascii: "9"):
      return true
    case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "+"),
      UInt8(ascii: "/"), UInt8(ascii: "="):
      return true
    default:
      return false
    }
  }
}
