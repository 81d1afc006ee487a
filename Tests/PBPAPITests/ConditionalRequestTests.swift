import Testing

@testable import PBPAPI

@Suite struct ConditionalRequestTests {
  let stamp = TableResource.Stamp(version: "42", httpDate: "Tue, 01 Dec 2026 11:00:00 GMT")

  func request(_ headers: [String: String]) -> APIRequest {
    APIRequest(method: "GET", path: "/api/testtype", headers: headers)
  }

  @Test func theETagValidates() {
    #expect(request(["if-none-match": "\"42\""]).isFresh(stamp))
    #expect(request(["if-none-match": "\"41\", W/\"42\""]).isFresh(stamp))
    #expect(request(["if-none-match": "*"]).isFresh(stamp))
    #expect(!request(["if-none-match": "\"41\""]).isFresh(stamp))
  }

  /// Last-Modified has a resolution of a second and follows statement time,
  /// not commit order: a write in the same second, or one that commits after
  /// a later one, leaves it unchanged. A 304 to it would hand out the current
  /// cursor for a copy that lacks that write.
  @Test func aDateAloneNeverValidates() {
    let byDate = request(["if-modified-since": stamp.httpDate])
    #expect(!byDate.isConditional)
    #expect(!byDate.isFresh(stamp))
    #expect(!request(["if-none-match": "\"41\"", "if-modified-since": stamp.httpDate]).isFresh(stamp))
  }
}
