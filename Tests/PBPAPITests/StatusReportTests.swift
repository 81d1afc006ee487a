import ChangeStream
import JSON
import Testing
import WorkerPool

@testable import PBPAPI

@Suite struct StatusReportTests {
  let workers = [
    WorkerStatus(pid: 7, parkedPolls: 3, epoch: 0xAB, positionMajor: 26_649_424, positionMinor: 2)
  ]
  let slots = [
    ReplicationSlotStatus(
      name: "pbp", active: true, walStatus: "reserved", lagBytes: 120, retainedBytes: 4096, safeWALBytes: 1_000_000),
    ReplicationSlotStatus(name: "host\"b", active: false, walStatus: nil, lagBytes: nil, retainedBytes: 8192),
  ]

  @Test func theStatusShowsEachWorkersWalCursorAndEverySlot() throws {
    let report = StatusReport(workers: workers, current: Cursor(epoch: 0xAB, seq: 9), slots: slots)
    let body = try JSONParser.parse(Array(report.json().body))
    guard case .array(let listed)? = body["workers"] else {
      Issue.record("no workers in \(body)")
      return
    }
    #expect(listed.first?["cursor"] == .string("00000000000000ab:26649424.2"))
    #expect(
      body["replication_slots"]
        == [
          [
            "name": "pbp", "active": true, "wal_status": "reserved", "lag_bytes": 120, "retained_bytes": 4096,
            "safe_wal_bytes": 1_000_000,
          ],
          [
            "name": "host\"b", "active": false, "wal_status": .null, "lag_bytes": .null, "retained_bytes": 8192,
            "safe_wal_bytes": .null,
          ],
        ])
    let unknown = StatusReport(workers: workers, current: nil, slots: nil)
    #expect(try JSONParser.parse(Array(unknown.json().body))["replication_slots"] == .null)
  }

  @Test func theMetricsLabelEachSlotAndSkipWhatIsUnknown() {
    let text = String(
      decoding: StatusReport(workers: workers, current: nil, slots: slots).prometheus().body, as: UTF8.self)
    #expect(text.contains("pbp_replication_slot_lag_bytes{slot=\"pbp\"} 120\n"))
    #expect(text.contains("pbp_replication_slot_active{slot=\"host\\\"b\"} 0\n"))
    #expect(!text.contains("pbp_replication_slot_lag_bytes{slot=\"host"), "no lag is known for it")
    #expect(text.contains("pbp_replication_slot_retained_bytes{slot=\"host\\\"b\"} 8192\n"))
    #expect(text.contains("pbp_replication_slot_safe_wal_bytes{slot=\"pbp\"} 1000000\n"))
    #expect(!text.contains("pbp_replication_slot_safe_wal_bytes{slot=\"host"), "no limit: nothing to say")
  }
}
