"""The wal source's foundation against a real PostgreSQL 15 with
wal_level=logical: pbp-wal-dump reads a logical replication slot through
PostgresClient's ReplicationConnection and WALStream's state machine, the way
pbp-notifyd's wal source will, and prints what it sees as JSON lines.

Only PostgreSQL runs here (no notifyd, workers or nginx): these tests prove
the reading of the slot (order, positions, rollbacks, size, restart and
dedupe, the slot's advance while idle) and the errors an operator must fix."""

from __future__ import annotations

import subprocess
import time

import pytest

from conftest import wait_for
from wal_dump import create_slot as create_slot_as, dump as dump_as, dump_command as dump_command_as, parse, \
    postgres_only

READER = "pbp_wal_reader"


@pytest.fixture(scope="module")
def pg():
    with postgres_only("wal", "logical") as stack:
        stack.psql(f"create role {READER} login replication; grant connect on database pbp to {READER};"
                   "create table wal_noise (a int); create table wal_gate (a int)")
        yield stack


def dump_command(stack, slot: str, *options: str, user: str = READER) -> list[str]:
    return dump_command_as(stack, slot, *options, user=user)


def dump(stack, slot: str, *options: str, user: str = READER, expect_failure: bool = False) -> dict[str, list]:
    return dump_as(stack, slot, *options, user=user, expect_failure=expect_failure)


def create_slot(stack, slot: str) -> str:
    return create_slot_as(stack, slot, READER)


def emit(stack, content: str, transactional: bool = True, prefix: str = "pbp") -> str:
    """One message in a transaction of its own; the LSN pg_logical_emit_message returned."""
    literal = content.replace("'", "''")
    return stack.psql(f"select pg_logical_emit_message({str(transactional).lower()}, '{prefix}', '{literal}')").strip()


def lsn(text: str) -> int:
    high, low = text.split("/")
    return int(high, 16) << 32 | int(low, 16)


def slot_row(stack, slot: str) -> tuple[str, bool]:
    confirmed, active = stack.psql(
        f"select confirmed_flush_lsn, active from pg_replication_slots where slot_name = '{slot}'").strip().split("|")
    return confirmed, active == "t"


def released(stack, slot: str) -> str:
    """The slot's confirmed position once no reader holds it."""
    return wait_for(lambda: (lambda row: None if row[1] else row[0])(slot_row(stack, slot)), 30,
                    f"slot {slot} to be released")


