import ChangeStream
import JSON
import WorkerPool

/// The pool's state for operators, as JSON (`/api/_status`, like php-fpm's
/// status page) and as Prometheus text (`/api/_metrics`).
struct StatusReport {
  let workers: [WorkerStatus]
  let current: Cursor?
  /// The database's logical replication slots; nil when it could not say.
  let slots: [ReplicationSlotStatus]?

  private var totals: WorkerStatus {
    workers.reduce(
      into: WorkerStatus(
        pid: 0, busyThreads: 0, parkedPolls: 0, eventsDelivered: 0, requestsServed: 0, databaseConnections: 0, epoch: 0)
    ) {
      $0.busyThreads += $1.busyThreads
      $0.parkedPolls += $1.parkedPolls
      $0.eventsDelivered += $1.eventsDelivered
      $0.requestsServed += $1.requestsServed
      $0.databaseConnections += $1.databaseConnections
      $0.ringEvents += $1.ringEvents
      $0.ringBytes += $1.ringBytes
      $0.payloadsRefused += $1.payloadsRefused
    }
  }

  func json() -> HTTPResponse {
    func fields(_ status: WorkerStatus) -> String {
      "\"busy_threads\":\(status.busyThreads),\"parked_polls\":\(status.parkedPolls),"
        + "\"events_delivered\":\(status.eventsDelivered),\"requests\":\(status.requestsServed),"
        + "\"database_connections\":\(status.databaseConnections),\"ring_events\":\(status.ringEvents),"
        + "\"ring_bytes\":\(status.ringBytes),\"payloads_refused\":\(status.payloadsRefused)"
    }
    let workerList = workers.map { worker in
      "{\"pid\":\(worker.pid),\(fields(worker)),\"cursor\":\(cursorJSON(worker))}"
    }
    let body =
      "{\"workers\":[\(workerList.joined(separator: ","))],\"totals\":{\"workers\":\(workers.count),\(fields(totals))},"
      + "\"notifyd\":{\"cursor\":\(current.map { "\"\($0)\"" } ?? "null")},"
      + "\"replication_slots\":\(slotsJSON)}"
    return .json(200, body)
  }

  private var slotsJSON: String {
    guard let slots else { return "null" }
    func number(_ value: Int64?) -> String { value.map(String.init) ?? "null" }
    let items = slots.map { slot in
      "{\"name\":\(JSONWriter.serialize(.string(slot.name))),\"active\":\(slot.active),"
        + "\"wal_status\":\(slot.walStatus.map { JSONWriter.serialize(.string($0)) } ?? "null"),"
        + "\"lag_bytes\":\(number(slot.lagBytes)),\"retained_bytes\":\(number(slot.retainedBytes)),"
        + "\"safe_wal_bytes\":\(number(slot.safeWALBytes))}"
    }
    return "[" + items.joined(separator: ",") + "]"
  }

  private func cursorJSON(_ worker: WorkerStatus) -> String {
    guard worker.epoch != 0 else { return "null" }
    let position = StreamPosition(major: worker.positionMajor, minor: worker.positionMinor)
    return "\"\(Cursor(epoch: worker.epoch, position: position))\""
  }

  func prometheus() -> HTTPResponse {
    var text = ""
    func metric(_ name: String, _ type: String, _ help: String, _ value: (WorkerStatus) -> UInt64) {
      text += "# HELP pbp_\(name) \(help)\n# TYPE pbp_\(name) \(type)\n"
      for worker in workers { text += "pbp_\(name){pid=\"\(worker.pid)\"} \(value(worker))\n" }
    }
    text += "# HELP pbp_workers Worker processes in the pool.\n# TYPE pbp_workers gauge\npbp_workers \(workers.count)\n"
    metric("busy_threads", "gauge", "Accepting threads serving a request now.") { $0.busyThreads }
    metric("parked_polls", "gauge", "Long-polls waiting for a change.") { $0.parkedPolls }
    metric("events_delivered_total", "counter", "Events written to long-poll answers.") { $0.eventsDelivered }
    metric("requests_total", "counter", "Requests accepted.") { $0.requestsServed }
    metric("database_connections", "gauge", "Open PostgreSQL connections.") { $0.databaseConnections }
    metric("ring_events", "gauge", "Events in the worker's ring of recent changes.") { $0.ringEvents }
    metric("ring_bytes", "gauge", "Bytes the worker's ring of recent changes holds.") { $0.ringBytes }
    metric("payloads_refused_total", "counter", "Change payloads refused: PBP's triggers could not have sent them.") {
      $0.payloadsRefused
    }
    metric(
      "stream_seq", "gauge",
      "Newest position the worker has of the change stream (notify: its sequence number; wal: its commit LSN)."
    ) { $0.positionMajor }
    text += slotMetrics
    return HTTPResponse(
      status: 200, headers: [HeaderField(name: "Content-Type", value: "text/plain; version=0.0.4")],
      body: Array(text.utf8))
  }

  /// The slots' gauges, labelled by slot name (a Prometheus label value
  /// escapes backslash, quote and newline).
  private var slotMetrics: String {
    guard let slots, !slots.isEmpty else { return "" }
    func label(_ name: String) -> String {
      var escaped = ""
      for character in name {
        switch character {
        case "\\": escaped += "\\\\"
        case "\"": escaped += "\\\""
        case "\n": escaped += "\\n"
        default: escaped.append(character)
        }
      }
      return escaped
    }
    var text = ""
    func gauge(_ name: String, _ help: String, _ value: (ReplicationSlotStatus) -> Int64?) {
      text += "# HELP pbp_\(name) \(help)\n# TYPE pbp_\(name) gauge\n"
      for slot in slots {
        if let value = value(slot) { text += "pbp_\(name){slot=\"\(label(slot.name))\"} \(value)\n" }
      }
    }
    gauge("replication_slot_active", "1 while a reader streams from the logical replication slot.") {
      $0.active ? 1 : 0
    }
    gauge("replication_slot_lag_bytes", "WAL bytes written since what the slot's reader confirmed.") { $0.lagBytes }
    gauge("replication_slot_retained_bytes", "WAL bytes the slot keeps from being removed.") { $0.retainedBytes }
    gauge(
      "replication_slot_safe_wal_bytes",
      "WAL bytes that may be written before the slot is lost (max_slot_wal_keep_size)."
    ) { $0.safeWALBytes }
    return text
  }
}
