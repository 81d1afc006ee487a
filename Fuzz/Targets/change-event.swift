// ChangeEvent(seq:payload:): a NOTIFY payload as a worker parses it (anyone
// who may NOTIFY on the channel can send one), and the /api/changes answer it
// is spliced into. Properties: no crash; table, op, key, rows and the
// truncated flag are the payload's; a payload that is not an object names no
// table; `{` + payloadMembers is the payload again; the answer that splices
// an event that can match (it names a table) is JSON carrying the event's
// members; a subscription on the event's table with filters taken from its
// row matches it.
import ChangeStream
import JSON

import LongPoll
@testable import PBPAPI

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChangeEvent(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
  var input = FuzzInput(data, size)
  let seq = UInt64(input.uint16())
  let payload = input.rest()
  let event = ChangeEvent(seq: seq, payload: payload)
  require(event.seq == seq, "seq \(event.seq) for \(seq)")

  guard case .object(let members)? = try? JSONParser.parse(payload, maximumDepth: 64) else {
    require(event.table.isEmpty && event.op.isEmpty && event.key == .null, "fields from a payload that is no object")
    require(event.newRow == nil && event.oldRow == nil && !event.truncated, "rows from a payload that is no object")
    require(event.payloadMembers == "}", "members \(event.payloadMembers) from a payload that is no object")
    return 0
  }
  require(event.table == members["table"]?.scalarText ?? "", "table \(event.table)")
  require(event.op == members["op"]?.scalarText ?? "", "op \(event.op)")
  require(event.key == members["key"] ?? .null, "key \(event.key)")
  require(event.newRow == members["new"].flatMap { $0.isNull ? nil : $0 }, "new row")
  require(event.oldRow == members["old"].flatMap { $0.isNull ? nil : $0 }, "old row")
  require(event.truncated == (members["truncated"] == .bool(true)), "truncated \(event.truncated)")
  let spliced = "{" + event.payloadMembers
  require(
    (try? JSONParser.parse(spliced, maximumDepth: 64)) == .object(members),
    "{ + payloadMembers is not the payload: \(spliced)")

  guard !event.table.isEmpty else { return 0 }
  let epoch: UInt64 = 0x1234
  let response = PollAnswer.render(
    .events(
      [MatchedEvent(event: event, cursor: Cursor(epoch: epoch, seq: seq), matches: [0, 3])],
      through: Cursor(epoch: epoch, seq: seq)))
  guard let body = try? JSONParser.parse(response.body, maximumDepth: 66),
    case .array(let events)? = body["events"], events.count == 1, case .object(let answered) = events[0]
  else {
    require(false, "the answer is not JSON with one event: \(String(decoding: response.body, as: UTF8.self))")
    return 0
  }
  require(body["cursor"] == .string(Cursor(epoch: epoch, seq: seq).description), "the answer's cursor")
  // The answer's own members come first; a payload that repeats one of them
  // comes later in the text, and a JSON reader keeps the later one.
  for (name, value) in members {
    require(answered[name] == value, "member \(name) differs in the answer")
  }
  if members["cursor"] == nil {
    require(answered["cursor"] == .string(Cursor(epoch: epoch, seq: seq).description), "the event's cursor")
  }
  if members["matches"] == nil {
    require(answered["matches"] == .array([.number("0"), .number("3")]), "the event's matches")
  }

  // Filters taken from the event's own row select it.
  if case .object(let row)? = event.newRow ?? event.oldRow {
    var filters: [String: String] = [:]
    for (column, value) in row.prefix(3) { if let text = value.scalarText { filters[column] = text } }
    require(Subscription(table: event.table, filters: filters).matches(event), "its own row's filters miss it")
  }
  require(!Subscription(table: event.table + "x").matches(event), "another table's subscription matches")
  return 0
}
