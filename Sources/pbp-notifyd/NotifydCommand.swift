import ArgumentParser
import DaemonSupport
import Glibc
import PostgresClient

@main
struct NotifydCommand: ParsableCommand {
  static func main() { mainReadingConfigFile() }

  static let configuration = CommandConfiguration(
    commandName: "pbp-notifyd",
    abstract:
      "Follows PostgreSQL's changes (a LISTEN connection, or a logical replication slot) and streams every change, stamped with a cursor, to the workers.",
    discussion: """
      Subscribers (pbp-fcgi worker processes) connect to the unix socket, say the
      cursor they already have, and receive the events after it from the ring,
      then live. A cursor from another epoch, or older than the ring, is answered
      with a reset. See docs/notifyd-protocol.md.

      The notify source (the default) LISTENs on the database's channel: a
      random name that only the triggers and this role (through
      pbp_stream_channel()) can read, asked for on every connect. Every new
      LISTEN connection starts a new epoch, and clients reset.

      The wal source reads the triggers' messages from a durable logical
      replication slot (made if missing), so cursors survive restarts of
      notifyd and PostgreSQL. It needs wal_level = logical, a role with
      REPLICATION (pbp_wal) and the database switched with
      `select pbp_set_change_source('wal')`; see docs/deploy.md.
      """)

  @Option(help: "A file of `option = value` lines (long option names without dashes); flags override it.")
  var config: String?

  enum Source: String, ExpressibleByArgument, CaseIterable {
    case notify, wal
  }

  @Option(help: "Where changes come from: notify (LISTEN) or wal (a logical replication slot).")
  var source: Source = .notify

  @Option(
    help:
      "libpq connection string (default: dbname=pbp user=pbp_notifyd for notify, dbname=pbp user=pbp_wal for wal; replication=database is added for wal)."
  )
  var conninfo: String?

  @Option(help: "The wal source's replication slot (made if missing); one per host that follows the database.")
  var slot: String = "pbp"

  @Option(help: "The publication the wal source starts pgoutput with (sql/50-wal-publication.sql).")
  var publication: String = "pbp_messages"

  @Option(help: "Seconds between the wal source's status updates to the server when nothing else prompts one.")
  var statusInterval: Int = 10

  @Option(help: "Unix socket that subscribers connect to.")
  var socket: String = "/run/pbp/notifyd/notifyd.sock"

  @Option(help: "File mode of the socket, in octal.")
  var socketMode: String = "0660"

  @Option(help: "Group to give the socket, so that the workers' user may connect.")
  var socketGroup: String?

  @Option(help: "Seconds without traffic after which the LISTEN connection is probed with SELECT 1.")
  var livenessInterval: Int = 15

  @Option(help: "Seconds a liveness probe may take before the connection counts as lost.")
  var livenessTimeout: Int = 10

  /// Earlier versions named the channel here, while the triggers hard-coded
  /// theirs. Accepted so that a config file kept across an upgrade still
  /// starts notifyd, and ignored: the channel is the database's.
  @Option(help: .hidden)
  var channel: String?

  @Option(help: "How many recent events to keep for subscribers that reconnect.")
  var ringSize: Int = 1_048_576

  @Option(help: "How many bytes of recent events to keep: the oldest go first when either limit is reached.")
  var ringBytes: Int = 128 * 1024 * 1024

  @Option(help: "Bytes a subscriber may fall behind before it is cut off.")
  var subscriberBufferLimit: Int = 64 * 1024 * 1024

  @Flag(help: "Log every event and subscriber.")
  var verbose = false

  func validate() throws {
    guard ringSize > 0 else { throw ValidationError("--ring-size must be positive") }
    guard ringBytes > 0 else { throw ValidationError("--ring-bytes must be positive") }
    guard statusInterval > 0 else { throw ValidationError("--status-interval must be positive") }
    guard !slot.isEmpty, !publication.isEmpty else { throw ValidationError("--slot and --publication name something") }
    guard livenessInterval > 0, livenessTimeout > 0 else {
      throw ValidationError("--liveness-interval and --liveness-timeout must be positive")
    }
    guard mode_t(socketMode, radix: 8) != nil else { throw ValidationError("--socket-mode must be octal, like 0660") }
  }

  func run() throws {
    let log = Log(component: "pbp-notifyd", minimumLevel: verbose ? .debug : .info)
    if channel != nil {
      log.warning("--channel is ignored: the channel is the database's secret, read with pbp_stream_channel()")
    }
    let settings = ChangeStreamServer.Settings(
      socketPath: socket, socketMode: mode_t(socketMode, radix: 8)!, socketGroup: socketGroup,
      ringSize: ringSize, ringBytes: ringBytes, subscriberBufferLimit: subscriberBufferLimit)
    do {
      let server = try ChangeStreamServer(settings: settings, source: makeSource(log: log), log: log)
      server.run()
    } catch {
      log.error("cannot start: \(error)")
      throw ExitCode(1)
    }
  }

  private func makeSource(log: Log) -> any ChangeSource {
    switch source {
    case .notify:
      return ListenConnection(
        conninfo: PostgresConnection.withKeepalives(conninfo ?? "dbname=pbp user=pbp_notifyd"),
        livenessInterval: .seconds(livenessInterval), livenessTimeout: .seconds(livenessTimeout), log: log)
    case .wal:
      let settings = WALSource.Settings(
        conninfo: PostgresConnection.withKeepalives(conninfo ?? "dbname=pbp user=pbp_wal"), slot: slot,
        publication: publication, statusInterval: .seconds(statusInterval),
        livenessInterval: .seconds(livenessInterval), livenessTimeout: .seconds(livenessTimeout))
      return WALSource(settings: settings, log: log)
    }
  }
}
