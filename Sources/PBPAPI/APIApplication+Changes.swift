import LongPoll

/// `/api/changes`: the request read into a ``ChangePoll``, which the worker
/// hands to its hub.
extension APIApplication {
  func changePoll(_ request: APIRequest, session: DatabaseSession) throws(APIError) -> ChangePoll {
    do {
      return try parsePoll(request, session: session)
    } catch  where error.code == "unknown_column" || error.code == "invalid_filter" {
      // The column may be new, or of a new type: judged again on the table described afresh.
      _ = try catalogSnapshot(session, reason: .miss)
      return try parsePoll(request, session: session)
    }
  }

  private func parsePoll(_ request: APIRequest, session: DatabaseSession) throws(APIError) -> ChangePoll {
    let describe = { (name: String) throws(APIError) -> TableInfo in try tableInfo(name, session) }
    switch request.method {
    case "GET":
      return try ChangePoll.parse(query: request.query, limits: configuration.pollLimits, describe: describe)
    case "POST":
      let type = mediaType(of: request.contentType)
      guard type == nil || type == "application/json" else {
        throw .unsupportedMediaType(type ?? "")
      }
      return try ChangePoll.parse(json: request.body, limits: configuration.pollLimits, describe: describe)
    default:
      throw .methodNotAllowed(request.method, allowed: ["GET", "POST"])
    }
  }
}
