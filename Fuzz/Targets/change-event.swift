// ChangeEvent(seq:payload:): a NOTIFY payload as a worker keeps it (anyone
// who may NOTIFY on the channel can send one), the subscriptions it matches,
// and the /api/changes answer it is spliced into.
//
// Input: a control byte (bits 0–1: how many of a row's columns the row's own
// filters take, less one; bit 2: start at the row's second column; bit 7:
// put more whitespace before the payload than an event frame carries, which must then be
// refused as too large),
// two bytes of sequence number, a line of filters `column=value&…` for
// subscriptions of the fuzzer's own, then the payload.
//
// The oracle is stated here, from JSONParser's reading of the payload and an
// ordered walk of its members (JSONParser keeps the last of two equal names,
// so it cannot see duplicates): a payload is accepted iff it has one of the
// shapes pbp_notify() and pbp_notify_truncate() write (sql/01-pbp.sql) and
// fits the 16-bit offsets. Properties: no crash; `isRefused` is the oracle's
// verdict; a refused event names no table, holds nothing and matches nothing;
// an accepted one has the payload's table, op, key, truncated flag and rows
// (row(new:), the columns' names and filter texts), and `{` + answerMembers +
// `}` is the payload again; Subscription.form(of:) and SubscriptionSet.judge
// both give the oracle's verdict, as is or as a removal (filters drawn from
// the event's own rows and from the input, owner conditions from its string
// columns); through a ParkingLot, a parked poll and a poll that scans the ring
// get exactly the oracle's matches, and a refused payload reaches no answer;
// the rendered answer is JSON without a duplicated member: an event reached
// as is carries the payload's members and the server's cursor and matches,
// one reached as a removal the payload's table, key, mtime and old row as a
// delete with no new row.
import ChangeStream
import JSON

@testable import LongPoll
@testable import PBPAPI

/// A JSON text's structure with every object's members in text order, names
/// decoded (duplicates kept); scalars are not looked into. Only for text
/// JSONParser has accepted.
private indirect enum Ordered {
  case object([(name: String, value: Ordered)])
  case array([Ordered])
  case scalar

  init(_ bytes: [UInt8]) {
    var index = 0
    self = Ordered.value(bytes, &index)
  }

  var members: [(name: String, value: Ordered)] {
    if case .object(let members) = self { return members }
    return []
  }

  private static func value(_ bytes: [UInt8], _ index: inout Int) -> Ordered {
    skipSpace(bytes, &index)
    switch bytes[index] {
    case UInt8(ascii: "{"):
      index += 1
      var members: [(String, Ordered)] = []
      skipSpace(bytes, &index)
      if bytes[index] == UInt8(ascii: "}") {
        index += 1
        return .object(members)
      }
      while true {
        skipSpace(bytes, &index)
        let start = index
        skipString(bytes, &index)
        let name = (try? JSONParser.parse(bytes[start..<index]))?.scalarText ?? "\u{FFFD}unreadable"
        skipSpace(bytes, &index)
        index += 1  // :
        members.append((name, value(bytes, &index)))
        skipSpace(bytes, &index)
        index += 1  // , or }
        if bytes[index - 1] == UInt8(ascii: "}") { return .object(members) }
      }
    case UInt8(ascii: "["):
      index += 1
      var elements: [Ordered] = []
      skipSpace(bytes, &index)
      if bytes[index] == UInt8(ascii: "]") {
        index += 1
        return .array(elements)
      }
      while true {
        elements.append(value(bytes, &index))
        skipSpace(bytes, &index)
        index += 1
        if bytes[index - 1] == UInt8(ascii: "]") { return .array(elements) }
      }
    case UInt8(ascii: "\""):
      skipString(bytes, &index)
      return .scalar
    default:
      while index < bytes.count, !",]} \t\r\n".utf8.contains(bytes[index]) { index += 1 }
      return .scalar
    }
  }

  private static func skipString(_ bytes: [UInt8], _ index: inout Int) {
    index += 1
    while bytes[index] != UInt8(ascii: "\"") { index += bytes[index] == UInt8(ascii: "\\") ? 2 : 1 }
    index += 1
  }

  private static func skipSpace(_ bytes: [UInt8], _ index: inout Int) {
    while index < bytes.count, " \t\r\n".utf8.contains(bytes[index]) { index += 1 }
  }
}

private func hasDuplicates(_ members: [(name: String, value: Ordered)]) -> Bool {
  Set(members.map(\.name)).count != members.count
}

/// What the oracle reads from a payload it accepts.
private struct Expected {
  let table: String
  let op: String
  let key: JSONValue
  let truncated: Bool
  let new: [String: JSONValue]?
  let old: [String: JSONValue]?
}

