import ChangeStream
import JSON
import LongPoll

extension PollAnswer {
  /// The answer as the body of `/api/changes`: rendered by the hub once per
  /// distinct answer, outside its lock. Each event's payload is spliced in as
  /// the trigger wrote it (no second serialisation of its rows).
  @Sendable public static func render(_ answer: PollAnswer) -> HTTPResponse {
    switch answer {
    case .events(let matched, let through):
      var body = "{\"cursor\":\"\(through)\",\"events\":["
      for (offset, entry) in matched.enumerated() {
        if offset > 0 { body += "," }
        body += "{\"cursor\":\"\(entry.cursor)\",\"matches\":["
        body += entry.matches.map(String.init).joined(separator: ",")
        body += "]"
        let members = entry.event.payloadMembers
        if members.first != "}" { body += "," }
        body += members
      }
      body += "]}"
      return .json(200, body)
    case .noEvents(let cursor):
      return .json(200, "{\"cursor\":\"\(cursor)\",\"events\":[]}")
    case .reset(let current):
      return .json(
        409,
        "{\"error\":\"reset\",\"message\":\"the cursor is no longer in the change stream; reload, then poll from the new cursor\",\"cursor\":\"\(current)\"}"
      )
    case .streamUnavailable:
      return HTTPResponse(error: .streamUnavailable())
    }
  }
}
