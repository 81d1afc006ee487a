import PostgresClient

/// A logical replication slot of the database as the operators' status
/// shows it: each host's pbp-notifyd --source wal reads one, and a slot no
/// reader comes back to keeps WAL until max_slot_wal_keep_size gives up on
/// it, so every host reports them all (docs/deploy.md says how to retire one).
struct ReplicationSlotStatus: Equatable {
  var name: String
  var active: Bool
  /// reserved, extended, unreserved or lost.
  var walStatus: String?
  /// Bytes of WAL written since what the slot's reader confirmed.
  var lagBytes: Int64?
  /// Bytes of WAL the slot keeps from being removed.
  var retainedBytes: Int64?
  /// Bytes of WAL that may still be written before PostgreSQL invalidates
  /// the slot (`max_slot_wal_keep_size`); nil without that limit. For the
  /// slot of a host gone for good: how long it has before it is lost.
  var safeWALBytes: Int64? = nil

  static let query = """
    select slot_name::text, active::text, wal_status,
      pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint::text,
      pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint::text, safe_wal_size::text
    from pg_replication_slots
    where slot_type = 'logical' and database = current_database()
    order by slot_name
    """

  /// The slots, or nil when the database cannot say (it is down, or a
  /// standby, where pg_current_wal_lsn() fails): the status page answers anyway.
  static func read(_ session: DatabaseSession) -> [ReplicationSlotStatus]? {
    do {
      let result = try session.run(readOnly: true) { connection in try connection.execute(query) }
      return result.rows.map { row in
        ReplicationSlotStatus(
          name: row[0] ?? "", active: row[1] == "true", walStatus: row[2], lagBytes: row[3].flatMap { Int64($0) },
          retainedBytes: row[4].flatMap { Int64($0) }, safeWALBytes: row[5].flatMap { Int64($0) })
      }
    } catch {
      return nil
    }
  }
}
