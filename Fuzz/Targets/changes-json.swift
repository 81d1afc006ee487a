// ChangePoll.parse(json:): the body of POST /api/changes (cursor,
// subscriptions, timeout). Properties: no crash; errors are 400 or 404 with a
// JSON body; an accepted poll has 1…limit subscriptions on known tables, each
// as the body lists it, a timeout in 0…maximum and the body's cursor text; a
// lower subscription limit accepts the same poll or says too_many_subscriptions.
import ChangeStream
import JSON

import LongPoll
@testable import PBPAPI

private let knownTables: Set<String> = ["testtype", "other"]
private let limits = ChangePoll.Limits()
private let smallLimits = ChangePoll.Limits(maximumSubscriptions: 2)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChangesJSON(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
  let body = FuzzInput.bytes(data, size)
  let poll: ChangePoll
  do throws(APIError) {
    poll = try ChangePoll.parse(json: body, limits: limits, isKnownTable: knownTables.contains)
  } catch {
    checkErrorResponse(error, allowedStatuses: [400, 404])
    return 0
  }
  checkPoll(poll, limits: limits)

  // The body parsed, so it is a JSON object; the poll says what it says.
  guard case .object(let members)? = try? JSONParser.parse(body), case .array(let list)? = members["subscriptions"]
  else {
    require(false, "a poll from a body that is not an object with subscriptions")
    return 0
  }
  require(poll.subscriptions.count == list.count, "\(poll.subscriptions.count) subscriptions of \(list.count)")
  for (subscription, entry) in zip(poll.subscriptions, list) {
    require(entry["table"] == .string(subscription.table), "table \(subscription.table) not from the body")
    if case .object(let conditions)? = entry["where"] {
      require(subscription.filters.count == conditions.count, "filters \(subscription.filters) from \(conditions)")
      for (column, value) in conditions {
        require(subscription.filters[column] == value.scalarText, "filter \(column) is not the body's")
      }
    } else {
      require(subscription.filters.isEmpty, "filters without a where")
    }
  }
  switch members["cursor"] {
  case .string(let text)?:
    require(poll.cursor?.description == text, "cursor \(text) became \(String(describing: poll.cursor))")
  default: require(poll.cursor == nil, "a cursor from nowhere")
  }

  do throws(APIError) {
    let small = try ChangePoll.parse(json: body, limits: smallLimits, isKnownTable: knownTables.contains)
    require(small == poll, "a lower limit changed the poll")
  } catch {
    require(
      error.code == "too_many_subscriptions" && poll.subscriptions.count > smallLimits.maximumSubscriptions,
      "a lower limit failed with \(error.code)")
  }
  return 0
}

func checkPoll(_ poll: ChangePoll, limits: ChangePoll.Limits) {
  require(!poll.subscriptions.isEmpty, "a poll without subscriptions")
  require(poll.subscriptions.count <= limits.maximumSubscriptions, "\(poll.subscriptions.count) subscriptions")
  for subscription in poll.subscriptions {
    require(knownTables.contains(subscription.table), "unknown table \(subscription.table) accepted")
  }
  require(poll.timeout >= .zero && poll.timeout <= limits.maximumTimeout, "timeout \(poll.timeout)")
  if let cursor = poll.cursor {
    require(Cursor(parsing: cursor.description) == cursor, "cursor \(cursor) does not parse back")
  }
}
