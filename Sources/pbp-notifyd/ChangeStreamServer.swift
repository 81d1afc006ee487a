import CSystemShim
import ChangeStream
import DaemonSupport
import Glibc
import PostgresClient

/// An event as notifyd keeps it: already encoded as the frame every subscriber gets.
struct StoredEvent: Sequenced {
  let seq: UInt64
  let frame: [UInt8]
}

/// notifyd's whole life: one thread, one poll(2) loop over the LISTEN
/// connection, the listening socket, the signal fd and every subscriber.
/// Nothing here blocks but the (re)connect to PostgreSQL, which is bounded by
/// the conninfo's connect_timeout.
final class ChangeStreamServer {
  struct Settings {
    var conninfo: String
    var socketPath: String
    var socketMode: mode_t
    var socketGroup: String?
    var channel: String
    var ringSize: Int
    var subscriberBufferLimit: Int
    var livenessInterval: Duration
    var livenessTimeout: Duration
  }

  private let settings: Settings
  private let log: Log
  private let systemd = SystemdNotifier()
  private let listenFD: Int32
  private let signalFD: Int32

  private var database: PostgresConnection?
  private var reconnect = ReconnectSchedule()
  /// nil until the first LISTEN is in place: no cursor may exist before it.
  private var epoch: UInt64?
  private var ring: ChangeRing<StoredEvent>
  private var subscribers: [Int32: Subscriber] = [:]
  private var stopping = false
  private var nextWatchdog: Duration?
  private var announcedReady = false
  /// When the LISTEN connection last showed it was alive, and when a probe went out unanswered.
  private var lastHeardFromDatabase: Duration = .zero
  private var probeSentAt: Duration?

  init(settings: Settings, log: Log) throws {
    self.settings = settings
    self.log = log
    self.ring = ChangeRing(capacity: settings.ringSize)
    let signals: [Int32] = [SIGTERM, SIGINT, SIGHUP]
    signal(SIGPIPE, SIG_IGN)
    signalFD = signals.withUnsafeBufferPointer { pbp_signalfd($0.baseAddress, Int32($0.count)) }
    guard signalFD >= 0 else { throw SystemError("signalfd") }
    listenFD = try UnixSocket.listen(path: settings.socketPath, mode: settings.socketMode)
    if let group = settings.socketGroup { try FileSystem.changeGroup(settings.socketPath, to: group) }
    UnixSocket.setNonBlocking(listenFD)
    log.info("listening for subscribers on \(settings.socketPath)")
  }

  func run() {
    connectToDatabase()
    if let interval = systemd.watchdogInterval { nextWatchdog = MonotonicClock.now() + interval }
    while !stopping {
      pollOnce()
    }
    shutDown()
  }

  // MARK: The loop

