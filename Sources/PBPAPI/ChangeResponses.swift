import ChangeStream
import JSON

/// The bodies of `/api/changes` answers.
enum ChangeResponses {
  static func events(_ matched: [(event: ChangeEvent, matches: [Int])], epoch: UInt64, cursor: Cursor) -> HTTPResponse {
    var body = "{\"cursor\":\"\(cursor)\",\"events\":["
    for (offset, entry) in matched.enumerated() {
      if offset > 0 { body += "," }
      body += "{\"cursor\":\"\(Cursor(epoch: epoch, seq: entry.event.seq))\",\"matches\":["
      body += entry.matches.map(String.init).joined(separator: ",")
      body += "]"
      let members = entry.event.payloadMembers
      if members.first != "}" { body += "," }
      body += members
    }
    body += "]}"
    return .json(200, body)
  }

  static func noEvents(cursor: Cursor) -> HTTPResponse {
    .json(200, "{\"cursor\":\"\(cursor)\",\"events\":[]}")
  }

  static func reset(current: Cursor) -> HTTPResponse {
    .json(
      409,
      "{\"error\":\"reset\",\"message\":\"the cursor is no longer in the change stream; reload, then poll from the new cursor\",\"cursor\":\"\(current)\"}"
    )
  }
}
