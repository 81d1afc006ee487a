import CSystemShim
import ChangeStream
import DaemonSupport
import FastCGI
import Glibc
import PBPAPI
import Synchronization

/// One worker process: accepting threads, the notifyd stream, the parking lot.
struct WorkerProcess {
  let options: FcgiCommand
  let listenFD: Int32
  let log: Log

  func run() {
    // Signals go to the main thread's sigwait only; libfcgi's own handlers never run.
    let signals: [Int32] = [SIGTERM, SIGINT, SIGHUP]
    _ = signals.withUnsafeBufferPointer { pbp_block_signals($0.baseAddress, Int32($0.count)) }
    signal(SIGPIPE, SIG_IGN)
    _ = pbp_die_with_parent(SIGTERM)
    guard FastCGIRequest.initializeLibrary() else {
      log.error("FCGX_Init failed")
      exit(1)
    }

    let hub = ChangeHub(ringCapacity: options.ringSize, log: log)
    hub.startWatcher()
    let scoreboard = options.workerScoreboardFD.flatMap { WorkerScoreboard(inheritedFD: $0) }
    let slot = scoreboard.flatMap { board in options.workerSlot.map { ScoreboardSlot(scoreboard: board, slot: $0) } }
    if let slot {
      Threads.start(name: "pbp-scoreboard") {
        while true {
          slot.publish(hub.statistics)
          usleep(100_000)
        }
      }
    } else {
      log.warning("no scoreboard: /api/_status will not see this worker")
    }
    NotifydSubscription(socketPath: options.notifydSocket, hub: hub, log: log).start()
    var workerStatuses: (@Sendable () -> [WorkerStatus])?
    if let scoreboard { workerStatuses = { scoreboard.statuses() } }
    let application = APIApplication(
      configuration: .init(
        tables: options.tableList, maximumBodyBytes: options.maxBodyBytes,
        pollLimits: .init(
          maximumSubscriptions: options.maxSubscriptions,
          defaultTimeout: .milliseconds(Int64(options.pollTimeout * 1000)),
          maximumTimeout: .milliseconds(Int64(options.maxPollTimeout * 1000)))),
      hub: hub, workerStatuses: workerStatuses)
    // Accepting threads wait in poll and then try a non-blocking accept: the
    // ones that lose the race for a connection go back to poll instead of
    // blocking in accept, so a draining worker stops within one poll interval.
    // (The flag is on the shared listening socket; every worker accepts this way.)
    UnixSocket.setNonBlocking(listenFD)
    let draining = Arc(Atomic<Bool>(false))
    let accepting = Arc(Atomic<Int>(options.threads))
    for index in 0..<options.threads {
      let loop = AcceptLoop(
        listenFD: listenFD, application: application, conninfo: options.conninfo,
        statementTimeoutMilliseconds: Int(options.statementTimeout * 1000),
        maximumBodyBytes: options.maxBodyBytes, draining: draining, accepting: accepting, slot: slot, log: log,
        verbose: options.verbose)
      Threads.start(name: "pbp-accept-\(index)") { loop.run() }
    }
    log.info("worker ready: \(options.threads) accepting threads")

    while true {
      let received = signals.withUnsafeBufferPointer { pbp_wait_signal($0.baseAddress, Int32($0.count), -1) }
      if received == SIGTERM || received == SIGINT { break }
    }
    // Stop taking new requests, answer parked polls with the newest cursor
    // (their clients come straight back, to another worker), and finish
    // what is in flight.
    draining.value.store(true, ordering: .releasing)
    hub.releaseAll()
    let deadline = MonotonicClock.now() + .seconds(10)
    while accepting.value.load(ordering: .acquiring) > 0 && MonotonicClock.now() < deadline {
      usleep(10_000)
    }
    let stuck = accepting.value.load(ordering: .acquiring)
    log.info("worker stopped" + (stuck > 0 ? " (\(stuck) threads still waiting in accept)" : ""))
    exit(0)
  }
}

/// A reference to a value that several threads share.
final class Arc<Value: ~Copyable & Sendable>: Sendable {
  let value: Value
  init(_ value: consuming Value) { self.value = value }
}

/// One accepting thread: accept, answer or park, accept again.
struct AcceptLoop: Sendable {
  let listenFD: Int32
  let application: APIApplication
  let conninfo: String
  let statementTimeoutMilliseconds: Int
  let maximumBodyBytes: Int
  let draining: Arc<Atomic<Bool>>
  /// Threads still in this loop; the worker exits when none is.
  let accepting: Arc<Atomic<Int>>
  let slot: ScoreboardSlot?
  let log: Log
  let verbose: Bool

  /// Accepts only after the listening socket turned readable, so that a
  /// draining worker notices within 100 ms and stops taking connections. Each
  /// thread waits on its own exclusive epoll entry: one connection wakes one
  /// thread (a shared poll woke all of them, in every worker).
  func run() {
    defer { accepting.value.subtract(1, ordering: .releasing) }
    waitForTheStream()
    let session = DatabaseSession(conninfo: conninfo, statementTimeoutMilliseconds: statementTimeoutMilliseconds) {
      [slot] delta in slot?.databaseConnections(changedBy: delta)
    }
    let waiter = pbp_exclusive_waiter(listenFD)
    guard waiter >= 0 else {
      log.error("cannot watch the listening socket: \(SystemError("epoll_ctl"))")
      return
    }
    defer { close(waiter) }
    while !draining.value.load(ordering: .acquiring) {
      guard pbp_wait_exclusive(waiter, 100) != 0 else { continue }
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

  /// A new worker (at start or in a reload) takes requests once it follows
  /// notifyd, so that a snapshot read never meets a worker without a cursor;
  /// if notifyd is away, it serves anyway after two seconds.
  private func waitForTheStream() {
    let deadline = MonotonicClock.now() + .seconds(2)
    while application.hub.current == nil && MonotonicClock.now() < deadline { usleep(5_000) }
  }

  private func serve(_ request: FastCGIRequest, session: DatabaseSession) {
    let method = request.parameter("REQUEST_METHOD") ?? "GET"
    let path = request.parameter("DOCUMENT_URI") ?? request.parameter("SCRIPT_NAME") ?? "/"
    if verbose { log.debug("\(method) \(path)") }
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
      request.detach()
      application.hub.submit(poll, responder: request)
    }
  }

  /// The request headers the API looks at, by their FastCGI parameter names.
  static let forwardedHeaders = [
    ("if-none-match", "HTTP_IF_NONE_MATCH"), ("if-modified-since", "HTTP_IF_MODIFIED_SINCE"),
  ]

  private func readBody(_ request: FastCGIRequest) throws(APIError) -> [UInt8] {
    do {
      return try request.readBody(limit: maximumBodyBytes)
    } catch .tooLarge(let limit) {
      throw .tooLarge(limit: limit)
    } catch {
      throw .badRequest("unreadable_body", "the request body could not be read")
    }
  }
}
