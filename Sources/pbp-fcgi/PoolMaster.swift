import DaemonSupport
import FastCGI
import Glibc
import WorkerPool

/// The master process, in the manner of php-fpm: owns the listening sockets,
/// keeps `--workers` workers running, and turns signals into pool actions.
/// SIGTERM/SIGINT: stop; SIGHUP: reload. What to do about workers is decided
/// by ``WorkerPoolStateMachine``; this class spawns, signals, reaps and logs.
final class PoolMaster {
  private let options: FcgiCommand
  private let log: Log
  private let systemd = SystemdNotifier()
  private let sockets: ListeningSockets
  private var pool: WorkerPoolStateMachine
  /// Read at start; a reload to more threads than it allows is refused.
  private let budget: ConnectionBudget?
  /// Room for the workers of two generations during a reload, and one more
  /// generation still draining.
  private let scoreboard: WorkerScoreboard

  /// How long a reload waits for its new workers to accept before it gives them up.
  static let reloadPatience: Duration = .seconds(10)

  init(options: FcgiCommand, log: Log) throws {
    self.options = options
    self.log = log
    switch ConfigurationCheck.connectionBudget(conninfo: options.conninfo, countingOthers: true) {
    case .success(let budget):
      if let refusal = budget.refusal(workers: options.workers, threads: options.threads) {
        throw ConfigurationError(description: refusal)
      }
      self.budget = budget
    case .failure(let error):
      log.warning("cannot check the pool against max_connections (\(error)); starting unchecked")
      budget = nil
    }
    sockets = try ListeningSockets(options: options, log: log)
    pool = WorkerPoolStateMachine(poolSize: options.workers, patience: Self.reloadPatience)
    scoreboard = try WorkerScoreboard.create(slots: options.workers * 3 + 2)
  }

  func run() throws {
    let signals = SignalWaiter([.terminate, .interrupt, .hangup, .child, .userDefined1])
    perform(pool.start(now: MonotonicClock.now()))
    systemd.ready(status: statusLine)
    while true {
      let timeout = pool.nextDeadline.map { max($0 - MonotonicClock.now(), .zero) } ?? .seconds(1)
      let received = signals.wait(timeout: min(timeout, .seconds(1)))
      reapChildren()
      switch received {
      case .terminate, .interrupt:
        stop(signals)
        return
      case .hangup:
        log.info("SIGHUP: checking the configuration, then starting new workers")
        handle(.reloadRequested(refusal: reloadRefusal()))
      default:
        break
      }
      // Each new worker says it accepts with SIGUSR1; its scoreboard flag is the truth.
      for pid in pool.awaitingAcceptance where scoreboard.isAccepting(pid) { handle(.accepting(pid: pid)) }
      handle(.tick)
    }
  }

  private var statusLine: String {
    "\(pool.workers.count) workers, \(pool.draining.count) draining; generation \(pool.servingGeneration)"
      + (pool.pending.map { ", reloading to \($0.generation)" } ?? "")
  }

  /// What a worker started now would make of the command line and the
  /// configuration file: parsed the same way, and checked against the database's limits.
  private func reloadRefusal() -> String? {
    ConfigurationCheck.refusal(
      workerArguments(slot: 0).dropFirst().map { $0 }, workers: options.workers, budget: budget)
  }

  private func workerArguments(slot: Int) -> [String] {
    CommandLine.arguments + [
      "--worker-listen-fd", "3", "--worker-scoreboard-fd", "4", "--worker-poll-listen-fd", "5", "--worker-slot",
      "\(slot)",
    ]
  }

  private func handle(_ event: WorkerPoolStateMachine.Event) {
    perform(pool.handle(event, now: MonotonicClock.now()))
  }

  private func perform(_ actions: [WorkerPoolStateMachine.Action]) {
    for action in actions {
      switch action {
      case .spawn(let generation):
        handle(spawnWorker(generation: generation))
      case .drain(let pid):
        ChildProcess.send(.terminate, to: pid)
      case .reloadRefused(let reason):
        log.error("reload refused, the workers keep their configuration: \(reason)")
        systemd.status(statusLine + "; last reload refused")
      case .reloadBegun(let generation):
        systemd.reloading()
        log.info("reload: starting generation \(generation)")
      case .reloadCompleted(let generation):
        log.info("reload: generation \(generation) accepts; draining the older workers")
        systemd.ready(status: statusLine)
      case .reloadAbandoned(let generation, let reason):
        log.error("reload abandoned, generation \(pool.servingGeneration) keeps serving: \(reason)")
        log.info("reload: draining generation \(generation)")
        systemd.ready(status: statusLine + "; last reload abandoned")
      }
    }
  }

  private func spawnWorker(generation: Int) -> WorkerPoolStateMachine.Event {
    guard let slot = scoreboard.reserveSlot() else {
      log.error("cannot start a worker: every scoreboard slot is taken")
      return .spawnFailed(generation: generation)
    }
    do {
      let pid = try ChildProcess.spawn(
        "/proc/self/exe", arguments: workerArguments(slot: slot),
        descriptors: [sockets.api, scoreboard.fd, sockets.polls])
      scoreboard.assign(slot, to: pid)
      log.info("worker \(pid) started (generation \(generation))")
      return .started(pid: pid, generation: generation)
    } catch {
      scoreboard.clear(slot)
      log.error("cannot start a worker: \(error)")
      return .spawnFailed(generation: generation)
    }
  }

  private func reapChildren() {
    while let exit = ChildProcess.reap() {
      if let slot = scoreboard.slot(of: exit.pid) { scoreboard.clear(slot) }
      if pool.draining.contains(exit.pid) {
        log.info("old worker \(exit.pid) \(exit)")
      } else if pool.workers[exit.pid] != nil {
        log.warning("worker \(exit.pid) \(exit)")
      }
      handle(.exited(pid: exit.pid))
      systemd.status(statusLine)
    }
  }

  private func stop(_ signals: SignalWaiter) {
    var remaining = pool.allWorkers
    log.info("stopping \(remaining.count) workers")
    systemd.stopping()
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
    sockets.removeFiles()
    log.info("stopped")
  }
}
