import JSON

/// A write's body as column → JSON value, from either JSON or a form.
enum RequestBody {
  static func fields(of request: APIRequest) throws(APIError) -> [String: JSONValue] {
    let type = mediaType(of: request.contentType) ?? ""
    switch type {
    case "application/json", "":
      if type.isEmpty && request.body.isEmpty { return [:] }
      let value: JSONValue
      do {
        value = try JSONParser.parse(request.body)
      } catch {
        throw .badRequest("invalid_json", "the body is not valid JSON: \(error)")
      }
      guard case .object(let members) = value else {
        throw .unprocessable("invalid_body", "the body must be a JSON object of column values")
      }
      return members
    case "application/x-www-form-urlencoded":
      var members: [String: JSONValue] = [:]
      for (name, value) in try FormDecoding.decode(request.body) { members[name] = .string(value) }
      return members
    default:
      throw .unsupportedMediaType(type)
    }
  }
}
