import DaemonSupport
import FastCGI
import Glibc
import WorkerPool

/// The master process, in the manner of php-fpm: owns the listening socket,
/// keeps `--workers` workers running, and turns signals into pool actions.
/// SIGTERM/SIGINT: stop; SIGHUP: start a new generation, and drain the old one
/// once the new workers accept (each says so with SIGUSR1), or after a few
/// seconds at the latest.
final class PoolMaster {
  private let options: FcgiCommand
  private let log: Log
  private let systemd = SystemdNotifier()
  private let listenFD: Int32
  private let ownsSocketFile: Bool
  /// Current workers by pid, with their generation.
  private var workers: [pid_t: Int] = [:]
  /// Workers of an older generation, told to stop and finishing what they hold.
  private var draining: Set<pid_t> = []
  private var generation = 0
  private var recentStarts: [Duration] = []
  /// A reload whose new generation is starting: the workers it will drain.
  private var pendingReload: (old: [pid_t], deadline: Duration)?
  /// Room for the workers of two generations during a reload.
  private let scoreboard: WorkerScoreboard

  /// How long a reload waits for its new workers to accept before draining the old.
  static let reloadPatience: Duration = .seconds(3)

  init(options: FcgiCommand, log: Log) throws {
    self.options = options
    self.log = log
    if let inherited = Self.socketFromSystemd() {
      listenFD = inherited
      ownsSocketFile = false
      log.info("using the socket systemd passed (fd \(inherited))")
    } else {
      guard let fd = FastCGISocket.open(path: options.socket, mode: mode_t(options.socketMode, radix: 8)!) else {
        throw SystemError("listen on \(options.socket)")
      }
      if let group = options.socketGroup { try FileSystem.changeGroup(options.socket, to: group) }
      // Workers find it on fd 3: the master keeps its copy out of the way.
      listenFD = ChildProcess.moveOutOfTheWay(fd)
      ownsSocketFile = true
      log.info("listening on \(options.socket)")
    }
    scoreboard = try WorkerScoreboard.create(slots: options.workers * 2 + 2)
  }

  /// LISTEN_FDS socket activation: the socket is fd 3.
  private static func socketFromSystemd() -> Int32? {
    guard let fds = getenv("LISTEN_FDS").flatMap({ Int(String(cString: $0)) }), fds >= 1,
      let pid = getenv("LISTEN_PID").flatMap({ Int32(String(cString: $0)) }), pid == getpid()
    else { return nil }
    unsetenv("LISTEN_FDS")
    unsetenv("LISTEN_PID")
    unsetenv("LISTEN_FDNAMES")
    return ChildProcess.moveOutOfTheWay(3)
  }

  func run() throws {
    let signals = SignalWaiter([.terminate, .interrupt, .hangup, .child, .userDefined1])
    startGeneration()
    systemd.ready(status: statusLine)
    while true {
      let received = signals.wait(timeout: pendingReload.map { $0.deadline - MonotonicClock.now() } ?? .seconds(1))
      reapChildren()
      switch received {
      case .terminate, .interrupt:
        stop(signals)
        return
      case .hangup:
        beginReload()
      default:
        break
      }
      finishReloadIfReady()
      replaceMissingWorkers()
    }
  }

  private var statusLine: String { "\(workers.count) workers, \(draining.count) draining; generation \(generation)" }

  private func startGeneration() {
    generation += 1
    for _ in 0..<options.workers { spawnWorker() }
  }

  private func spawnWorker() {
    guard let slot = scoreboard.reserveSlot() else {
      log.error("cannot start a worker: every scoreboard slot is taken")
      return
    }
    let arguments =
      CommandLine.arguments + ["--worker-listen-fd", "3", "--worker-scoreboard-fd", "4", "--worker-slot", "\(slot)"]
    do {
      let pid = try ChildProcess.spawn("/proc/self/exe", arguments: arguments, descriptors: [listenFD, scoreboard.fd])
      scoreboard.assign(slot, to: pid)
      workers[pid] = generation
      recentStarts.append(MonotonicClock.now())
      log.info("worker \(pid) started (generation \(generation))")
    } catch {
      scoreboard.clear(slot)
      log.error("cannot start a worker: \(error)")
    }
  }

  private func reapChildren() {
    while let exit = ChildProcess.reap() {
      if let slot = scoreboard.slot(of: exit.pid) { scoreboard.clear(slot) }
      if draining.remove(exit.pid) != nil {
        log.info("old worker \(exit.pid) \(exit)")
      } else if workers.removeValue(forKey: exit.pid) != nil {
        log.warning("worker \(exit.pid) \(exit); starting another")
      }
      systemd.status(statusLine)
    }
  }

  /// Keeps the pool full, but not in a tight loop when workers die at start.
  private func replaceMissingWorkers() {
    let now = MonotonicClock.now()
    recentStarts.removeAll { now - $0 > .seconds(10) }
    var missing = options.workers - workers.count
    while missing > 0 && recentStarts.count < options.workers * 5 {
      spawnWorker()
      missing -= 1
    }
  }

  private func beginReload() {
    log.info("SIGHUP: starting new workers, then draining the old")
    systemd.reloading()
    // A reload during a reload drains the first one's old workers now.
    if let pendingReload { drain(pendingReload.old) }
    let old = Array(workers.keys)
    startGeneration()
    pendingReload = (old, MonotonicClock.now() + Self.reloadPatience)
  }

  /// The old generation stops once every new worker accepts (so that no
  /// request meets an empty socket), or once the reload's patience is spent.
  private func finishReloadIfReady() {
    guard let reload = pendingReload else { return }
    let newWorkers = workers.filter { $0.value == generation }.map(\.key)
    guard MonotonicClock.now() >= reload.deadline || newWorkers.allSatisfy(scoreboard.isAccepting) else { return }
    drain(reload.old)
    pendingReload = nil
    systemd.ready(status: statusLine)
  }

  private func drain(_ old: [pid_t]) {
    for pid in old where workers.removeValue(forKey: pid) != nil {
      draining.insert(pid)
      ChildProcess.send(.terminate, to: pid)
    }
  }

  private func stop(_ signals: SignalWaiter) {
    log.info("stopping \(workers.count + draining.count) workers")
    systemd.stopping()
    var remaining = Set(workers.keys).union(draining)
    for pid in remaining { ChildProcess.send(.terminate, to: pid) }
    let deadline = MonotonicClock.now() + .seconds(15)
    while !remaining.isEmpty && MonotonicClock.now() < deadline {
      while let exit = ChildProcess.reap() { remaining.remove(exit.pid) }
      if !remaining.isEmpty { _ = signals.wait(timeout: deadline - MonotonicClock.now()) }
    }
    for pid in remaining {
      log.warning("worker \(pid) did not stop in time; killing it")
      ChildProcess.send(.kill, to: pid)
      ChildProcess.waitFor(pid)
    }
    if ownsSocketFile { unlink(options.socket) }
    log.info("stopped")
  }
}
