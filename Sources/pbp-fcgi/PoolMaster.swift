import CSystemShim
import DaemonSupport
import FastCGI
import Glibc
import PBPAPI

/// The master process, in the manner of php-fpm: owns the listening socket,
/// keeps `--workers` workers running, and turns signals into pool actions.
/// SIGTERM/SIGINT: stop; SIGHUP: start a new generation, then let the old drain.
final class PoolMaster {
  private let options: FcgiCommand
  private let log: Log
  private let systemd = SystemdNotifier()
  private let listenFD: Int32
  private let ownsSocketFile: Bool
  /// Current workers by pid; a worker of an older generation is draining.
  private var workers: [pid_t: Int] = [:]
  private var draining: Set<pid_t> = []
  private var generation = 0
  private var recentStarts: [Duration] = []
  /// Room for the workers of two generations during a reload.
  private let scoreboard: WorkerScoreboard

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
      listenFD = pbp_move_fd_high(fd)
      ownsSocketFile = true
      log.info("listening on \(options.socket)")
    }
    guard let scoreboard = WorkerScoreboard.create(slots: options.workers * 2 + 2) else {
      throw SystemError("create the worker scoreboard")
    }
    self.scoreboard = scoreboard
  }

  /// LISTEN_FDS socket activation: the socket is fd 3.
  private static func socketFromSystemd() -> Int32? {
    guard let fds = getenv("LISTEN_FDS").flatMap({ Int(String(cString: $0)) }), fds >= 1,
      let pid = getenv("LISTEN_PID").flatMap({ Int32(String(cString: $0)) }), pid == getpid()
    else { return nil }
    unsetenv("LISTEN_FDS")
    unsetenv("LISTEN_PID")
    unsetenv("LISTEN_FDNAMES")
    return pbp_move_fd_high(3)
  }

  func run() throws {
    let signals: [Int32] = [SIGTERM, SIGINT, SIGHUP, SIGCHLD]
    _ = signals.withUnsafeBufferPointer { pbp_block_signals($0.baseAddress, Int32($0.count)) }
    startGeneration()
    systemd.ready(status: statusLine)
    while true {
      let received = signals.withUnsafeBufferPointer { pbp_wait_signal($0.baseAddress, Int32($0.count), 1000) }
      reapChildren()
      switch received {
      case SIGTERM, SIGINT:
        stop()
        return
      case SIGHUP:
        reload()
      default:
        break
      }
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
    let executable = "/proc/self/exe"
    var arguments = CommandLine.arguments
    arguments.append(contentsOf: ["--worker-listen-fd", "3", "--worker-scoreboard-fd", "4", "--worker-slot", "\(slot)"])
    let cArguments = arguments.map { strdup($0) } + [nil]
    defer {
      for argument in cArguments { free(argument) }
    }
    let pid = pbp_spawn_with_fds(executable, cArguments, listenFD, scoreboard.fd)
    guard pid > 0 else {
      scoreboard.clear(slot)
      log.error("cannot start a worker: \(SystemError("posix_spawn", code: -pid))")
      return
    }
    scoreboard.assign(slot, to: pid)
    workers[pid] = generation
    recentStarts.append(MonotonicClock.now())
    log.info("worker \(pid) started (generation \(generation))")
  }

  private func reapChildren() {
    while true {
      var status: Int32 = 0
      let pid = waitpid(-1, &status, WNOHANG)
      guard pid > 0 else { return }
      if let slot = scoreboard.slot(of: pid) { scoreboard.clear(slot) }
      let how = (status & 0x7f) == 0 ? "exited with \((status >> 8) & 0xff)" : "killed by signal \(status & 0x7f)"
      if draining.remove(pid) != nil {
        log.info("old worker \(pid) \(how)")
      } else if workers.removeValue(forKey: pid) != nil {
        log.warning("worker \(pid) \(how); starting another")
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

  private func reload() {
    log.info("SIGHUP: starting new workers, then draining the old")
    systemd.reloading()
    let old = Array(workers.keys)
    startGeneration()
    // The new workers accept as soon as they are up; the old finish what they hold.
    usleep(200_000)
    for pid in old {
      workers[pid] = nil
      draining.insert(pid)
      kill(pid, SIGTERM)
    }
    systemd.ready(status: statusLine)
  }

  private func stop() {
    log.info("stopping \(workers.count + draining.count) workers")
    systemd.stopping()
    let all = Array(workers.keys) + Array(draining)
    for pid in all { kill(pid, SIGTERM) }
    let deadline = MonotonicClock.now() + .seconds(15)
    var remaining = Set(all)
    while !remaining.isEmpty && MonotonicClock.now() < deadline {
      var status: Int32 = 0
      let pid = waitpid(-1, &status, WNOHANG)
      if pid > 0 { remaining.remove(pid) } else { usleep(20_000) }
    }
    for pid in remaining {
      log.warning("worker \(pid) did not stop in time; killing it")
      kill(pid, SIGKILL)
      waitpid(pid, nil, 0)
    }
    if ownsSocketFile { unlink(options.socket) }
    log.info("stopped")
  }
}
