import ChangePublisher
import DaemonSupport
import PostgresClient

/// The one LISTEN connection to PostgreSQL, kept up as its
/// ``DatabaseLinkStateMachine`` says: notifications on the channel go into
/// the history. Nothing here blocks but the (re)connect, which is bounded by
/// the conninfo's connect_timeout.
///
/// The channel is the database's secret (sql/01-pbp.sql): asked for on every
/// connect with `pbp_stream_channel()`, which only notifyd's role may call,
/// so that the triggers and notifyd never disagree and nobody else can send
/// on it. It is never logged.
final class ListenConnection {
  /// What the server must act on after a tick.
  enum Change {
    case none
    /// LISTEN is in place: a new epoch starts.
    case connected
    /// The connection is gone: the epoch ends.
    case lost(reason: String)
  }

  /// What one read brought: the events appended to the history, and whether
  /// the connection broke after them.
  struct Arrivals {
    var events: [StoredEvent] = []
    var lostBecause: String?
  }

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

  /// The latest time the loop may sleep until before calling ``tick()``.
  var nextDeadline: Duration { link.nextDeadline }

  /// Connects, probes or gives up on the connection, as the link's state has it due now.
  func tick() -> Change {
    switch link.tick(now: MonotonicClock.now()) {
    case .none:
      return .none
    case .connect:
      return connect()
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
  func readNotifications(into history: inout ChangeHistory) -> Arrivals {
    guard let connection else { return Arrivals() }
    var arrivals = Arrivals()
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

  func close() {
    connection = nil
    channel = nil
  }

  private func connect() -> Change {
    do {
      let connection = try PostgresConnection(conninfo: conninfo)
      guard let channel = try connection.execute("select pbp_stream_channel()").scalar, !channel.isEmpty else {
        throw PostgresError.server(
          sqlState: "P0002", message: "pbp_stream_channel() names no channel: apply sql/ to the database",
          detail: nil)
      }
      try connection.executeSimple("LISTEN " + PostgresConnection.quoteIdentifier(channel))
      self.channel = channel
      self.connection = connection
      link.connectSucceeded(now: MonotonicClock.now())
      return .connected
    } catch {
      var random = SystemRandomNumberGenerator()
      let wait = link.connectFailed(now: MonotonicClock.now(), random: &random)
      log.warning("\(error); retrying in \(wait.milliseconds) ms")
      return .none
    }
  }

  private func disconnect() {
    connection = nil
    channel = nil
    link.connectionLost(now: MonotonicClock.now())
  }
}
