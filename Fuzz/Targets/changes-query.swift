// GET /api/changes?cursor=…&table=…&where.COLUMN=VALUE&timeout=…: the raw
// query string through FormDecoding and ChangePoll.parse(query:), as the
// worker does it. Properties: no crash; errors are 400 or 404 with a JSON
// body; an accepted poll has one subscription on a known table, a bounded
// timeout, and equals the poll parsed from the same request sent as JSON.
import ChangeStream
import JSON
import LongPoll

@testable import PBPAPI

private let knownTables = Set(fuzzTables.keys)
private let limits = ChangePoll.Limits()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChangesQuery(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
  let queryString = String(decoding: FuzzInput.bytes(data, size), as: UTF8.self)
  let query: [(String, String)]
  let poll: ChangePoll
  do throws(APIError) {
    query = try FormDecoding.decode(queryString[...])
    poll = try ChangePoll.parse(query: query, limits: limits, describe: describeFuzzTable)
  } catch {
    checkErrorResponse(error, allowedStatuses: [400, 404])
    return 0
  }
  require(poll.subscriptions.count == 1, "\(poll.subscriptions.count) subscriptions from a query")
  require(knownTables.contains(poll.subscriptions[0].table), "unknown table accepted")
  require(poll.timeout >= .zero && poll.timeout <= limits.maximumTimeout, "timeout \(poll.timeout)")

  // The same request as a POST body: the last value of a repeated name wins.
  // (JSON bodies may not carry NUL, which no PostgreSQL text holds anyway.)
  guard !query.contains(where: { $0.0.contains("\0") || $0.1.contains("\0") }) else { return 0 }
  var members: [String: JSONValue] = [:]
  var conditions: [String: JSONValue] = [:]
  for (name, value) in query {
    if name.hasPrefix("where.") {
      conditions[String(name.dropFirst(6))] = .string(value)
    } else if name == "cursor" {
      members[name] = value.isEmpty ? .null : .string(value)
    } else {
      members[name] = .string(value)
    }
  }
  let table = members.removeValue(forKey: "table") ?? .null
  members["subscriptions"] = .array([.object(["table": table, "where": .object(conditions)])])
  let body = JSONWriter.serialize(.object(members))
  do throws(APIError) {
    let fromJSON = try ChangePoll.parse(json: Array(body.utf8), limits: limits, describe: describeFuzzTable)
    require(fromJSON == poll, "query and JSON disagree: \(body)")
  } catch {
    require(false, "the query's poll fails as JSON (\(error.code)): \(body)")
  }
  return 0
}
