import ChangePublisher
import ChangeStream
import DaemonSupport
import Glibc

/// notifyd's whole life: one thread, one poll(2) loop over the signal fd, the
/// listening socket, the change source's connection (LISTEN or the
/// replication slot) and every stream client, and the systemd watchdog.
final class ChangeStreamServer {
  struct Settings {
    var socketPath: String
    var socketMode: mode_t
    var socketGroup: String?
    var ringSize: Int
    var ringBytes: Int
    var subscriberBufferLimit: Int
  }

  private let settings: Settings
  private let log: Log
  private let systemd = SystemdNotifier()
  private let listenFD: Int32
  private let signals: SignalDescriptor

  private let source: any ChangeSource
  private var history: ChangeHistory
  private var clients: [Int32: StreamClientConnection] = [:]
  private var stopping = false
  private var watchdog: WatchdogSchedule?
  private var acceptThrottle = AcceptThrottle()
  /// The ring's figures in systemd's STATUS and the log, as they change.
  private var statusReports = StatusReportSchedule(interval: .seconds(60), now: MonotonicClock.now())
  private var announcedReady = false

  init(settings: Settings, source: any ChangeSource, log: Log) throws {
    self.settings = settings
    self.log = log
    self.history = ChangeHistory(ringCapacity: settings.ringSize, ringByteBudget: settings.ringBytes)
    self.source = source
    UnixSignal.ignore(.pipe)
    signals = try SignalDescriptor([.terminate, .interrupt, .hangup])
    listenFD = try UnixSocket.listen(path: settings.socketPath, mode: settings.socketMode)
    if let group = settings.socketGroup { try FileSystem.changeGroup(settings.socketPath, to: group) }
    UnixSocket.setNonBlocking(listenFD)
    log.info("listening for subscribers on \(settings.socketPath)")
  }

  func run() {
    serviceDatabase()
    if let interval = systemd.watchdogInterval {
      watchdog = WatchdogSchedule(interval: interval, now: MonotonicClock.now())
    }
    while !stopping {
      pollOnce()
    }
    shutDown()
  }

  // MARK: The loop

  private func pollOnce() {
    var fds: [pollfd] = [
      pollfd(fd: signals.fd, events: Int16(POLLIN), revents: 0),
      // A negative descriptor is skipped by poll(2): the socket is left alone while accepts cannot work.
      pollfd(
        fd: acceptThrottle.watchesListeningSocket(now: MonotonicClock.now()) ? listenFD : -1,
        events: Int16(POLLIN), revents: 0),
      pollfd(fd: source.socket, events: Int16(POLLIN) | (source.wantsToWrite ? Int16(POLLOUT) : 0), revents: 0),
    ]
    for (fd, client) in clients {
      fds.append(pollfd(fd: fd, events: Int16(POLLIN) | (client.wantsToWrite ? Int16(POLLOUT) : 0), revents: 0))
    }
    let ready = poll(&fds, nfds_t(fds.count), timeoutMilliseconds())
    if ready < 0 && errno != EINTR {
      log.error("poll: \(SystemError("poll"))")
      return
    }
    if fds[0].revents != 0 { handleSignals() }
    if fds[2].revents != 0 { readSource() }
    if fds[1].revents != 0 { acceptClients() }
    for entry in fds.dropFirst(3) where entry.revents != 0 {
      serviceClient(fd: entry.fd, revents: entry.revents)
    }
    serviceDatabase()
    let now = MonotonicClock.now()
    if watchdog?.tick(now: now) == true { systemd.watchdog() }
    if statusReports.isDue(now: now) {
      let status = statusLine
      if statusReports.report(status, now: now) {
        systemd.status(status)
        log.info(status)
      }
    }
  }

  private func timeoutMilliseconds() -> Int32 {
    let soonest = [source.nextDeadline, watchdog?.nextDue, acceptThrottle.nextDeadline].compactMap { $0 }.min()!
    return Int32(clamping: max(0, (soonest - MonotonicClock.now()).milliseconds + 1))
  }

  private func handleSignals() {
    while let signal = signals.next() {
      switch signal {
      case .hangup:
        log.info("SIGHUP: nothing to reload; \(statusLine)")
      default:
        log.info("\(signal): shutting down")
        stopping = true
      }
    }
  }

