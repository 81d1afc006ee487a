import FastCGI
import LongPoll
import PBPAPI

extension ParkedRequest: PollResponder {
  public func respond(_ response: HTTPResponse) {
    respond(
      status: response.status, reason: response.reason,
      headers: response.headers.map { ($0.name, $0.value) }, body: response.body)
  }
}

extension FastCGIRequest {
  func respond(_ response: HTTPResponse) {
    respond(
      status: response.status, reason: response.reason,
      headers: response.headers.map { ($0.name, $0.value) }, body: response.body)
  }
}
