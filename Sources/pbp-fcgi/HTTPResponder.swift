import FastCGI
import LongPoll
import PBPAPI

/// The two ways a worker answers nginx: at once (``FastCGIRequest``) or after
/// waiting (``ParkedRequest``); both take an ``HTTPResponse`` the same way.
public protocol HTTPResponder {
  @discardableResult
  func respond(status: Int, reason: String, headers: [(String, String)], body: [UInt8]) -> Bool
}

extension HTTPResponder {
  public func respond(_ response: HTTPResponse) {
    respond(
      status: response.status, reason: response.reason,
      headers: response.headers.map { ($0.name, $0.value) }, body: response.body)
  }
}

extension FastCGIRequest: HTTPResponder {}

/// A parked poll's answer is encoded once per distinct answer (the hub
/// renders each once for all the polls it goes to).
extension ParkedRequest: HTTPResponder, PollResponder {
  public func respond(_ answer: EncodedResponse) { respond(encoded: answer) }
}

extension EncodedResponse {
  init(_ response: HTTPResponse) {
    self.init(
      status: response.status, reason: response.reason,
      headers: response.headers.map { ($0.name, $0.value) }, body: response.body)
  }

  /// The hub's renderer: a poll's answer as the HTTP response, encoded.
  @Sendable static func rendering(_ answer: PollAnswer) -> EncodedResponse {
    EncodedResponse(PollAnswer.render(answer))
  }
}
