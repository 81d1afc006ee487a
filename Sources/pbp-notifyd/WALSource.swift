import ChangePublisher
import ChangeStream
import DaemonSupport
import Glibc
import PostgresClient
import WALStream

/// The wal source: a logical replication connection streaming the slot's
/// `pbp` messages (pgoutput, `messages 'true'`), read by a
/// ``WALStreamStateMachine``. Events are placed by their WAL position, so the
/// history goes on across reconnects and restarts: a reconnect re-reads from
/// the slot what the ring may still be asked for and drops what it holds;
/// only a slot that lost WAL starts the history over.
///
/// The slot is told flushed only what the ring no longer needs
/// (``ChangePublisher/ChangeHistory/walConfirmable``), so a notifyd started
/// afresh re-reads the ring's window; it greets stream clients only once it
/// has read up to where the server's WAL stood when it connected.
final class WALSource: ChangeSource {
  struct Settings {
    var conninfo: String
    var slot: String
    var publication: String
    var statusInterval: Duration
    var livenessInterval: Duration
    var livenessTimeout: Duration
  }

  private let settings: Settings
  private let log: Log
  private var connection: ReplicationConnection?
  private var machine: WALStreamStateMachine?
  private var link: DatabaseLinkStateMachine
  /// How far the previous connection had delivered every transaction.
  private var deliveredThrough: LSN?
  /// Before the history is first served: the server's WAL position when the
  /// first connection was made, which the stream must reach.
  private var catchUpTarget: LSN?
  private var pendingWrite = false
  /// The last advice logged, so that a retry loop logs it once.
  private var lastAdvice: String?

  init(settings: Settings, log: Log) {
    self.settings = settings
    self.log = log
    self.link = DatabaseLinkStateMachine(
      livenessInterval: settings.livenessInterval, livenessTimeout: settings.livenessTimeout)
  }

  var socket: Int32 { connection?.socketDescriptor ?? -1 }

  var wantsToWrite: Bool { pendingWrite }

  var nextDeadline: Duration {
    guard let machine else { return link.nextDeadline }
    return min(link.nextDeadline, machine.nextStatusDeadline)
  }

  var statusDetail: String? {
    guard let machine else { return "slot \(settings.slot): not streaming" }
    let behind = machine.receivedThrough.rawValue &- min(machine.receivedThrough, machine.confirmedFlush).rawValue
    let catchingUp = catchUpTarget.map { "; reading the slot's backlog up to \($0)" } ?? ""
    return
      "slot \(settings.slot): confirmed \(machine.confirmedFlush), \(MebibyteText.format(Int(clamping: behind))) MiB behind the WAL"
      + catchingUp
  }

  func tick(history: inout ChangeHistory) -> SourceChange {
    let now = MonotonicClock.now()
    switch link.tick(now: now) {
    case .none:
      break
    case .connect:
      return connect(history: &history)
    case .sendProbe:
      // A status update asking for a reply: the walsender answers with a keepalive.
      if let failure = sendStatus(history: history, force: true, replyRequested: true) { return .lost(reason: failure) }
      return .none
    case .declareLost:
      drop()
      return .lost(reason: "no answer from the walsender within \(link.livenessTimeout)")
    }
    if let failure = sendStatus(history: history, force: false) { return .lost(reason: failure) }
    return .none
  }

  func readAvailable(into history: inout ChangeHistory) -> SourceArrivals {
    var arrivals = SourceArrivals()
    guard let connection, var machine else { return arrivals }
    if pendingWrite {
      do { pendingWrite = !(try connection.flush()) } catch {
        return lost(arrivals, "\(error)")
      }
    }
    reading: while true {
      switch connection.readCopyData() {
      case .wouldBlock:
        break reading
      case .ended(let error):
        self.machine = machine
        return lost(arrivals, error.map { describe($0) } ?? "the server ended the replication stream")
      case .data(let bytes):
        let now = MonotonicClock.now()
        link.inputReceived(now: now)
        link.probeAnswered()
        do {
          let message: ReplicationMessage
          do { message = try ReplicationMessage.decode(bytes[...]) } catch { throw WALStreamError.malformed(error) }
          guard let event = try machine.received(message, now: now) else { continue }
          let position = StreamPosition(event.position)
          // Re-sent after a reconnect: the history has it already.
          guard position > history.ring.newestPosition else { continue }
          // Never from PBP's triggers, which send a row this large as its key:
          // a frame the workers cannot take would stop their stream for good.
          guard event.content.count <= StreamFrame.maximumEventPayload else {
            log.error(
              "dropped the event at \(position): \(event.content.count) bytes, more than a frame carries;"
                + " PBP's triggers send such a row as its key only (sql/01-pbp.sql)")
            continue
          }
          arrivals.events.append(history.append(payload: event.content, at: position))
        } catch {
          self.machine = machine
          return lost(arrivals, "\(error)")
        }
      }
    }
    self.machine = machine
    deliveredThrough = machine.deliveredThrough
    if let target = catchUpTarget, machine.deliveredThrough >= target {
      catchUpTarget = nil
      history.startServing()
      arrivals.startedServing = true
      log.info("read the slot's backlog up to \(machine.deliveredThrough); \(history.ring.usage)")
    }
    if let failure = sendStatus(history: history, force: false) { return lost(arrivals, failure) }
    return arrivals
  }

  func close(history: ChangeHistory) {
    guard let connection else { return }
    // The last confirmation, then a clean end, so that the slot keeps it.
    _ = sendStatus(history: history, force: true)
    let deadline = MonotonicClock.now() + .seconds(2)
    do {
      try connection.endStreaming()
      ending: while MonotonicClock.now() < deadline {
        switch connection.readCopyData() {
        case .data: continue
        case .ended: break ending
        case .wouldBlock:
          var entry = pollfd(fd: connection.socketDescriptor, events: Int16(POLLIN), revents: 0)
          _ = poll(&entry, 1, Int32(clamping: max((deadline - MonotonicClock.now()).milliseconds, 0)))
        }
      }
    } catch {
      log.warning("ending the replication stream: \(error)")
    }
    self.connection = nil
    machine = nil
  }

