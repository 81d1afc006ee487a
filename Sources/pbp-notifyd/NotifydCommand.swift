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
      "Holds the one PostgreSQL LISTEN connection and streams every change, stamped with a cursor, to the workers.",
    discussion: """
      Subscribers (pbp-fcgi worker processes) connect to the unix socket, say the
      cursor they already have, and receive the events after it from the ring,
      then live. A cursor from another epoch, or older than the ring, is answered
      with a reset. See docs/notifyd-protocol.md.

      The NOTIFY channel is the database's: a random name that only the
      triggers and this role (through pbp_stream_channel()) can read, asked
      for on every connect.
      """)

  @Option(help: "A file of `option = value` lines (long option names without dashes); flags override it.")
  var config: String?

  @Option(help: "libpq connection string of the LISTEN connection (as the pbp_notifyd role).")
  var conninfo: String = "dbname=pbp user=pbp_notifyd"

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
      conninfo: PostgresConnection.withKeepalives(conninfo), socketPath: socket,
      socketMode: mode_t(socketMode, radix: 8)!, socketGroup: socketGroup,
      ringSize: ringSize, ringBytes: ringBytes, subscriberBufferLimit: subscriberBufferLimit,
      livenessInterval: .seconds(livenessInterval), livenessTimeout: .seconds(livenessTimeout))
    do {
      let server = try ChangeStreamServer(settings: settings, log: log)
      server.run()
    } catch {
      log.error("cannot start: \(error)")
      throw ExitCode(1)
    }
  }
}
