// RequestBody.fields(of:): a write's body (POST, PUT, PATCH) by its
// Content-Type, JSON or form.
//
// Input: a control byte (bits 0–2 choose the Content-Type, 7 = the next line
// of the input), then the body.
//
// Properties: no crash; errors are 400, 415 or 422 with a JSON body; a JSON
// body gives its object's members, a form body its pairs as strings (the last
// of a repeated name wins); an empty body without a type is no fields.
import JSON

@testable import PBPAPI

private let contentTypes: [String?] = [
  nil, "application/json", "application/x-www-form-urlencoded", "Application/JSON; charset=utf-8",
  " application/x-www-form-urlencoded ;charset=UTF-8", "text/plain", "",
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequestBody(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
  var input = FuzzInput(data, size)
  let control = input.byte()
  let choice = Int(control & 7)
  let contentType = choice < contentTypes.count ? contentTypes[choice] : String(decoding: input.line(), as: UTF8.self)
  let body = input.rest()
  let request = APIRequest(method: "POST", path: "/api/testtype", contentType: contentType, body: body)

  let fields: [String: JSONValue]
  do throws(APIError) {
    fields = try RequestBody.fields(of: request)
  } catch {
    checkErrorResponse(error, allowedStatuses: [400, 415, 422])
    return 0
  }
  let mediaType = (contentType ?? "").split(separator: ";").first.map { $0.trimmingOptionalWhitespace().lowercased() }
  switch mediaType ?? "" {
  case "application/json", "":
    if (mediaType ?? "").isEmpty && body.isEmpty {
      require(fields.isEmpty, "fields from an empty body")
    } else {
      require((try? JSONParser.parse(body)) == .object(fields), "fields that are not the body's object")
    }
  case "application/x-www-form-urlencoded":
    var expected: [String: JSONValue] = [:]
    for (name, value) in (try? FormDecoding.decode(body)) ?? [] { expected[name] = .string(value) }
    require(fields == expected, "fields that are not the form's pairs")
  default:
    require(false, "fields from a body of type \(mediaType ?? "none")")
  }
  return 0
}

extension Substring {
  /// Without HTTP's optional whitespace (spaces and tabs) and line ends around
  /// it, scalar by scalar, as the server trims header values.
  fileprivate func trimmingOptionalWhitespace() -> String {
    let whitespace: Set<Unicode.Scalar> = [" ", "\t", "\r", "\n"]
    var scalars = Array(unicodeScalars)
    while let first = scalars.first, whitespace.contains(first) { scalars.removeFirst() }
    while let last = scalars.last, whitespace.contains(last) { scalars.removeLast() }
    return String(String.UnicodeScalarView(scalars))
  }
}
