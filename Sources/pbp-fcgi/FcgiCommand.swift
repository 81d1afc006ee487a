import ArgumentParser
import DaemonSupport
import Glibc
import Identity

@main
struct FcgiCommand: ParsableCommand {
  static func main() { mainReadingConfigFile() }

  static let configuration = CommandConfiguration(
    commandName: "pbp-fcgi",
    abstract: "The FastCGI worker pool behind nginx: the CRUD API and the change long-polls.",
    discussion: """
      A master process owns the FastCGI sockets (or takes them from systemd socket
      activation), starts --workers worker processes that accept with --threads
      threads each (and --poll-threads on --poll-socket), and restarts a worker
      that dies. SIGTERM stops gracefully; SIGHUP checks the configuration, then
      replaces the workers without failing a request.
      """)

  @Option(help: "A file of `option = value` lines (long option names without dashes); flags override it.")
  var config: String?

  @Option(help: "FastCGI unix socket to listen on (ignored under socket activation).")
  var socket: String = "/run/pbp/fcgi.sock"

  @Option(help: "File mode of the FastCGI socket, in octal (nginx's workers must be able to connect).")
  var socketMode: String = "0660"

  @Option(help: "Group to give the FastCGI socket (nginx's group, www-data on Debian).")
  var socketGroup: String?

  @Option(
    help: """
      FastCGI unix socket for POST /api/changes only (nginx's `location = /api/changes`), served by \
      --poll-threads threads per worker that never run SQL, so that polls never wait behind slow queries.
      """)
  var pollSocket: String = "/run/pbp/fcgi-poll.sock"

  @Option(help: "Threads per worker accepting on --poll-socket (they parse and park polls, nothing else).")
  var pollThreads: Int = 2

  @Option(help: "pbp-notifyd's unix socket.")
  var notifydSocket: String = "/run/pbp/notifyd/notifyd.sock"

  @Option(help: "libpq connection string for the API's queries (as the pbp_app role).")
  var conninfo: String = "dbname=pbp user=pbp_app connect_timeout=3"

  @Option(help: "Seconds a statement may run before it is cancelled and the request answered 503.")
  var statementTimeout: Double = 10

  @Option(help: "A file holding the HS256 secret that signs bearer tokens (see docs/authentication.md).")
  var jwtSecretFile: String?

  @Option(help: "A JWKS file of the RS256 and ES256 public keys that sign bearer tokens.")
  var jwksFile: String?

  @Option(help: "The audience (`aud`) tokens must name; none: not checked.")
  var jwtAudience: String?

  @Option(help: "Seconds of clock skew allowed when checking exp, nbf and iat.")
  var jwtClockSkew: Double = 30

  @Option(help: "The PostgreSQL role of requests without a token; none: they get 401.")
  var anonymousRole: String?

  @Option(help: "The PostgreSQL role of a token without a `role` claim; empty: such a token gets 403.")
  var tokenRole: String = "pbp_user"

  @Option(
    help: "Comma-separated tables served under /api/, of those watched with pbp_watch(); empty: every watched table.")
  var tables: String = ""

