import DaemonSupport
import FastCGI
import Glibc
import LongPoll
import PBPAPI
import WorkerPool

/// One accepting thread: accept a connection or take a kept one whose next
/// request is coming, answer or park, wait again.
struct AcceptLoop: Sendable {
  let listenFD: Int32
  /// The socket's kept connections between requests.
  let idle: IdleConnections
  /// On the poll socket: only /api/changes is served, and the thread never
  /// opens a database connection (a poll is parsed and parked, or answered from the hub).
  let servesOnlyPolls: Bool
  let application: APIApplication
  let hub: ChangeHub<ParkedRequest>
  let conninfo: String
  let statementTimeoutMilliseconds: Int
  /// What the thread's database connection acts as between requests: the
  /// anonymous identity, whose requests then need no setup statement.
  let restingIdentity: RequestIdentity?
  let maximumBodyBytes: Int
  let lifecycle: WorkerLifecycle
  let slot: ScoreboardSlot?
  let log: Log
  let verbose: Bool

  /// Accepts only after the listening socket turned readable, so that a
  /// draining worker notices within 100 ms and stops taking connections. The
  /// socket's threads wait on one epoll set, of the listening socket and the
  /// idle kept connections: one connection or request wakes one thread (a
  /// shared poll woke all of them, in every worker).
  func run() {
    defer { lifecycle.acceptLoopEnded() }
    let session = DatabaseSession(
      conninfo: conninfo, statementTimeoutMilliseconds: statementTimeoutMilliseconds, restingIdentity: restingIdentity
    ) { [slot] delta in slot?.databaseConnections(changedBy: delta) }
    // Draining, the listening socket is out of the set; the loop ends once
    // the requests that had reached idle connections are served.
    while !(lifecycle.isDraining && idle.isEmpty) {
      switch idle.wait(timeout: .milliseconds(100)) {
      case .nothing: continue
      case .request(let connection): serve(connection, session: session)
      case .listening: accept(session: session)
      }
    }
  }

  private func accept(session: DatabaseSession) {
    switch FastCGIConnection.accept(listenSocket: listenFD) {
    case .success(let connection):
      serve(connection, session: session)
    case .failure(let error) where error.code == -EAGAIN || error.code == -EINTR:
      break  // another thread or worker took the connection
    case .failure(let error):
      log.warning("accept failed (\(error.code)); retrying")
      usleep(100_000)
    }
  }

  /// What became of a request: answered, or a poll to park (submitted
  /// after the connection is let go: the hub may answer it at once).
  private enum Served: Sendable {
    case answered
    case park(ChangePoll, ParkedRequest)
  }

  /// Serves the connection's next request; a connection answered cleanly
  /// goes to the idle set (kept) or is closed, as the idle set decides.
  private func serve(_ connection: FastCGIConnection, session: DatabaseSession) {
    slot?.requestStarted()
    defer { slot?.requestFinished() }
    guard let (served, outcome) = connection.serve({ serve($0, session: session) }) else { return }
    switch (served, outcome) {
    case (.park(let poll, let parked), _):
      hub.submit(poll, responder: parked)
    case (.answered, .open(let keepAsked)):
      idle.requestEnded(on: connection, keepAsked: keepAsked)
    case (.answered, .closed), (.answered, .parked):
      break
    }
  }

  private func serve(_ request: FastCGIRequest, session: DatabaseSession) -> Served {
    let method = request.parameter("REQUEST_METHOD") ?? "GET"
    let path = request.parameter("DOCUMENT_URI") ?? request.parameter("SCRIPT_NAME") ?? "/"
    if verbose { log.debug("\(method) \(path)") }
    if servesOnlyPolls && !APIApplication.isChangesPath(path) {
      request.respond(HTTPResponse(error: .notFound("this socket serves \(APIApplication.changesPath) only")))
      return .answered
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
      return .answered
    }
    switch application.handle(apiRequest, session: session) {
    case .response(var response):
      if method == "HEAD" { response.body = [] }
      request.respond(response)
      return .answered
    case .poll(let poll):
      // A poll may wait for minutes: it keeps its connection, not libfcgi's buffers.
      guard let parked = request.detach(keeper: idle) else {
        request.respond(HTTPResponse(error: .badRequest("unreadable_body", "the request body was not read to its end")))
        return .answered
      }
      return .park(poll, parked)
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