private let rowOps: Set<String> = ["insert", "update", "delete"]
private let rowChange: Set<String> = ["table", "op", "key", "mtime", "new", "old"]
private let truncatedRow: Set<String> = ["table", "op", "key", "mtime", "truncated"]
private let truncate: Set<String> = ["table", "op", "key", "mtime"]
private let ownedTruncatedRow = rowChange.union(["truncated"])

/// The trigger's shapes, written out: every member once, one of these sets
/// of names and no other, these types.
private func oracle(_ payload: [UInt8], _ parsed: JSONValue?, _ ordered: Ordered?) -> Expected? {
  // A worker's offsets are 16-bit: a frame holds at most 64 KiB.
  guard payload.count <= StreamFrame.maximumEventPayload, case .object(let members)? = parsed, let ordered else {
    return nil
  }
  guard !hasDuplicates(ordered.members) else { return nil }
  guard case .string(let table)? = members["table"], !table.isEmpty, case .string(let op)? = members["op"],
    case .string? = members["mtime"], let key = members["key"]
  else { return nil }
  let names = Set(members.keys)
  if names == truncate && op == "truncate" && key == .null {
    return Expected(table: table, op: op, key: key, truncated: false, new: nil, old: nil)
  }
  guard rowOps.contains(op), key != .null else { return nil }
  if names == truncatedRow && members["truncated"] == .bool(true) {
    return Expected(table: table, op: op, key: key, truncated: true, new: nil, old: nil)
  }
  let ownerOnly = names == ownedTruncatedRow && members["truncated"] == .bool(true)
  guard names == rowChange || ownerOnly else { return nil }
  /// nil: not what the op needs; .some(nil): no row, as the op needs.
  func row(_ name: String, present: Bool) -> [String: JSONValue]?? {
    switch members[name] {
    case .object(let columns)? where present:
      let text = ordered.members.first { $0.name == name }!.value
      return hasDuplicates(text.members) ? nil : .some(columns)
    case .null? where !present: return .some(nil)
    default: return nil
    }
  }
  guard let new = row("new", present: op != "delete"), let old = row("old", present: op != "insert") else {
    return nil
  }
  if ownerOnly {
    // Each row its owner column alone, a string or null, the same column in both.
    var column: String?
    for row in [new, old] {
      guard let row else { continue }
      guard row.count == 1, let (name, value) = row.first, value == .null || value.isString else { return nil }
      if let column, !column.utf8.elementsEqual(name.utf8) { return nil }
      column = name
    }
  }
  return Expected(table: table, op: op, key: key, truncated: ownerOnly, new: new, old: old)
}

/// How a subscription should get the event, from the oracle's reading: an
/// owner condition wants the new row's column to be its string, byte for
/// byte (as is when the old row, if any, was theirs too; an arrival, which
/// must pass the filters by the new row, when it was another's), else the
/// old row's (a removal, which must pass the filters by the old row).
private func expectedForm(_ subscription: Subscription, _ expected: Expected?) -> EventForm? {
  guard let expected, expected.table == subscription.table else { return nil }
  var form = EventForm.asIs
  if let owner = subscription.owner, expected.op != "truncate" {
    func holds(_ row: [String: JSONValue]?) -> Bool {
      guard let value = owner.value, let row else { return false }
      let cell = row.first { $0.key.utf8.elementsEqual(owner.column.utf8) }?.value
      guard case .string(let text)? = cell else { return false }
      return text.utf8.elementsEqual(value.utf8)
    }
    if holds(expected.new) {
      form = expected.old != nil && !holds(expected.old) ? .asArrival : .asIs
    } else if holds(expected.old) {
      form = .asRemoval
    } else {
      return nil
    }
  }
  if subscription.filters.isEmpty || expected.truncated || expected.op == "truncate" { return form }
  func passes(_ row: [String: JSONValue]?) -> Bool {
    guard let row else { return false }
    return subscription.filters.allSatisfy { column, value in row[column]?.scalarText == value }
  }
  switch form {
  case .asIs: return passes(expected.new) || passes(expected.old) ? .asIs : nil
  case .asRemoval: return passes(expected.old) ? .asRemoval : nil
  case .asArrival: return passes(expected.new) ? .asArrival : nil
  }
}

extension JSONValue {
  fileprivate var isString: Bool {
    if case .string = self { return true }
    return false
  }
}

