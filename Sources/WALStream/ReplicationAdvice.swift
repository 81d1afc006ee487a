/// What an operator must change when the replication connection fails for a
/// reason notifyd cannot fix by retrying: one line, from the SQLSTATE and the
/// server's message (a refusal at connect time has only libpq's text).
public enum ReplicationAdvice {
  public static func advice(sqlState: String?, message: String) -> String? {
    if message.contains("wal_level >= logical") || message.contains("wal_level must be set") {
      return "set wal_level = logical in postgresql.conf and restart PostgreSQL"
    }
    if message.contains("must be superuser or replication role")
      || message.contains("permission denied to start WAL sender")
      || message.contains("must be superuser or replication role to use replication slots")
    {
      return "give notifyd's role the REPLICATION attribute: ALTER ROLE <role> REPLICATION"
    }
    if sqlState == "55006" || (message.contains("replication slot") && message.contains("is active for PID")) {
      let pid = message.split(separator: " ").last.map(String.init) ?? "?"
      let slot = quoted(in: message) ?? "?"
      return
        "another reader (PID \(pid)) holds replication slot \"\(slot)\": stop it (a second pbp-notifyd?) or give this one a slot of its own"
    }
    if sqlState == "53300" || message.contains("exceeds max_wal_senders") {
      return "raise max_wal_senders in postgresql.conf (each replication connection takes one) and restart PostgreSQL"
    }
    if sqlState == "53400" || message.contains("all replication slots are in use") {
      return
        "raise max_replication_slots in postgresql.conf, or drop unused slots (pg_replication_slots), and restart PostgreSQL"
    }
    if message.hasPrefix("publication \"") && message.hasSuffix("does not exist") {
      return
        "create the publication (sql/50-wal-publication.sql), then drop and recreate the slot: a slot made before its publication never sees it"
    }
    if message.contains("no pg_hba.conf entry for replication connection") {
      return
        "allow the role's replication connections in pg_hba.conf (a line for the database, or `replication` for physical ones) and reload PostgreSQL"
    }
    if message.contains("can no longer get changes from replication slot") || message.contains("has been invalidated") {
      return
        "the slot lost WAL it needed (max_slot_wal_keep_size): drop it and let notifyd create it again (clients reset once)"
    }
    return nil
  }

  /// The first "…"-quoted name in a server message.
  private static func quoted(in message: String) -> String? {
    let parts = message.split(separator: "\"", omittingEmptySubsequences: false)
    return parts.count >= 3 ? String(parts[1]) : nil
  }
}
