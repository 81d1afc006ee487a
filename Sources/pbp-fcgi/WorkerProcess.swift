import DaemonSupport
import FastCGI
import Glibc
import Identity
import LongPoll
import PBPAPI
import WorkerPool

/// One worker process: it owns its threads (accepting, the stream follower,
/// the parking lot's watcher, the scoreboard reporter) and turns SIGTERM into
/// a drain.
struct WorkerProcess {
  let options: FcgiCommand
  let listenFD: Int32
  let log: Log

  func run() -> Never {
    // Signals go to the main thread's wait only; libfcgi's own handlers never run.
    let signals = SignalWaiter([.terminate, .interrupt, .hangup])
    UnixSignal.ignore(.pipe)
    ChildProcess.dieWithParent(.terminate)
    guard FastCGIRequest.initializeLibrary() else {
      log.error("FCGX_Init failed")
      exit(1)
    }
    let hub: ChangeHub<ParkedRequest>
    do {
      hub = try ChangeHub(
        ringCapacity: options.ringSize, ringByteBudget: options.ringBytes, log: log, render: EncodedResponse.rendering)
    } catch {
      log.error("cannot start: \(error)")
      exit(1)
    }
    Threads.start(name: "pbp-park-watch") { hub.runWatcher() }
    let follower = StreamFollower(socketPath: options.notifydSocket, hub: hub, log: log)
    Threads.start(name: "pbp-stream") { follower.run() }

    let scoreboard = options.workerScoreboardFD.flatMap { WorkerScoreboard(inheritedFD: $0) }
    let slot = scoreboard.flatMap { board in options.workerSlot.map { ScoreboardSlot(scoreboard: board, slot: $0) } }
    if let slot {
      Threads.start(name: "pbp-scoreboard") {
        while true {
          let statistics = hub.statistics
          slot.publish(
            parkedPolls: statistics.parked, eventsDelivered: statistics.eventsDelivered,
            epoch: statistics.current?.epoch ?? 0, positionMajor: statistics.current?.position.major ?? 0,
            positionMinor: statistics.current?.position.minor ?? 0)
          slot.publish(
            ringEvents: statistics.ringEvents, ringBytes: statistics.ringBytes,
            payloadsRefused: statistics.payloadsRefused)
          usleep(100_000)
        }
      }
    } else {
      log.warning("no scoreboard: /api/_status will not see this worker")
    }
    var workerStatuses: (@Sendable () -> [WorkerStatus])?
    if let scoreboard { workerStatuses = { scoreboard.statuses() } }
    let authenticator: Authenticator
    switch options.authentication.loadBlocking() {
    case .success(let loaded): authenticator = loaded
    case .failure(let error):
      log.error("cannot load the token keys: \(error.description)")
      exit(1)
    }
    for skipped in authenticator.skippedKeys { log.warning("JWKS key not used: \(skipped)") }
    let catalog = TableCatalog(
      conninfo: options.conninfo, restriction: options.tableRestriction,
      statementTimeoutMilliseconds: Int(options.statementTimeout * 1000))
    let application = APIApplication(
      configuration: .init(
        pollLimits: .init(
          maximumSubscriptions: options.maxSubscriptions,
          defaultTimeout: .milliseconds(Int64(options.pollTimeout * 1000)),
          maximumTimeout: .milliseconds(Int64(options.maxPollTimeout * 1000))),
        pageBytes: options.maxPageBytes),
      catalog: catalog, decideAccess: authenticator.access, stream: hub, workerStatuses: workerStatuses)

    // A new worker (at start or in a reload) takes requests once it follows
    // notifyd, so that a snapshot read never meets a worker without a cursor;
    // if notifyd is away, it serves anyway after two seconds.
    if !hub.awaitPosition(patience: .seconds(2)) { log.warning("serving before pbp-notifyd's stream is followed") }
    // Described before the first request; without the database now, the first request that needs it reads it.
    do {
      log.info("serving \(try catalog.snapshot().tables.keys.sorted().joined(separator: ", "))")
    } catch {
      log.warning("the watched tables cannot be read yet: \(error.message)")
    }
    // Accepting threads wait in epoll and then try a non-blocking accept: the
    // ones that lose the race for a connection go back to waiting instead of
    // blocking in accept, so a draining worker stops within one wait.
    // (The flag is on the shared listening socket; every worker accepts this way.)
    UnixSocket.setNonBlocking(listenFD)
    // Polls have threads of their own on their own socket: they are never
    // stuck behind CRUD threads that all wait on slow SQL.
    let pollFD = options.workerPollListenFD
    if let pollFD { UnixSocket.setNonBlocking(pollFD) }
    let pollThreads = pollFD == nil ? 0 : options.pollThreads
    let lifecycle = WorkerLifecycle(acceptLoops: options.threads + pollThreads)
    // nginx keeps its connections (fastcgi_keep_conn on): between requests
    // they wait in these sets, one per listening socket.
    let idleAPI: IdleConnections
    var idlePolls: IdleConnections?
    do {
      idleAPI = try IdleConnections(listening: listenFD, limit: options.maxIdleConnections, log: log)
      if let pollFD { idlePolls = try IdleConnections(listening: pollFD, limit: options.maxIdleConnections, log: log) }
    } catch {
      log.error("cannot watch the listening sockets: \(error)")
      exit(1)
    }
    let anonymous = options.authentication.roles.anonymousRole.map {
      RequestIdentity(role: $0, subject: nil, claims: RoleDecision.anonymousClaims)
    }
    func loop(on fd: Int32, idle: IdleConnections, servesOnlyPolls: Bool) -> AcceptLoop {
      AcceptLoop(
        listenFD: fd, idle: idle, servesOnlyPolls: servesOnlyPolls, application: application, hub: hub,
        conninfo: options.conninfo, statementTimeoutMilliseconds: Int(options.statementTimeout * 1000),
        restingIdentity: anonymous,
        maximumBodyBytes: options.maxBodyBytes, lifecycle: lifecycle, slot: slot, log: log,
        verbose: options.verbose)
    }
    for index in 0..<options.threads {
      let crud = loop(on: listenFD, idle: idleAPI, servesOnlyPolls: false)
      Threads.start(name: "pbp-accept-\(index)") { crud.run() }
    }
    if let pollFD, let idlePolls {
      for index in 0..<pollThreads {
        let polls = loop(on: pollFD, idle: idlePolls, servesOnlyPolls: true)
        Threads.start(name: "pbp-polls-\(index)") { polls.run() }
      }
    }
    slot?.acceptingStarted()
    // A reload drains the old workers as soon as the new ones accept. (A
    // worker whose master is gone has been handed to init, which must not get it.)
    let master = getppid()
    if master > 1 { ChildProcess.send(.userDefined1, to: master) }
    log.info("worker ready: \(options.threads) accepting threads, \(pollThreads) for polls")

    while true {
      let received = signals.wait()
      if received == .terminate || received == .interrupt { break }
    }
    // Stop taking new requests, release the idle kept connections (nginx
    // closes them and opens new ones, to the workers that serve; a request
    // it had sent on one already is served first), answer parked polls with
    // the newest cursor (their clients come straight back, to another worker;
    // their connections are released after the answer), and finish what is
    // in flight.
    idleAPI.drain(listening: listenFD)
    if let pollFD { idlePolls?.drain(listening: pollFD) }
    lifecycle.startDraining()
    hub.releaseAll()
    let stuck = lifecycle.awaitAcceptLoops(patience: .seconds(10))
    log.info("worker stopped" + (stuck > 0 ? " (\(stuck) threads still busy)" : ""))
    exit(0)
  }
}
