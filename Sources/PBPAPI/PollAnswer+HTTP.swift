import ChangeStream
import JSON
import LongPoll

extension PollAnswer {
  /// The answer as the body of `/api/changes`: rendered by the hub once per
  /// distinct answer, outside its lock. Each event's payload members are
  /// spliced in as the trigger wrote them (no second serialisation of its
  /// rows); the server's own members of each event come after them, so that even a member
  /// of the same name could not stand in their place (a JSON reader keeps the
  /// last), and the worker refuses payloads with members the triggers never
  /// write anyway (``ChangeStream/TriggerPayload``). An event that reaches
  /// subscriptions only as a removal is rendered, for them, as a delete of its
  /// old row without its new one (``ChangeStream/ChangeEvent/removalMembers``).
  @Sendable public static func render(_ answer: PollAnswer) -> HTTPResponse {
    switch answer {
    case .events(let matched, let through):
      var body: [UInt8] = []
      body.reserveCapacity(64 + matched.reduce(0) { $0 + $1.event.answerMembers.count + 64 })
      // The answer's cursor first: simple readers (the load generator) take the first one.
      body += Array("{\"cursor\":\"\(through)\",\"events\":[".utf8)
      var first = true
      /// One event object: the payload's members (or the removal's), then the server's.
      func append(_ members: some Collection<UInt8>, cursor: Cursor, matches: [Int]) {
        if !first { body.append(UInt8(ascii: ",")) }
        first = false
        body.append(UInt8(ascii: "{"))
        if !members.isEmpty {
          body += members
          body.append(UInt8(ascii: ","))
        }
        body += Array("\"cursor\":\"\(cursor)\",\"matches\":[".utf8)
        body += Array(matches.map(String.init).joined(separator: ",").utf8)
        body += Array("]}".utf8)
      }
      // An event that reaches some subscriptions only as a removal goes out
      // as one for them, before it goes out as is for the others
      // (``LongPoll/MatchedEvent``).
      for entry in matched {
        if !entry.removals.isEmpty {
          append(entry.event.removalMembers, cursor: entry.cursor, matches: entry.removals)
        }
        if !entry.arrivals.isEmpty {
          append(entry.event.arrivalMembers, cursor: entry.cursor, matches: entry.arrivals)
        }
        if !entry.matches.isEmpty || (entry.removals.isEmpty && entry.arrivals.isEmpty) {
          append(entry.event.answerMembers, cursor: entry.cursor, matches: entry.matches)
        }
      }
      body += Array("]}".utf8)
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
