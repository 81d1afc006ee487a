import ChangePublisher
import ChangeStream
import DaemonSupport
import PostgresClient

/// The notify source: the one LISTEN connection to PostgreSQL, kept up as its
/// ``DatabaseLinkStateMachine`` says: notifications on the channel go into
/// the history, and every connection starts a new epoch (what was sent while
/// none was in place is lost). Nothing here blocks but the (re)connect, which
/// is bounded by the conninfo's connect_timeout.
///
/// The channel is the database's secret (sql/01-pbp.sql): asked for on every
/// connect with `pbp_stream_channel()`, which only notifyd's role may call,
/// so that the triggers and notifyd never disagree and nobody else can send
/// on it. It is never logged.
final class ListenConnection: ChangeSource {
  private let conninfo: String
  /// The channel of the current connection; nil while disconnected.
  private var channel: String?
  private let log: Log
  private var connection: PostgresConnection?
  private var link: DatabaseLinkStateMachine

  init(conninfo: String, livenessInterval: Duration, livenessTimeout: Duration, log: Log) {
    self.conninfo = conninfo
    self.log = log
    self.link = DatabaseLinkStateMachine(livenessInterval: livenessInterval, livenessTimeout: livenessTimeout)
  }

  /// The socket to poll for input; -1 (which poll(2) skips) while disconnected.
  var socket: Int32 { connection?.socket ?? -1 }

  var wantsToWrite: Bool { false }

  var nextDeadline: Duration { link.nextDeadline }

  var statusDetail: String? { nil }

  /// Connects, probes or gives up on the connection, as the link's state has it due now.
  func tick(history: inout ChangeHistory) -> SourceChange {
    switch link.tick(now: MonotonicClock.now()) {
    case .none:
      return .none
    case .connect:
      guard connect() else { return .none }
      let current = history.startEpoch(Cursor.newEpoch())
      return .startedOver(reason: "LISTEN in place; epoch \(current)")
    case .sendProbe:
      do {
        try connection?.send("SELECT 1")
        return .none
      } catch {
        disconnect()
        return .lost(reason: "\(error)")
      }
    case .declareLost:
      // The machine already counts the connection as lost.
      connection = nil
      return .lost(reason: "no answer to a liveness probe within \(link.livenessTimeout)")
    }
  }

  /// Reads what the server sent; notifications on the channel are appended to `history`.
  func readAvailable(into history: inout ChangeHistory) -> SourceArrivals {
    guard let connection else { return SourceArrivals() }
    var arrivals = SourceArrivals()
    do {
      try connection.consumeInput()
      link.inputReceived(now: MonotonicClock.now())
      if connection.collectResults() { link.probeAnswered() }
      while let notification = connection.nextNotification() {
        guard notification.channel == channel else { continue }
        arrivals.events.append(history.append(payload: notification.payload))
      }
      if !connection.isHealthy { throw PostgresError.connectionLost("connection status is bad") }
    } catch {
      disconnect()
      arrivals.lostBecause = "\(error)"
    }
    return arrivals
  }

  func close(history: ChangeHistory) {
    connection = nil
    channel = nil
  }

  private func connect() -> Bool {
    do {
      let connection = try PostgresConnection(conninfo: conninfo)
      guard let channel = try connection.execute("select pbp_stream_channel()").scalar, !channel.isEmpty else {
        throw PostgresError.server(
          sqlState: "P0002", message: "pbp_stream_channel() names no channel: apply sql/ to the database",
          detail: nil)
      }
      try connection.executeSimple("LISTEN " + PostgresConnection.quoteIdentifier(channel))
      if try connection.execute("select pbp_change_source()").scalar == "wal" {
        log.warning(
          "the database's triggers send to the WAL, not to this LISTEN: start pbp-notifyd with --source wal,"
            + " or run `select pbp_set_change_source('notify')` as PBP's owner")
      }
      self.channel = channel
      self.connection = connection
      link.connectSucceeded(now: MonotonicClock.now())
      return true
    } catch {
      var random = SystemRandomNumberGenerator()
      let wait = link.connectFailed(now: MonotonicClock.now(), random: &random)
      log.warning("\(error); retrying in \(wait.milliseconds) ms")
      return false
    }
  }

  private func disconnect() {
    connection = nil
    channel = nil
    link.connectionLost(now: MonotonicClock.now())
  }
}
