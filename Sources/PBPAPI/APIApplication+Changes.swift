import LongPoll

/// `/api/changes`: the request read into a ``ChangePoll``, which the worker
/// hands to its hub.
extension APIApplication {
  func changePoll(_ request: APIRequest) throws(APIError) -> ChangePoll {
    let isKnown = { (name: String) in configuration.tables.contains(name) }
    switch request.method {
    case "GET":
      return try ChangePoll.parse(query: request.query, limits: configuration.pollLimits, isKnownTable: isKnown)
    case "POST":
      let type = mediaType(of: request.contentType)
      guard type == nil || type == "application/json" else {
        throw .unsupportedMediaType(type ?? "")
      }
      return try ChangePoll.parse(json: request.body, limits: configuration.pollLimits, isKnownTable: isKnown)
    default:
      throw .methodNotAllowed(request.method, allowed: ["GET", "POST"])
    }
  }
}
