import ChangeStream
import JSON
import LongPoll
import Testing

@testable import PBPAPI

@Suite struct PollAnswerRenderTests {
  func rendered(_ payload: String) throws -> JSONValue {
    let event = ChangeEvent(seq: 7, payload: Array(payload.utf8))
    let cursor = Cursor(epoch: 1, seq: 7)
    let response = PollAnswer.render(
      .events([MatchedEvent(event: event, cursor: cursor, matches: [0])], through: cursor))
    #expect(response.status == 200)
    return try JSONParser.parse(response.body)
  }

  @Test func anEventCarriesTheTriggersMembersAndTheServersCursor() throws {
    let body = try rendered(
      #"{"table" : "t", "op" : "insert", "key" : 5, "mtime" : "m", "new" : {"id":5,"cursor":"row's"}, "old" : null}"#)
    #expect(body["cursor"] == .string("0000000000000001:7"))
    let event = try #require(body["events"].flatMap { if case .array(let list) = $0 { list.first } else { nil } })
    #expect(event["cursor"] == .string("0000000000000001:7") && event["matches"] == .array([.number("0")]))
    #expect(event["key"] == .number("5") && event["new"]?["cursor"] == .string("row's"))
  }

  @Test func aForgedCursorMemberIsNeverSpliced() throws {
    let event = ChangeEvent(
      seq: 7,
      payload: Array(
        #"{"table":"t","op":"insert","key":5,"mtime":"m","new":{"id":5},"old":null,"cursor":"ffffffffffffffff:1"}"#.utf8
      ))
    #expect(event.isRefused)
    let body = String(
      decoding: PollAnswer.render(
        .events(
          [MatchedEvent(event: event, cursor: Cursor(epoch: 1, seq: 7), matches: [0])],
          through: Cursor(epoch: 1, seq: 7))
      ).body, as: UTF8.self)
    #expect(!body.contains("ffffffffffffffff"))
  }
}