  @Option(help: "Worker processes (default: the number of cores).")
  var workers: Int = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))

  @Option(help: "Accepting threads per worker; each holds at most one database connection.")
  var threads: Int = 4

  @Option(help: "Seconds a long-poll waits when it names no timeout.")
  var pollTimeout: Double = 25

  @Option(help: "The longest timeout a long-poll may ask for, in seconds (below nginx's fastcgi_read_timeout).")
  var maxPollTimeout: Double = 55

  @Option(help: "Events each worker keeps to answer polls without asking notifyd.")
  var ringSize: Int = 65536

  @Option(help: "Bytes each worker's ring may hold at most; the oldest events go first when it is full.")
  var ringBytes: Int = 64 << 20

  @Option(help: "The largest request body accepted, in bytes.")
  var maxBodyBytes: Int = 1 << 20

  @Option(help: "The most bytes of JSON in one collection page; the client continues with the page's Link rel=next.")
  var maxPageBytes: Int = 4 << 20

  @Option(help: "The most subscriptions one poll may carry.")
  var maxSubscriptions: Int = 256

  @Option(
    help: """
      Kept FastCGI connections (nginx's fastcgi_keep_conn) that may wait idle per worker and socket; \
      more are closed. nginx's keepalive times its worker_processes is enough.
      """)
  var maxIdleConnections: Int = 32768

  @Flag(help: "Log each request.")
  var verbose = false

  @Flag(
    help: """
      Check the configuration as a new worker would read it (and the pool against the database's \
      max_connections, when it can be reached), then exit: 0 when a reload may proceed.
      """)
  var checkConfig = false

  @Option(help: .hidden)
  var workerListenFD: Int32?

  @Option(help: .hidden)
  var workerPollListenFD: Int32?

  @Option(help: .hidden)
  var workerScoreboardFD: Int32?

  @Option(help: .hidden)
  var workerSlot: Int?

  func validate() throws {
    guard maxIdleConnections >= 0 else { throw ValidationError("--max-idle-connections must not be negative") }
    guard workers > 0, threads > 0, pollThreads > 0 else {
      throw ValidationError("--workers, --threads and --poll-threads must be positive")
    }
    guard pollSocket != socket else { throw ValidationError("--poll-socket must differ from --socket") }
    guard mode_t(socketMode, radix: 8) != nil else { throw ValidationError("--socket-mode must be octal, like 0660") }
    guard pollTimeout >= 0, maxPollTimeout >= pollTimeout else {
      throw ValidationError("--poll-timeout must be between 0 and --max-poll-timeout")
    }
    guard ringSize > 0, ringBytes > 0, maxBodyBytes > 0, maxSubscriptions > 0, maxPageBytes > 0 else {
      throw ValidationError(
        "--ring-size, --ring-bytes, --max-body-bytes, --max-page-bytes and --max-subscriptions must be positive")
    }
  }

  var authentication: AuthenticationConfiguration {
    AuthenticationConfiguration(
      secretFile: jwtSecretFile, jwksFile: jwksFile, audience: jwtAudience, clockSkewSeconds: jwtClockSkew,
      roles: RoleRules(anonymousRole: anonymousRole, defaultTokenRole: tokenRole.isEmpty ? nil : tokenRole))
  }

  /// The tables `--tables` restricts the API to; nil serves every watched table.
  var tableRestriction: Set<String>? {
    let names = tables.split(separator: ",").map { String($0.filter { !$0.isWhitespace }) }.filter { !$0.isEmpty }
    return names.isEmpty ? nil : Set(names)
  }

  func run() throws {
    if checkConfig {
      try runCheck()
      return
    }
    let log = Log(
      component: workerListenFD == nil ? "pbp-fcgi" : "pbp-fcgi-worker", minimumLevel: verbose ? .debug : .info)
    if let workerListenFD {
      WorkerProcess(options: self, listenFD: workerListenFD, log: log).run()
    } else {
      do {
        try PoolMaster(options: self, log: log).run()
      } catch {
        log.error("cannot start: \(error)")
        throw ExitCode(1)
      }
    }
  }

  /// `--check-config`: the parsing already passed; what is left is the database's limits.
  private func runCheck() throws {
    switch ConfigurationCheck.connectionBudget(conninfo: conninfo) {
    case .success(let budget):
      if let refusal = budget.refusal(workers: workers, threads: threads) {
        Log(component: "pbp-fcgi").error(refusal)
        throw ExitCode(1)
      }
      print("configuration ok: \(workers) workers × \(threads) threads fit max_connections \(budget.maxConnections)")
    case .failure(let error):
      print("configuration ok (the pool is not checked against max_connections: \(error))")
    }
  }
}
