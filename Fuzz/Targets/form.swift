// FormDecoding: query strings (QUERY_STRING, as the worker reads it) and
// form bodies, and the percent-decoding of a row key in the URL path.
// Properties: no crash; errors are 400s; the bytes and their text decode
// alike, and as a byte-by-byte reference decoder does (WHATWG's form parsing,
// as strict about escapes and UTF-8); pairs encoded again decode to the same
// pairs; a path segment that decodes encodes back to itself.
@testable import PBPAPI

/// The form format as the URL standard splits it: on bytes, `&` between
/// pairs, the first `=` between name and value; `nil` where a broken escape,
/// a name or value that is not UTF-8, or NUL makes FormDecoding refuse.
private func referenceDecode(_ bytes: [UInt8]) -> [(String, String)]? {
  var pairs: [(String, String)] = []
  for part in bytes.split(separator: UInt8(ascii: "&")) {
    let equals = part.firstIndex(of: UInt8(ascii: "="))
    guard let name = referenceUnescape(equals.map { part[..<$0] } ?? part),
      let value = referenceUnescape(equals.map { part[($0 + 1)...] } ?? [])
    else { return nil }
    pairs.append((name, value))
  }
  return pairs
}

private func referenceUnescape(_ bytes: ArraySlice<UInt8>) -> String? {
  func hex(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
  }
  var output: [UInt8] = []
  var index = bytes.startIndex
  while index < bytes.endIndex {
    switch bytes[index] {
    case UInt8(ascii: "+"):
      output.append(0x20)
      index += 1
    case UInt8(ascii: "%"):
      guard index + 2 < bytes.endIndex, let high = hex(bytes[index + 1]), let low = hex(bytes[index + 2]) else {
        return nil
      }
      output.append(high << 4 | low)
      index += 3
    case let byte:
      output.append(byte)
      index += 1
    }
  }
  // FormDecoding refuses NUL too: libpq would cut a parameter short at one.
  return output.contains(0) ? nil : String(validating: output, as: UTF8.self)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzForm(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
  let bytes = FuzzInput.bytes(data, size)

  // A body arrives as bytes; a query string as text already repaired to UTF-8.
  let fromBytes: [(String, String)]?
  do throws(APIError) {
    fromBytes = try FormDecoding.decode(bytes)
  } catch {
    require(error.status == 400, "form error with status \(error.status)")
    fromBytes = nil
  }
  let text = String(decoding: bytes, as: UTF8.self)
  let fromText: [(String, String)]?
  do throws(APIError) {
    fromText = try FormDecoding.decode(text[...])
  } catch {
    require(error.status == 400, "query error with status \(error.status)")
    fromText = nil
  }
  if let fromBytes {
    require(fromText != nil, "the bytes decode but their text does not")
    require(fromBytes.elementsEqual(fromText!, by: ==), "the bytes and the text decode differently")
  }

  let reference = referenceDecode(Array(text.utf8))
  require((fromText == nil) == (reference == nil), "FormDecoding \(fromText == nil ? "refuses" : "accepts") it")
  if let fromText, let reference {
    require(fromText.elementsEqual(reference, by: ==), "pairs \(fromText) but by bytes \(reference)")
  }

  if let pairs = fromText {
    for lowercaseHex in [false, true] {
      let encoded = pairs.map { formEncode($0.0, lowercaseHex: lowercaseHex) + "=" + formEncode($0.1) }
        .joined(separator: "&")
      do throws(APIError) {
        let again = try FormDecoding.decode(encoded[...])
        require(again.elementsEqual(pairs, by: ==), "re-encoded pairs decode differently: \(encoded)")
      } catch {
        require(false, "re-encoded pairs do not decode: \(encoded): \(error)")
      }
    }
  }

  // /api/{table}/{key}: each path segment is percent-decoded on its own.
  for segment in text.split(separator: "/", omittingEmptySubsequences: false) {
    guard let key = try? FormDecoding.percentDecode(segment) else { continue }
    let encoded = formEncode(key)
    require((try? FormDecoding.percentDecode(encoded[...])) == key, "key \(key) does not survive encoding")
  }
  return 0
}
