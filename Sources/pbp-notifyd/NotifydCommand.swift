import ArgumentParser
import DaemonSupport
import Glibc

@main
struct NotifydCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "pbp-notifyd",
    abstract:
      "Holds the one PostgreSQL LISTEN connection and streams every change, stamped with a cursor, to the workers.",
    discussion: """
      Subscribers (pbp-fcgi worker processes) connect to the unix socket, say the
      cursor they already have, and receive the events after it from the ring,
      then live. A cursor from another epoch, or older than the ring, is answered
      with a reset. See docs/notifyd-protocol.md.
      """)

  @Option(help: "libpq connection string of the LISTEN connection (as the pbp_notifyd role).")
  var conninfo: String = "dbname=pbp user=pbp_notifyd"

  @Option(help: "Unix socket that subscribers connect to.")
  var socket: String = "/run/pbp/notifyd.sock"

  @Option(help: "File mode of the socket, in octal.")
  var socketMode: String = "0660"

  @Option(help: "The NOTIFY channel the database triggers send on.")
  var channel: String = "pbp"

  @Option(help: "How many recent events to keep for subscribers that reconnect.")
  var ringSize: Int = 1_048_576

  @Option(help: "Bytes a subscriber may fall behind before it is cut off.")
  var subscriberBufferLimit: Int = 64 * 1024 * 1024

  @Flag(help: "Log every event and subscriber.")
  var verbose = false

  func validate() throws {
    guard ringSize > 0 else { throw ValidationError("--ring-size must be positive") }
    guard mode_t(socketMode, radix: 8) != nil else { throw ValidationError("--socket-mode must be octal, like 0660") }
    guard !channel.isEmpty else { throw ValidationError("--channel must not be empty") }
  }

  func run() throws {
    let log = Log(component: "pbp-notifyd", minimumLevel: verbose ? .debug : .info)
    let settings = ChangeStreamServer.Settings(
      conninfo: conninfo, socketPath: socket, socketMode: mode_t(socketMode, radix: 8)!,
      channel: channel, ringSize: ringSize, subscriberBufferLimit: subscriberBufferLimit)
    do {
      let server = try ChangeStreamServer(settings: settings, log: log)
      server.run()
    } catch {
      log.error("cannot start: \(error)")
      throw ExitCode(1)
    }
  }
}