/// Owner conditions from the rows' string columns (the first two of each
/// row): the value itself, the same changed, and no claim; each alone and
/// with the first filters of the row's own.
private func ownerSubscriptions(
  table: String, rows: [(ordered: Ordered, value: [String: JSONValue])], filters: [String: String]
) -> [Subscription] {
  var subscriptions: [Subscription] = []
  for row in rows {
    for column in row.ordered.members.map(\.name).prefix(2) {
      guard case .string(let text)? = row.value[column] else { continue }
      for value in [text, text + "x", nil] {
        let owner = OwnerCondition(column: column, value: value)
        subscriptions.append(Subscription(table: table, owner: owner))
        subscriptions.append(Subscription(table: table, filters: filters, owner: owner))
      }
    }
  }
  return subscriptions
}

/// `column=value&…` as filters (no decoding: any text will do).
private func filters(_ line: ArraySlice<UInt8>) -> [String: String] {
  var filters: [String: String] = [:]
  for pair in line.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
    let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
    filters[String(decoding: parts[0], as: UTF8.self)] = String(
      decoding: parts.count > 1 ? parts[1] : [], as: UTF8.self)
  }
  return filters
}

/// Filters from a row of the payload (in text order), as the tests of a
/// client would write them: some columns with their values, the same with
/// the last value changed, and a filter on a column of the other row.
private func ownRowSubscriptions(
  table: String, rows: [(ordered: Ordered, value: [String: JSONValue])], count: Int, skip: Int
) -> [Subscription] {
  var subscriptions: [Subscription] = []
  for (index, row) in rows.enumerated() {
    let columns = row.ordered.members.map(\.name).dropFirst(skip).prefix(count)
    guard let last = columns.last else { continue }
    var filters: [String: String] = [:]
    // A value without filter text (null, object, array) is asked for as its JSON.
    for column in columns { filters[column] = row.value[column].map { $0.scalarText ?? JSONWriter.serialize($0) } }
    subscriptions.append(Subscription(table: table, filters: filters))
    var changed = filters
    changed[last]! += "x"
    subscriptions.append(Subscription(table: table, filters: changed))
    if index == 0, rows.count > 1, let other = rows[1].ordered.members.first {
      filters[other.name] = rows[1].value[other.name]?.scalarText ?? ""
      subscriptions.append(Subscription(table: table, filters: filters))
    }
  }
  return subscriptions
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChangeEvent(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
  var input = FuzzInput(data, size)
  let control = input.byte()
  let seq = UInt64(input.uint16()) + 1
  let inputFilters = filters(input.line())
  let payload = input.rest()
  if control & 0x80 != 0 {
    // Longer than a frame carries, whatever follows: refused before it is
    // parsed (parsing 8 MiB per input would slow the fuzzer to a crawl; the
    // unit tests keep a megabyte row).
    let padded = [UInt8](repeating: 0x20, count: StreamFrame.maximumEventPayload + 1) + payload
    let refused = ChangeEvent(seq: seq, payload: padded)
    require(refused.refusal == .tooLarge(bytes: padded.count), "accepted \(padded.count) bytes")
    require(refused.table.isEmpty && refused.answerMembers.isEmpty, "a refused event holds something")
    return 0
  }

  let event = ChangeEvent(seq: seq, payload: payload)
  let parsed = try? JSONParser.parse(payload, maximumDepth: 64)
  let ordered = parsed.map { _ in Ordered(payload) }
  let expected = oracle(payload, parsed, ordered)
  require(event.seq == seq, "seq \(event.seq) for \(seq)")
  require(
    event.isRefused == (expected == nil) && (event.refusal == nil) == !event.isRefused,
    "refused: \(event.refusal.map(String.init(describing:)) ?? "no"), but the oracle says \(expected == nil ? "refuse" : "accept")"
  )

  if let expected {
    require(event.table == expected.table, "table \(event.table)")
    require(event.op == expected.op && event.operation?.rawValue == expected.op, "op \(event.op)")
    require(event.key == expected.key, "key \(event.key)")
    require(event.truncated == expected.truncated, "truncated \(event.truncated)")
    require(
      event.row(new: true) == expected.new.map(JSONValue.object), "new row \(String(describing: event.row(new: true)))")
    require(event.row(new: false) == expected.old.map(JSONValue.object), "old row")
    require(event.hasNewRow == (expected.new != nil) && event.hasOldRow == (expected.old != nil), "which rows")
    for (columns, row) in [(event.newColumns, expected.new), (event.oldColumns, expected.old)] {
      require(columns.count == (row?.count ?? 0), "\(columns.count) columns of \(row?.count ?? 0)")
      for column in columns {
        let name = event.name(of: column)
        require(row?[name] != nil, "column \(name) is not the row's")
        require(event.valueText(of: column) == row?[name]?.scalarText, "column \(name)'s filter text")
      }
    }
    let spliced = [UInt8(ascii: "{")] + event.answerMembers + [UInt8(ascii: "}")]
    require(
      (try? JSONParser.parse(spliced, maximumDepth: 64)) == parsed,
      "{ + answerMembers + } is not the payload: \(String(decoding: spliced, as: UTF8.self))")
    require(event.retainedBytes >= payload.count, "\(event.retainedBytes) bytes retained for \(payload.count)")
  } else {
    require(
      event.table.isEmpty && event.operation == nil && event.op.isEmpty && event.key == .null && !event.truncated,
      "a refused payload names \(event.table) \(event.op) \(event.key)")
    require(event.answerMembers.isEmpty, "a refused payload keeps members for an answer")
    require(event.row(new: true) == nil && event.row(new: false) == nil, "rows of a refused payload")
    require(event.newColumns.isEmpty && event.oldColumns.isEmpty, "columns of a refused payload")
  }

  // Subscriptions: the table the payload claims, unfiltered and filtered by
  // its own rows (even when refused: the filters would pass) and by the input.
  let claimed = parsed?["table"]?.scalarText ?? "t"
  var subscriptions = [
    Subscription(table: claimed), Subscription(table: claimed + "x"), Subscription(table: ""),
    Subscription(table: claimed, filters: inputFilters),
  ]
  var rows: [(ordered: Ordered, value: [String: JSONValue])] = []
  for name in ["new", "old"] {
    if case .object(let value)? = parsed?[name], let text = ordered?.members.last(where: { $0.name == name }) {
      rows.append((text.value, value))
    }
  }
  let own = ownRowSubscriptions(table: claimed, rows: rows, count: Int(control & 3) + 1, skip: Int(control >> 2 & 1))
  subscriptions += own
  if let first = own.first {
    subscriptions.append(Subscription(table: claimed, filters: first.filters.merging(inputFilters) { $1 }))
  }
  subscriptions += ownerSubscriptions(table: claimed, rows: rows, filters: own.first?.filters ?? inputFilters)
  let set = SubscriptionSet(subscriptions)
  let forms = subscriptions.map { expectedForm($0, expected) }
  let wanted = EventMatches(
    asIs: subscriptions.indices.filter { forms[$0] == .asIs },
    asRemoval: subscriptions.indices.filter { forms[$0] == .asRemoval },
    asArrival: subscriptions.indices.filter { forms[$0] == .asArrival })
  for (index, subscription) in subscriptions.enumerated() {
    require(
      subscription.form(of: event) == forms[index] && subscription.matches(event) == (forms[index] != nil),
      "Subscription.form says \(String(describing: subscription.form(of: event))) for \(subscription)")
  }
  var work = 0
  let matched = set.judge(event, work: &work)
  require(matched == wanted, "SubscriptionSet judges \(matched), the oracle \(wanted)")
  require(set.matches(event) == wanted.all, "SubscriptionSet matches \(set.matches(event))")
  require(work >= 1, "a test that cost nothing")
  require(!event.isRefused || matched.isEmpty, "a refused payload matches \(matched)")

  var read: (ordered: Ordered, members: [String: JSONValue])?
  if case .object(let members)? = parsed, let ordered { read = (ordered, members) }
  checkThroughTheLot(event, ChangePoll(cursor: nil, subscriptions: set, timeout: .seconds(25)), wanted, payload: read)
  return 0
}

private let epoch: UInt64 = 0x1234

/// The event appended to a worker's lot: the poll parked before it and the
/// poll that scans the ring after it get the oracle's matches, or nothing.
private func checkThroughTheLot(
  _ event: ChangeEvent, _ template: ChangePoll, _ wanted: EventMatches,
  payload: (ordered: Ordered, members: [String: JSONValue])?
) {
  let before = Cursor(epoch: epoch, seq: event.seq - 1)
  var poll = template
  poll.cursor = before
  var lot = ParkingLot(ringCapacity: 4)
  _ = lot.streamStarted(at: before, resumed: false)
  guard case .park(let parkedID) = lot.poll(poll, now: .zero) else {
    require(false, "a poll at the newest position is not parked")
    return
  }
  guard case .appended(let deliveries) = lot.append([event]) else {
    require(false, "the next event is a gap")
    return
  }
  require(lot.payloadsRefused == (event.isRefused ? 1 : 0), "\(lot.payloadsRefused) payloads refused")
  var decision = lot.poll(poll, now: .zero)
  while case .scan(let pending) = decision { decision = lot.finishScan(pending, pending.run(), now: .zero) }

  guard !wanted.isEmpty else {
    require(deliveries.isEmpty, "the parked poll got an event nothing matches")
    guard case .park = decision else {
      require(false, "the scan answered \(decision) with nothing to match")
      return
    }
    return
  }
  require(deliveries.recipients.count == 1 && deliveries.recipients[0].id == parkedID, "the parked poll's answer")
  guard case .answer(let scanned) = decision else {
    require(false, "the scan did not answer")
    return
  }
  for answer in [deliveries.answers[deliveries.recipients[0].answer], scanned] {
    guard case .events(let matched, let through) = answer, matched.count == 1 else {
      require(false, "not one event: \(answer)")
      return
    }
    let cursor = Cursor(epoch: epoch, seq: event.seq)
    require(through == cursor && matched[0].cursor == cursor, "answered through \(through)")
    require(
      matched[0].matches == wanted.asIs && matched[0].removals == wanted.asRemoval
        && matched[0].arrivals == wanted.asArrival,
      "answered matches \(matched[0].matches), removals \(matched[0].removals) and arrivals \(matched[0].arrivals), the oracle \(wanted)"
    )
    require(matched[0].event.position == event.position && !matched[0].event.isRefused, "another event answered")
    checkRendered(answer, payload: payload, cursor: cursor, matches: wanted, truncated: event.truncated)
  }
}

/// The body of /api/changes: every member once. The event as a removal
/// first, if some subscriptions get it so: the payload's table, key, mtime
/// and old row as a delete without a new row; then as an arrival: its new
/// row as an insert without the old one; then as is, if some get it so:
/// the payload's members, as it has them, then the server's.
private func checkRendered(
  _ answer: PollAnswer, payload: (ordered: Ordered, members: [String: JSONValue])?, cursor: Cursor,
  matches: EventMatches, truncated: Bool
) {
  guard let payload else {
    require(false, "an answer for a payload that is not an object")
    return
  }
  let response = PollAnswer.render(answer)
  let text = String(decoding: response.body, as: UTF8.self)
  guard let body = try? JSONParser.parse(response.body, maximumDepth: 66) else {
    require(false, "the answer is not JSON: \(text)")
    return
  }
  let layout = Ordered(response.body)
  require(layout.members.map(\.name) == ["cursor", "events"], "the answer's members: \(text)")
  require(body["cursor"] == .string(cursor.description), "the answer's cursor")
  let forms = [(EventForm.asRemoval, matches.asRemoval), (.asArrival, matches.asArrival), (.asIs, matches.asIs)]
    .filter { !$0.1.isEmpty }
  guard case .array(let events)? = body["events"], events.count == forms.count,
    case .array(let orderedEvents) = layout.members[1].value
  else {
    require(false, "the answer has not \(forms.count) events: \(text)")
    return
  }
  for ((form, subscriptions), (answered, ordered)) in zip(forms, zip(events, orderedEvents)) {
    guard case .object(let answered) = answered else {
      require(false, "an event is not an object: \(text)")
      return
    }
    let names = ordered.members.map(\.name)
    switch form {
    case .asIs:
      require(
        names == payload.ordered.members.map(\.name) + ["cursor", "matches"],
        "the event's members \(names), not the payload's and the server's: \(text)")
      for (name, value) in payload.members {
        require(answered[name] == value, "member \(name) differs in the answer: \(text)")
      }
    case .asRemoval:
      let removal = ["table", "op", "key", "mtime", "new", "old"] + (truncated ? ["truncated"] : [])
      require(names == removal + ["cursor", "matches"], "the removal's members \(names): \(text)")
      for name in ["table", "key", "mtime", "old"] + (truncated ? ["truncated"] : []) {
        require(answered[name] == payload.members[name], "member \(name) differs in the removal: \(text)")
      }
      require(answered["op"] == .string("delete") && answered["new"] == .null, "the removal's op and new: \(text)")
    case .asArrival:
      let arrival = ["table", "op", "key", "mtime", "new", "old"] + (truncated ? ["truncated"] : [])
      require(names == arrival + ["cursor", "matches"], "the arrival's members \(names): \(text)")
      for name in ["table", "key", "mtime", "new"] + (truncated ? ["truncated"] : []) {
        require(answered[name] == payload.members[name], "member \(name) differs in the arrival: \(text)")
      }
      require(answered["op"] == .string("insert") && answered["old"] == .null, "the arrival's op and old: \(text)")
    }
    require(answered["cursor"] == .string(cursor.description), "the event's cursor is not the server's: \(text)")
    require(
      answered["matches"] == .array(subscriptions.map { .number(String($0)) }), "the event's matches: \(text)")
  }
}