  // MARK: Connecting

  private func connect(history: inout ChangeHistory) -> SourceChange {
    do throws(PostgresError) {
      let connection = try ReplicationConnection(conninfo: settings.conninfo)
      let identity = try connection.identifySystem()
      warnIfTheTriggersSendElsewhere(connection)
      let slotStart = try prepareSlot(on: connection)
      let epoch = WALEpoch.of(systemIdentifier: identity.systemIdentifier, timeline: identity.timeline)
      let join = WALStreamJoin.decide(
        history: history, epoch: epoch, slotStart: slotStart, deliveredThrough: deliveredThrough)
      try connection.startReplication(slot: settings.slot, publication: settings.publication)
      let now = MonotonicClock.now()
      machine = WALStreamStateMachine(
        startingAt: slotStart, alreadyStamped: nil, statusInterval: settings.statusInterval, now: now)
      self.connection = connection
      deliveredThrough = slotStart
      link.connectSucceeded(now: now)
      lastAdvice = nil
      switch join {
      case .continues:
        log.info("streaming slot \(settings.slot) from \(slotStart) again; the history goes on")
        return .continued
      case .startsOver(let epoch, let position, let reason):
        if reason != .firstStart { log.warning("the history starts over: \(reason)") }
        let current = history.startEpoch(epoch, at: position, serving: history.isServing)
        if !history.isServing {
          if slotStart >= identity.xlogPosition {
            history.startServing()
          } else {
            catchUpTarget = identity.xlogPosition
          }
        }
        return .startedOver(
          reason: "streaming slot \(settings.slot) from \(slotStart) (\(reason)); epoch \(current)"
            + (catchUpTarget.map { ", reading the backlog up to \($0)" } ?? ""))
      }
    } catch {
      var random = SystemRandomNumberGenerator()
      let wait = link.connectFailed(now: MonotonicClock.now(), random: &random)
      let advice = error.replicationAdvice
      if advice != lastAdvice, let advice {
        log.error("replication slot \(settings.slot): \(error). To fix: \(advice)")
      } else {
        log.warning("replication slot \(settings.slot): \(error); retrying in \(wait.milliseconds) ms")
      }
      lastAdvice = advice
      return .none
    }
  }

  /// The slot's confirmed position, after making the slot if it is missing
  /// or making it again if it lost WAL it needed (clients then reset once).
  private func prepareSlot(on connection: ReplicationConnection) throws(PostgresError) -> LSN {
    var state = try connection.slotState(settings.slot)
    if state?.walStatus == "lost" {
      log.warning("replication slot \(settings.slot) lost WAL it needed (max_slot_wal_keep_size); making it again")
      try connection.dropSlot(settings.slot)
      state = nil
    }
    if state == nil {
      if case .created(let point) = try connection.createSlot(settings.slot) {
        log.info("created replication slot \(settings.slot) at \(point)")
      }
      state = try connection.slotState(settings.slot)
    }
    guard let state, let confirmed = state.confirmedFlush else {
      throw .server(
        sqlState: "42704", message: "replication slot \"\(settings.slot)\" has no confirmed position", detail: nil)
    }
    if let plugin = state.plugin, plugin != "pgoutput" {
      throw .server(
        sqlState: "55000", message: "replication slot \"\(settings.slot)\" decodes with \(plugin), not pgoutput",
        detail: nil)
    }
    return confirmed
  }

  /// The triggers emit to the WAL only once the database is switched to
  /// it; say so rather than stream nothing in silence.
  private func warnIfTheTriggersSendElsewhere(_ connection: ReplicationConnection) {
    do throws(PostgresError) {
      let source = try connection.scalar("select pbp_change_source()")
      if source != "wal" {
        log.warning(
          "the database's triggers send to \(source ?? "nothing") , not to the WAL:"
            + " run `select pbp_set_change_source('wal')` as PBP's owner")
      }
    } catch {
      log.warning("cannot ask the database for its change source: \(error)")
    }
  }

  // MARK: Status updates

  /// Sends the status update due now (or now whatever the schedule, when
  /// `force`); returns why the connection failed, if it did.
  private func sendStatus(history: ChangeHistory, force: Bool, replyRequested: Bool = false) -> String? {
    guard let connection, var machine else { return nil }
    let now = MonotonicClock.now()
    let update: StandbyStatusUpdate?
    if force {
      var final = machine.finalStatusUpdate(
        confirmable: history.walConfirmable, clock: PostgresTimestamp.now(), now: now)
      final.replyRequested = replyRequested
      update = final
    } else {
      update = machine.statusUpdate(confirmable: history.walConfirmable, clock: PostgresTimestamp.now(), now: now)
    }
    self.machine = machine
    guard let update else { return nil }
    do {
      pendingWrite = !(try connection.send(update))
      return nil
    } catch {
      drop()
      return describe(error)
    }
  }

  private func lost(_ arrivals: SourceArrivals, _ reason: String) -> SourceArrivals {
    var arrivals = arrivals
    drop()
    arrivals.lostBecause = reason
    return arrivals
  }

  private func drop() {
    if let machine { deliveredThrough = machine.deliveredThrough }
    connection = nil
    machine = nil
    pendingWrite = false
    link.connectionLost(now: MonotonicClock.now())
  }

  private func describe(_ error: PostgresError) -> String {
    error.replicationAdvice.map { "\(error). To fix: \($0)" } ?? "\(error)"
  }
}
