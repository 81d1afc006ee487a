import DaemonSupport
import FastCGI
import Glibc
import LongPoll
import PBPAPI
import WorkerPool

/// One accepting thread: accept, answer or park, accept again.
struct AcceptLoop: Sendable {
  let listenFD: Int32
  /// On the poll socket: only /api/changes is served, and the thread never
  /// opens a database connection (a poll is parsed and parked, or answered from the hub).
  let servesOnlyPolls: Bool
  let application: APIApplication
  let hub: ChangeHub<ParkedRequest>
  let conninfo: String
  let statementTimeoutMilliseconds: Int
  let maximumBodyBytes: Int
  let lifecycle: WorkerLifecycle
  let slot: ScoreboardSlot?
  let log: Log
  let verbose: Bool

  /// Accepts only after the listening socket turned readable, so that a
  /// draining worker notices within 100 ms and stops taking connections. Each
  /// thread waits on its own exclusive epoll entry: one connection wakes one
  /// thread (a shared poll woke all of them, in every worker).
  func run() {
    defer { lifecycle.acceptLoopEnded() }
    let session = DatabaseSession(conninfo: conninfo, statementTimeoutMilliseconds: statementTimeoutMilliseconds) {
      [slot] delta in slot?.databaseConnections(changedBy: delta)
    }
    let waiter: ExclusiveAcceptWaiter
    do {
      waiter = try ExclusiveAcceptWaiter(listening: listenFD)
    } catch {
      log.error("cannot watch the listening socket: \(error)")
      return
    }
    while !lifecycle.isDraining {
      guard waiter.wait(timeout: .milliseconds(100)) else { continue }
      switch FastCGIRequest.accept(listenSocket: listenFD) {
      case .success(let request):
        slot?.requestStarted()
        serve(request, session: session)
        slot?.requestFinished()
      case .failure(let error) where error.code == -EAGAIN || error.code == -EINTR:
        continue  // another thread or worker took the connection
      case .failure(let error):
        log.warning("accept failed (\(error.code)); retrying")
        usleep(100_000)
      }
    }
  }

  private func serve(_ request: FastCGIRequest, session: DatabaseSession) {
    let method = request.parameter("REQUEST_METHOD") ?? "GET"
    let path = request.parameter("DOCUMENT_URI") ?? request.parameter("SCRIPT_NAME") ?? "/"
    if verbose { log.debug("\(method) \(path)") }
    if servesOnlyPolls && !APIApplication.isChangesPath(path) {
      request.respond(HTTPResponse(error: .notFound("this socket serves \(APIApplication.changesPath) only")))
      return
    }
    let apiRequest: APIRequest
    do {
      let query = try FormDecoding.decode((request.parameter("QUERY_STRING") ?? "")[...])
      let body = try readBody(request)
      var headers: [String: String] = [:]
      for (name, parameter) in Self.forwardedHeaders {
        if let value = request.parameter(parameter) { headers[name] = value }
      }
      apiRequest = APIRequest(
        method: method, path: path, query: query, contentType: request.parameter("CONTENT_TYPE"), body: body,
        headers: headers)
    } catch {
      request.respond(HTTPResponse(error: error))
      return
    }
    switch application.handle(apiRequest, session: session) {
    case .response(var response):
      if method == "HEAD" { response.body = [] }
      request.respond(response)
    case .poll(let poll):
      // A poll may wait for minutes: it keeps its connection, not libfcgi's buffers.
      guard let parked = request.detach() else {
        request.respond(HTTPResponse(error: .badRequest("unreadable_body", "the request body was not read to its end")))
        return
      }
      hub.submit(poll, responder: parked)
    }
  }

  /// The request headers the API looks at, by their FastCGI parameter names.
  static let forwardedHeaders = [
    ("if-none-match", "HTTP_IF_NONE_MATCH"), ("if-modified-since", "HTTP_IF_MODIFIED_SINCE"),
    ("authorization", "HTTP_AUTHORIZATION"),
  ]

  private func readBody(_ request: FastCGIRequest) throws(APIError) -> [UInt8] {
    do {
      return try request.readBody(limit: maximumBodyBytes)
    } catch .tooLarge(let limit) {
      throw .tooLarge(limit: limit)
    } catch .truncated(let declared, let received) {
      throw .truncatedBody(declared: declared, received: received)
    } catch {
      throw .badRequest("unreadable_body", "the request body could not be read")
    }
  }
}