def test_committed_messages_arrive_whole_in_commit_order_with_their_positions_and_rolled_back_ones_never(pg):
    create_slot(pg, "order")
    # A writes A1, then waits inside its transaction until B has committed;
    # B writes B1 after A1 but commits first, so B1 must come first.
    first = subprocess.Popen(
        ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", """
        do $$ begin
          perform pg_logical_emit_message(true, 'pbp', 'A1');
          while not exists (select from wal_gate) loop perform pg_sleep(0.02); end loop;
          perform pg_logical_emit_message(true, 'pbp', 'A2');
        end $$"""], env=pg.pg_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: pg.psql("select count(*) from pg_stat_activity where query like '%A1%' and backend_xid is not null"
                             " and pid <> pg_backend_pid()").strip() == "1", 30, "A to have written A1")
    b1 = pg.psql("begin; insert into wal_gate values (1); "
                 "select pg_logical_emit_message(true, 'pbp', 'B1'); commit").strip()
    assert first.wait(timeout=30) == 0, first.stderr.read()
    pg.psql("begin; select pg_logical_emit_message(true, 'pbp', 'rolled back'); rollback")
    emit(pg, "not transactional", transactional=False)
    emit(pg, "another prefix", prefix="pbpx")
    big = pg.psql("select pg_logical_emit_message(true, 'pbp', repeat('x', 1048576))").strip()
    last = emit(pg, "Z")

    events = dump(pg, "order", "--count", "5")["event"]
    assert [e["content"][:2] for e in events] == ["B1", "A1", "A2", "xx", "Z"]
    by_content = {e["content"][:2]: e for e in events}
    assert by_content["B1"]["message_lsn"] == b1, "the message's LSN is what pg_logical_emit_message returned"
    assert lsn(by_content["A1"]["message_lsn"]) < lsn(b1), "A1 was written before B1, and comes after it"
    assert by_content["B1"]["index"] == 0 and (by_content["A1"]["index"], by_content["A2"]["index"]) == (0, 1)
    assert by_content["A1"]["commit_lsn"] == by_content["A2"]["commit_lsn"]
    commits = [lsn(e["commit_lsn"]) for e in events]
    assert commits == sorted(commits) and len(set(commits)) == 4, "one commit LSN per transaction, ascending"
    for event in events:
        assert lsn(event["message_lsn"]) <= lsn(event["commit_lsn"])
    assert by_content["xx"]["size"] == 1 << 20 and by_content["xx"]["content"] == "x" * (1 << 20)
    assert by_content["xx"]["message_lsn"] == big and by_content["Z"]["message_lsn"] == last


def test_a_restarted_reader_resumes_at_the_confirmed_position_and_drops_what_it_stamped(pg):
    create_slot(pg, "restart")
    for number in range(1, 6):
        emit(pg, f"e{number}")
    # A ring that keeps its 2 newest events: the slot is confirmed up to e4's commit.
    first = dump(pg, "restart", "--count", "5", "--ring-keep", "2")
    events = first["event"]
    assert [e["content"] for e in events] == ["e1", "e2", "e3", "e4", "e5"]
    assert first["end"][0]["confirmed_flush"] == events[3]["commit_lsn"]
    assert released(pg, "restart") == events[3]["commit_lsn"], "the slot keeps what the reader confirmed"

    # Without a memory of what was stamped, the slot sends e4 and e5 again
    # (at least once): the transaction at the confirmed position comes again.
    again = dump(pg, "restart", "--count", "2", "--ring-keep", "2", "--seconds", "10")["event"]
    assert [(e["content"], e["commit_lsn"], e["index"]) for e in again] == \
        [(e["content"], e["commit_lsn"], e["index"]) for e in events[3:]], "the same events at the same positions"
    released(pg, "restart")

    emit(pg, "e6")
    stamped = f"{events[4]['commit_lsn']}:{events[4]['index']}"
    resumed = dump(pg, "restart", "--count", "1", "--already-stamped", stamped, "--seconds", "10")
    assert [e["content"] for e in resumed["event"]] == ["e6"]
    assert resumed["end"][0]["duplicates_skipped"] == 2


def test_keepalives_let_the_slot_advance_while_the_watched_tables_are_idle(pg):
    create_slot(pg, "idle")
    emit(pg, "the last event")
    reader = subprocess.Popen(dump_command(pg, "idle", "--seconds", "6", "--status-interval", "0.5"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    # WAL moves on, but nothing the stream carries: only keepalives tell the reader.
    noise = pg.psql("begin; insert into wal_noise select generate_series(1, 1000);"
                    " select pg_current_wal_insert_lsn(); commit").strip()
    output, errors = reader.communicate(timeout=60)
    assert reader.returncode == 0, errors
    lines = parse(output)
    [event] = lines["event"]
    confirmed = released(pg, "idle")
    assert lsn(confirmed) > lsn(noise) > lsn(event["commit_lsn"]), \
        f"the slot stayed at {confirmed}, behind the idle WAL at {noise}"
    assert len(lines["status"]) >= 3, "status updates went out on their schedule"


def advice_of(lines) -> str:
    [failure] = lines["error"]
    return failure["advice"]


def test_a_second_reader_on_an_active_slot_is_told_who_holds_it(pg):
    create_slot(pg, "busy")
    holder = subprocess.Popen(dump_command(pg, "busy", "--seconds", "8"), stdout=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: slot_row(pg, "busy")[1], 30, "the first reader to hold the slot")
        second = dump(pg, "busy", "--seconds", "1", expect_failure=True)
        [failure] = second["error"]
        assert "is active for PID" in failure["error"]
        assert advice_of(second).startswith("another reader (PID ")
        assert "holds replication slot \"busy\"" in advice_of(second)
    finally:
        holder.wait(timeout=60)


def test_a_role_without_replication_is_told_to_get_it(pg):
    pg.psql("create role pbp_wal_plain login; grant connect on database pbp to pbp_wal_plain")
    lines = dump(pg, "any", "--create-slot", user="pbp_wal_plain", expect_failure=True)
    assert "must be superuser or replication role" in lines["error"][0]["error"]
    assert advice_of(lines) == "give notifyd's role the REPLICATION attribute: ALTER ROLE <role> REPLICATION"


def test_a_cluster_without_logical_wal_is_told_to_set_it():
    with postgres_only("wal-replica", None) as stack:
        lines = dump(stack, "any", "--create-slot", user="postgres", expect_failure=True)
    assert "wal_level" in lines["error"][0]["error"]
    assert advice_of(lines) == "set wal_level = logical in postgresql.conf and restart PostgreSQL"
