import FastCGI
import PBPAPI

extension FastCGIRequest: PollResponder {
  public func respond(_ response: HTTPResponse) {
    respond(
      status: response.status, reason: response.reason,
      headers: response.headers.map { ($0.name, $0.value) }, body: response.body)
  }

  public func abandon() {
    finish()
  }
}
