import ArgumentParser
import DaemonSupport
import PostgresClient
import WorkerPool

/// What a worker started now would make of its command line and
/// configuration file: the master asks before a reload (a file that a worker
/// would refuse must not replace working workers), and `--check-config` asks
/// for `systemctl reload`.
enum ConfigurationCheck {
  /// The options the worker would run with, or why it would exit.
  static func parse(_ arguments: [String]) -> Result<FcgiCommand, ConfigurationError> {
    do {
      let expanded = try ConfigFile.expand(arguments, readFile: FileSystem.read)
      guard let command = try FcgiCommand.parseAsRoot(expanded) as? FcgiCommand else {
        return .failure(ConfigurationError(description: "the arguments name no pbp-fcgi command"))
      }
      return .success(command)
    } catch {
      return .failure(ConfigurationError(description: FcgiCommand.message(for: error)))
    }
  }

  /// Why a reload to the configuration `arguments` name must be refused, or nil.
  static func refusal(
    _ arguments: [String], workers: Int, budget: ConnectionBudget?
  ) -> String? {
    switch parse(arguments) {
    case .failure(let error): return error.description
    case .success(let options):
      // A key file that a new worker could not load would leave it unable to answer anything.
      if case .failure(let error) = options.authentication.loadBlocking() { return error.description }
      return budget?.refusal(workers: workers, threads: options.threads)
    }
  }

  /// The server's connection limits as the API's role sees them; nil when the
  /// database cannot be reached (the pool then starts unchecked: a database
  /// that is down at boot must not keep the API from coming up).
  /// `countingOthers`: also what other sessions hold now (the pool's start,
  /// before it opens any: other hosts' pools), never while this pool runs
  /// (`--check-config` for a reload), when its own would be counted too.
  static func connectionBudget(conninfo: String, countingOthers: Bool = false) -> Result<
    ConnectionBudget, PostgresError
  > {
    do {
      let connection = try PostgresConnection(conninfo: conninfo)
      // An ordinary role sees only the pid and user of other roles' sessions
      // in pg_stat_activity (backend_type is hidden too): a session with a
      // user is a client connection, unless it is a walsender (another
      // host's wal notifyd), which max_wal_senders counts, not max_connections.
      let clients = """
        from pg_stat_activity where usename is not null and pid <> pg_backend_pid()
          and pid not in (select pid from pg_stat_replication where pid is not null)
        """
      let others =
        countingOthers
        ? "(select count(*) \(clients)), (select count(*) \(clients) and usename = current_user)" : "0, 0"
      let row = try connection.executeSimple(
        """
        select current_setting('max_connections'),
               current_setting('superuser_reserved_connections')::int
                 + coalesce(current_setting('reserved_connections', true)::int, 0),
               (select rolconnlimit from pg_roles where rolname = current_user),
               \(others)
        """
      ).rows.first
      let numbers = (row ?? []).map { $0.flatMap { Int($0) } }
      guard numbers.count == 5, let maximum = numbers[0], let reserved = numbers[1] else {
        return .failure(.server(sqlState: "XX000", message: "the server did not report max_connections", detail: nil))
      }
      let roleLimit = numbers[2].flatMap { $0 >= 0 ? $0 : nil }
      return .success(
        ConnectionBudget(
          maxConnections: maximum, reservedConnections: reserved, roleConnectionLimit: roleLimit,
          heldByOthers: numbers[3] ?? 0, heldByRole: numbers[4] ?? 0))
    } catch {
      return .failure(error)
    }
  }
}

struct ConfigurationError: Error, CustomStringConvertible {
  let description: String
}