  private func pollOnce() {
    var fds: [pollfd] = [
      pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0),
      pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0),
      pollfd(fd: database?.socket ?? -1, events: Int16(POLLIN), revents: 0),
    ]
    for (fd, subscriber) in subscribers {
      let wantsWrite = subscriber.hasPendingOutput || subscriber.replayNext != nil
      fds.append(pollfd(fd: fd, events: Int16(POLLIN) | (wantsWrite ? Int16(POLLOUT) : 0), revents: 0))
    }
    let ready = poll(&fds, nfds_t(fds.count), timeoutMilliseconds())
    if ready < 0 && errno != EINTR {
      log.error("poll: \(SystemError("poll"))")
      return
    }
    if fds[0].revents != 0 { handleSignals() }
    if fds[2].revents != 0 { readNotifications() }
    if fds[1].revents != 0 { acceptSubscribers() }
    for entry in fds.dropFirst(3) where entry.revents != 0 {
      serviceSubscriber(fd: entry.fd, revents: entry.revents)
    }
    if database == nil, MonotonicClock.now() >= reconnect.nextAttempt {
      connectToDatabase()
    }
    checkLiveness()
    if let due = nextWatchdog, MonotonicClock.now() >= due, let interval = systemd.watchdogInterval {
      // Only a loop that turns proves liveness; a dead database does not stop us.
      systemd.watchdog()
      nextWatchdog = due + interval
    }
  }

  private func timeoutMilliseconds() -> Int32 {
    let now = MonotonicClock.now()
    var deadlines: [Duration] = []
    if database == nil { deadlines.append(reconnect.nextAttempt) }
    if database != nil {
      deadlines.append(
        probeSentAt.map { $0 + settings.livenessTimeout } ?? lastHeardFromDatabase + settings.livenessInterval)
    }
    if let nextWatchdog { deadlines.append(nextWatchdog) }
    guard let soonest = deadlines.min() else { return 60_000 }
    return Int32(clamping: max(0, (soonest - now).milliseconds + 1))
  }

  private func handleSignals() {
    while case let signal = pbp_signalfd_read(signalFD), signal != 0 {
      switch signal {
      case SIGHUP:
        log.info("SIGHUP: nothing to reload; \(statusLine)")
      default:
        log.info("signal \(signal): shutting down")
        stopping = true
      }
    }
  }

  // MARK: PostgreSQL

  private func connectToDatabase() {
    do {
      let connection = try PostgresConnection(conninfo: settings.conninfo)
      try connection.executeSimple("LISTEN " + PostgresConnection.quoteIdentifier(settings.channel))
      database = connection
      lastHeardFromDatabase = MonotonicClock.now()
      probeSentAt = nil
      reconnect.succeeded()
      startEpoch()
    } catch {
      let delay = reconnect.failed()
      log.warning("\(error); retrying in \(delay.milliseconds) ms")
    }
  }

  private func startEpoch() {
    let newEpoch = Cursor.newEpoch()
    epoch = newEpoch
    ring.reset(newestSeq: 0)
    let current = Cursor(epoch: newEpoch, seq: 0)
    log.info("LISTEN \(settings.channel) in place; epoch \(current)")
    for fd in Array(subscribers.keys) {
      guard let subscriber = subscribers[fd] else { continue }
      if subscriber.isGreeted {
        // A catch-up in progress belonged to the old epoch.
        subscribers[fd]?.replayNext = nil
        enqueue(StreamFrame.newEpoch(current).encoded, to: fd)
      } else if let hello = subscriber.pendingHello {
        greet(fd: fd, hello)
      }
    }
    flushAll()
    if !announcedReady {
      systemd.ready(status: statusLine)
      announcedReady = true
    } else {
      systemd.status(statusLine)
    }
  }

  private func readNotifications() {
    guard let database, let epoch else { return }
    do {
      try database.consumeInput()
      lastHeardFromDatabase = MonotonicClock.now()
      if database.collectResults() { probeSentAt = nil }
      var received = 0
      while let notification = database.nextNotification() {
        guard notification.channel == settings.channel else { continue }
        let seq = ring.nextSeq
        let event = StoredEvent(seq: seq, frame: StreamFrame.event(seq: seq, payload: notification.payload).encoded)
        ring.append(event)
        for fd in Array(subscribers.keys) where subscribers[fd]!.isLive {
          enqueue(event.frame, to: fd)
        }
        received += 1
      }
      if received > 0 {
        flushAll()
        log.debug("\(received) events; newest \(Cursor(epoch: epoch, seq: ring.newestSeq))")
      }
      if !database.isHealthy { throw PostgresError.connectionLost("connection status is bad") }
    } catch {
      connectionLost("\(error)")
    }
  }

  private func connectionLost(_ reason: String) {
    if let epoch {
      log.warning("LISTEN connection lost (\(reason)); epoch \(Cursor(epoch: epoch, seq: ring.newestSeq)) ends")
    }
    database = nil
    probeSentAt = nil
    systemd.status("reconnecting to PostgreSQL; " + statusLine)
    reconnect.lost()
  }

  /// A connection that has been quiet is asked a question: a server that
  /// vanished without closing the socket (a dead host, a cut network) is then
  /// noticed within the interval plus the timeout.
  private func checkLiveness() {
    guard let database else { return }
    let now = MonotonicClock.now()
    if let sent = probeSentAt {
      if now - sent >= settings.livenessTimeout {
        connectionLost("no answer to a liveness probe within \(settings.livenessTimeout)")
      }
    } else if now - lastHeardFromDatabase >= settings.livenessInterval {
      do {
        try database.send("SELECT 1")
        probeSentAt = now
      } catch {
        connectionLost("\(error)")
      }
    }
  }

  // MARK: Subscribers

  private func acceptSubscribers() {
    while true {
      let fd = pbp_accept_nonblocking(listenFD)
      if fd < 0 { return }
      subscribers[fd] = Subscriber()
      log.debug("subscriber \(fd) connected (\(subscribers.count) in all)")
    }
  }

  private func serviceSubscriber(fd: Int32, revents: Int16) {
    guard subscribers[fd] != nil else { return }
    if revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
      var chunk = [UInt8](repeating: 0, count: 4096)
      let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
      if count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR) {
        drop(fd, reason: count == 0 ? "disconnected" : "read failed")
        return
      }
      if count > 0 {
        subscribers[fd]!.decoder.feed(chunk[0..<count])
        readFrames(from: fd)
      }
    }
    if revents & Int16(POLLOUT) != 0 { flush(fd) }
  }

  private func readFrames(from fd: Int32) {
    do {
      while let frame = try subscribers[fd]?.decoder.next() {
        guard case .hello(let version, let cursor, let history) = frame, !subscribers[fd]!.hasSaidHello else {
          drop(fd, reason: "unexpected frame \(frame)")
          return
        }
        guard version == StreamFrame.protocolVersion else {
          drop(fd, reason: "protocol version \(version) is not \(StreamFrame.protocolVersion)")
          return
        }
        let hello = Subscriber.Hello(resumeFrom: cursor, history: history)
        subscribers[fd]!.pendingHello = hello
        if epoch != nil { greet(fd: fd, hello) }
      }
    } catch {
      drop(fd, reason: "bad frame: \(error)")
    }
    flush(fd)
  }

  /// Tells a subscriber where its stream continues from, and queues what
  /// follows: what it missed, if the ring has it, or else the recent history it
  /// asked for.
  private func greet(fd: Int32, _ hello: Subscriber.Hello) {
    guard let epoch else { return }
    let from: Cursor
    let resumed: Bool
    if let cursor = hello.resumeFrom, cursor.epoch == epoch, ring.covers(after: cursor.seq) {
      from = cursor
      resumed = true
    } else {
      let history = min(UInt64(hello.history), UInt64(ring.count))
      from = Cursor(epoch: epoch, seq: ring.newestSeq - history)
      resumed = false
    }
    if from.seq < ring.newestSeq { subscribers[fd]?.replayNext = from.seq + 1 }
    enqueue(StreamFrame.welcome(version: StreamFrame.protocolVersion, from: from, resumed: resumed).encoded, to: fd)
    subscribers[fd]?.isGreeted = true
    subscribers[fd]?.pendingHello = nil
    log.debug(
      "subscriber \(fd) greeted at \(from) (newest \(ring.newestSeq)), \(resumed ? "resuming" : "reset")")
  }

  private func enqueue(_ frame: [UInt8], to fd: Int32) {
    guard subscribers[fd] != nil else { return }
    subscribers[fd]!.output.append(contentsOf: frame)
    if subscribers[fd]!.pendingByteCount > settings.subscriberBufferLimit {
      drop(fd, reason: "fell \(subscribers[fd]!.pendingByteCount) bytes behind")
    }
  }

  private func flushAll() {
    for fd in Array(subscribers.keys) where subscribers[fd]?.hasPendingOutput == true { flush(fd) }
  }

  private func flush(_ fd: Int32) {
    guard var subscriber = subscribers[fd], subscriber.hasPendingOutput || subscriber.replayNext != nil else { return }
    while true {
      if subscriber.writePending(to: fd) {
        subscribers[fd] = subscriber
        drop(fd, reason: "write failed")
        return
      }
      // Refill from the ring only as the socket drains.
      guard !subscriber.hasPendingOutput, let next = subscriber.replayNext else { break }
      if !refill(&subscriber, from: next) {
        subscribers[fd] = subscriber
        drop(fd, reason: "fell behind the ring while catching up")
        return
      }
    }
    subscribers[fd] = subscriber
  }

  /// Queues up to 256 KiB of catch-up frames; false when the ring no longer
  /// holds the next one (the subscriber must reconnect and reset).
  private func refill(_ subscriber: inout Subscriber, from next: UInt64) -> Bool {
    var seq = next
    while seq <= ring.newestSeq && subscriber.pendingByteCount < 256 * 1024 {
      guard let event = ring.element(withSeq: seq) else { return false }
      subscriber.output.append(contentsOf: event.frame)
      seq += 1
    }
    subscriber.replayNext = seq > ring.newestSeq ? nil : seq
    return true
  }

  private func drop(_ fd: Int32, reason: String) {
    guard subscribers.removeValue(forKey: fd) != nil else { return }
    close(fd)
    log.info("subscriber \(fd) dropped: \(reason) (\(subscribers.count) left)")
  }

  // MARK: Shutdown

  private var statusLine: String {
    guard let epoch else { return "waiting for PostgreSQL; \(subscribers.count) subscribers" }
    return "epoch \(Cursor(epoch: epoch, seq: ring.newestSeq)); \(subscribers.count) subscribers"
  }

  private func shutDown() {
    systemd.stopping()
    for fd in Array(subscribers.keys) { drop(fd, reason: "shutting down") }
    close(listenFD)
    unlink(settings.socketPath)
    database = nil
    log.info("stopped")
  }
}