  // MARK: PostgreSQL

  private func serviceDatabase() {
    switch source.tick(history: &history) {
    case .none: break
    case .startedOver(let reason): startedOver(reason)
    case .continued:
      log.info("connected again; the history goes on from \(history.newest.map { "\($0)" } ?? "nothing")")
      systemd.status(statusLine)
      // What came with the connection's answers is buffered already (see below).
      readSource()
    case .lost(let reason): connectionLost(reason)
    }
  }

  /// The history starts over: clients are told (or, if waiting, greeted).
  private func startedOver(_ reason: String) {
    log.info(reason)
    tellClientsTheStreamStarts()
    // Notifications committed while LISTEN was answered came with its answer:
    // libpq has read them off the socket already, which will not turn readable for them.
    readSource()
  }

  private func tellClientsTheStreamStarts() {
    for client in Array(clients.values) {
      settle(client, client.epochStarted(history: history))
    }
    if history.isServing && !announcedReady {
      systemd.ready(status: statusLine)
      announcedReady = true
    } else {
      systemd.status(statusLine)
    }
  }

  private func readSource() {
    let arrivals = source.readAvailable(into: &history)
    if !arrivals.events.isEmpty {
      for client in Array(clients.values) {
        settle(client, client.eventsAppended(arrivals.events, history: history))
      }
      log.debug("\(arrivals.events.count) events; newest \(history.newest!)")
    }
    if arrivals.startedServing { tellClientsTheStreamStarts() }
    if let reason = arrivals.lostBecause { connectionLost(reason) }
  }

  private func connectionLost(_ reason: String) {
    if let newest = history.newest {
      log.warning("connection to PostgreSQL lost (\(reason)); the newest position was \(newest)")
    }
    systemd.status("reconnecting to PostgreSQL; " + statusLine)
  }

  // MARK: Stream clients

  private func acceptClients() {
    while true {
      guard let fd = UnixSocket.acceptNonBlocking(listenFD) else {
        let failure = SystemError("accept")
        if case .paused(let wait, firstInARow: true) = acceptThrottle.acceptFailed(
          errno: failure.code, now: MonotonicClock.now())
        {
          log.warning("\(failure) with \(clients.count) subscribers; not accepting for \(wait.milliseconds) ms")
        }
        return
      }
      let pauses = acceptThrottle.accepted()
      if pauses > 0 { log.info("accepting subscribers again after \(pauses) pauses") }
      clients[fd] = StreamClientConnection(fd: fd, bufferLimit: settings.subscriberBufferLimit, log: log)
      log.debug("subscriber \(fd) connected (\(clients.count) in all)")
    }
  }

  private func serviceClient(fd: Int32, revents: Int16) {
    guard let client = clients[fd] else { return }
    if revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
      settle(client, client.readAvailable(history: history))
      guard clients[fd] != nil else { return }
    }
    if revents & Int16(POLLOUT) != 0 { settle(client, client.writeAvailable(history: history)) }
  }

  private func settle(_ client: StreamClientConnection, _ status: StreamClientConnection.Status) {
    if case .finished(let reason) = status { drop(client, reason: reason) }
  }

  private func drop(_ client: StreamClientConnection, reason: String) {
    guard clients.removeValue(forKey: client.fd) != nil else { return }
    client.close()
    acceptThrottle.descriptorReleased()
    log.info("subscriber \(client.fd) dropped: \(reason) (\(clients.count) left)")
  }

  // MARK: Shutdown

  private var statusLine: String {
    let detail = source.statusDetail.map { "; " + $0 } ?? ""
    guard let newest = history.newest else { return "waiting for PostgreSQL; \(clients.count) subscribers" + detail }
    return "epoch \(newest); \(clients.count) subscribers; \(history.ring.usage)" + detail
  }

  private func shutDown() {
    systemd.stopping()
    for client in Array(clients.values) { drop(client, reason: "shutting down") }
    close(listenFD)
    unlink(settings.socketPath)
    source.close(history: history)
    log.info("stopped")
  }
}
