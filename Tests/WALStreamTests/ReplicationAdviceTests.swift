import Testing
import WALStream

@Suite struct ReplicationAdviceTests {
  @Test func walLevelNotLogical() {
    let advice = ReplicationAdvice.advice(sqlState: "55000", message: "logical decoding requires wal_level >= logical")
    #expect(advice == "set wal_level = logical in postgresql.conf and restart PostgreSQL")
  }

  @Test func aRoleWithoutReplication() {
    // Refused at connect, so only libpq's text is known.
    let advice = ReplicationAdvice.advice(
      sqlState: nil,
      message:
        "connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL:  must be superuser or replication role to start walsender"
    )
    #expect(advice == "give notifyd's role the REPLICATION attribute: ALTER ROLE <role> REPLICATION")
  }

  @Test func aSlotThatAnotherReaderHolds() {
    let advice = ReplicationAdvice.advice(sqlState: "55006", message: "replication slot \"pbp\" is active for PID 4242")
    #expect(
      advice
        == "another reader (PID 4242) holds replication slot \"pbp\": stop it (a second pbp-notifyd?) or give this one a slot of its own"
    )
  }

  @Test func exhaustedSendersAndSlots() {
    #expect(
      ReplicationAdvice.advice(
        sqlState: "53300", message: "number of requested standby connections exceeds max_wal_senders (currently 10)")
        == "raise max_wal_senders in postgresql.conf (each replication connection takes one) and restart PostgreSQL")
    #expect(
      ReplicationAdvice.advice(sqlState: "53400", message: "all replication slots are in use")
        == "raise max_replication_slots in postgresql.conf, or drop unused slots (pg_replication_slots), and restart PostgreSQL"
    )
  }

  @Test func aMissingPublicationOrHBALineOrALostSlot() {
    #expect(
      ReplicationAdvice.advice(sqlState: "42704", message: "publication \"pbp_messages\" does not exist")
        == "create the publication (sql/50-wal-publication.sql), then drop and recreate the slot: a slot made before its publication never sees it"
    )
    #expect(
      ReplicationAdvice.advice(
        sqlState: nil,
        message: "FATAL:  no pg_hba.conf entry for replication connection from host \"[local]\", user \"x\"")
        == "allow the role's replication connections in pg_hba.conf (a line for the database, or `replication` for physical ones) and reload PostgreSQL"
    )
    #expect(
      ReplicationAdvice.advice(
        sqlState: "55000", message: "can no longer get changes from replication slot \"pbp\"")
        == "the slot lost WAL it needed (max_slot_wal_keep_size): drop it and let notifyd create it again (clients reset once)"
    )
  }

  @Test func anythingElseHasNoAdvice() {
    #expect(ReplicationAdvice.advice(sqlState: "23505", message: "duplicate key") == nil)
    #expect(ReplicationAdvice.advice(sqlState: nil, message: "") == nil)
  }
}
