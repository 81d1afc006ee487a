// JSONParser.parse: the strict parser behind every JSON body and payload.
// Properties: no crash; JSONParser.validate throws what parse throws (the
// same reason at the same offset), and nothing where parse accepts; an
// error's offset lies inside the input; tooDeep is reported at the bracket
// that opens one level more than the limit; a parsed text nests no deeper
// than the limit, and the limit is exact (the text's own depth passes, one
// less is tooDeep; a member given twice may leave a value shallower than its
// text); a parsed value written by JSONWriter parses back to an equal value;
// the text as a String parses alike.
import JSON

/// Arrays and objects inside one another: `1` is 0, `[]` is 1, `[{}]` is 2.
private func depth(_ value: JSONValue) -> Int {
  switch value {
  case .array(let elements): 1 + (elements.map(depth).max() ?? 0)
  case .object(let members): 1 + (members.values.map(depth).max() ?? 0)
  default: 0
  }
}

/// How many arrays and objects are open after a prefix of a JSON text.
private func openBrackets(_ bytes: ArraySlice<UInt8>) -> Int {
  bracketScan(bytes).open
}

/// The most arrays and objects open at once anywhere in a JSON text.
private func textDepth(_ bytes: [UInt8]) -> Int {
  bracketScan(bytes[...]).deepest
}

private func bracketScan(_ bytes: ArraySlice<UInt8>) -> (open: Int, deepest: Int) {
  var open = 0
  var deepest = 0
  var inString = false
  var escaped = false
  for byte in bytes {
    if inString {
      if escaped {
        escaped = false
      } else if byte == UInt8(ascii: "\\") {
        escaped = true
      } else if byte == UInt8(ascii: "\"") {
        inString = false
      }
    } else {
      switch byte {
      case UInt8(ascii: "\""): inString = true
      case UInt8(ascii: "["), UInt8(ascii: "{"):
        open += 1
        deepest = max(deepest, open)
      case UInt8(ascii: "]"), UInt8(ascii: "}"): open -= 1
      default: break
      }
    }
  }
  return (open, deepest)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
  let bytes = FuzzInput.bytes(data, size)
  // validate builds nothing but must judge exactly as parse does.
  var validation: JSONParseError?
  do throws(JSONParseError) { try JSONParser.validate(bytes) } catch { validation = error }
  let value: JSONValue
  do throws(JSONParseError) {
    value = try JSONParser.parse(bytes)
    require(validation == nil, "validate threw \(validation!), parse accepted")
  } catch {
    require(
      validation == error, "parse threw \(error), validate \(validation.map(String.init(describing:)) ?? "accepted")")
    require(error.offset >= 0 && error.offset <= bytes.count, "error offset \(error.offset) of \(bytes.count)")
    if case .tooDeep(let limit) = error.reason {
      let open = openBrackets(bytes[..<error.offset])
      require(
        open == limit && [UInt8(ascii: "["), UInt8(ascii: "{")].contains(bytes[error.offset]),
        "tooDeep at offset \(error.offset) with \(open) levels open")
    }
    return 0
  }

  // The limit applies to the text: a member given twice keeps its last value,
  // which may nest less deeply than the one it replaced.
  let levels = textDepth(bytes)
  require(depth(value) <= levels, "value nests \(depth(value)) levels, its text \(levels)")
  require(levels <= JSONParser.defaultMaximumDepth, "\(levels) levels accepted")
  require((try? JSONParser.parse(bytes, maximumDepth: levels)) == value, "refused at its own depth \(levels)")
  if levels > 0 {
    do throws(JSONParseError) {
      _ = try JSONParser.parse(bytes, maximumDepth: levels - 1)
      require(false, "accepted \(levels) levels with a limit of \(levels - 1)")
    } catch {
      require(error.reason == .tooDeep(limit: levels - 1), "at limit \(levels - 1): \(error)")
    }
  }

  let written = JSONWriter.serialize(value)
  do throws(JSONParseError) {
    let again = try JSONParser.parse(written)
    require(again == value, "round trip changed the value: \(written)")
  } catch {
    require(false, "JSONWriter wrote what the parser rejects (\(error)): \(written)")
  }
  if let text = String(validating: bytes, as: UTF8.self) {
    require((try? JSONParser.parse(text)) == value, "the String parses differently from its bytes")
  }
  return 0
}
