// ChangePoll.parse(json:): the body of POST /api/changes (cursor,
// subscriptions, timeout). Properties: no crash; errors are 400 or 404 with a
// JSON body, and an error about the filter caps is true of the body; an
// accepted poll has 1…limit subscriptions on known tables, each as the body
// lists it, filters only on the table's columns with values of their types,
// within every filter cap, a timeout in 0…maximum and the body's cursor text; tighter limits (subscriptions, filters, their bytes, the
// body's bytes) refuse whatever the defaults refuse, and accept the same poll
// unless it exceeds one of them, which the error code names.
import ChangeStream
import JSON
import LongPoll

@testable import PBPAPI

private let knownTables = Set(fuzzTables.keys)
private let limits = ChangePoll.Limits()
private let tightLimits = ChangePoll.Limits(
  maximumSubscriptions: 2, maximumFiltersPerSubscription: 2, maximumFilterColumnBytes: 4, maximumFilterValueBytes: 8,
  maximumFilterBytes: 24, maximumFilters: 3, maximumBodyBytes: 256)

/// The filter caps (by the error code that names each) that these filters exceed.
private func exceeded(_ subscriptions: [[String: String]], bodyBytes: Int, limits: ChangePoll.Limits) -> Set<String> {
  var codes: Set<String> = []
  if subscriptions.count > limits.maximumSubscriptions { codes.insert("too_many_subscriptions") }
  if bodyBytes > limits.maximumBodyBytes { codes.insert("body_too_large") }
  var bytes = 0
  var count = 0
  for filters in subscriptions {
    if filters.count > limits.maximumFiltersPerSubscription { codes.insert("too_many_filters") }
    for (column, value) in filters {
      if column.utf8.count > limits.maximumFilterColumnBytes || value.utf8.count > limits.maximumFilterValueBytes {
        codes.insert("filter_too_long")
      }
      bytes += column.utf8.count + value.utf8.count
    }
    count += filters.count
  }
  if count > limits.maximumFilters { codes.insert("too_many_filters") }
  if bytes > limits.maximumFilterBytes { codes.insert("filters_too_large") }
  return codes
}

/// The body's subscriptions' filters as texts, as far as they are filters.
private func bodyFilters(_ body: [UInt8]) -> [[String: String]] {
  guard case .array(let list)? = (try? JSONParser.parse(body))?["subscriptions"] else { return [] }
  return list.map { entry in
    guard case .object(let conditions)? = entry["where"] else { return [:] }
    return conditions.mapValues { $0.scalarText ?? "" }
  }
}

private let filterCodes: Set<String> = ["too_many_filters", "filter_too_long", "filters_too_large"]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChangesJSON(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
  let body = FuzzInput.bytes(data, size)
  let poll: ChangePoll
  do throws(APIError) {
    poll = try ChangePoll.parse(json: body, limits: limits, describe: describeFuzzTable)
  } catch {
    checkErrorResponse(error, allowedStatuses: [400, 404])
    if filterCodes.contains(error.code) {
      let codes = exceeded(bodyFilters(body), bodyBytes: body.count, limits: limits)
      require(codes.contains(error.code), "\(error.code) for a body within that cap (exceeds \(codes))")
    }
    do throws(APIError) {
      let tight = try ChangePoll.parse(json: body, limits: tightLimits, describe: describeFuzzTable)
      require(false, "tighter limits accept \(tight), which the defaults refuse with \(error.code)")
    } catch {
      checkErrorResponse(error, allowedStatuses: [400, 404, 413])
    }
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

  let over = exceeded(poll.subscriptions.map(\.filters), bodyBytes: body.count, limits: tightLimits)
  do throws(APIError) {
    let tight = try ChangePoll.parse(json: body, limits: tightLimits, describe: describeFuzzTable)
    require(over.isEmpty, "tighter limits accept a poll that exceeds \(over)")
    require(tight == poll, "tighter limits changed the poll")
  } catch {
    checkErrorResponse(error, allowedStatuses: [400, 413])
    require(over.contains(error.code), "tighter limits fail with \(error.code), but the poll exceeds \(over)")
  }
  return 0
}

func checkPoll(_ poll: ChangePoll, limits: ChangePoll.Limits) {
  require(!poll.subscriptions.isEmpty, "a poll without subscriptions")
  require(poll.subscriptions.count <= limits.maximumSubscriptions, "\(poll.subscriptions.count) subscriptions")
  for subscription in poll.subscriptions {
    require(knownTables.contains(subscription.table), "unknown table \(subscription.table) accepted")
    for (column, value) in subscription.filters {
      let described = fuzzTables[subscription.table]?.column(named: column)
      require(described != nil, "a filter on \(column), which \(subscription.table) lacks, accepted")
      require(described?.kind.filterRefusal(value) == nil, "filter \(column) = \(value) accepted against its type")
    }
  }
  require(poll.timeout >= .zero && poll.timeout <= limits.maximumTimeout, "timeout \(poll.timeout)")
  let over = exceeded(poll.subscriptions.map(\.filters), bodyBytes: 0, limits: limits)
  require(over.isEmpty, "an accepted poll exceeds \(over)")
  if let cursor = poll.cursor {
    require(Cursor(parsing: cursor.description) == cursor, "cursor \(cursor) does not parse back")
  }
}
