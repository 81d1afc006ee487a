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

extension ParkedRequest: HTTPResponder, PollResponder {
  public typealias Answer = HTTPResponse
}
