"""The database's side of the wal change source (issue 16): the source as
data (pbp_set_change_source(), pbp_change_source()), the same triggers
emitting the same payloads as logical decoding messages, who may emit them,
and the replication role.

Only PostgreSQL runs here, with wal_level=logical: events are read from a
slot with pbp-wal-dump, as the replication role, and compared with what
LISTEN receives for the same statements in notify mode."""

from __future__ import annotations

import json
import re
import subprocess
import uuid

import pytest

from wal_dump import create_slot, dump, postgres_only

WAL_ROLE = "pbp_wal"
SLOT = "pbp_source_test"


def psql_as(stack, sql: str, user: str = "postgres") -> subprocess.CompletedProcess:
    """psql logged in as `user`, the script on stdin, stopping at the first error (not raised)."""
    env = stack.pg_env()
    env["PGUSER"] = user
    return subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", "pbp", "-f", "-"],
                          input=sql, env=env, capture_output=True, text=True, timeout=120)


def as_request(stack, role: str, sql: str) -> subprocess.CompletedProcess:
    """`sql` as pbp-fcgi runs a request: logged in as pbp_app, acting as `role`."""
    return psql_as(stack, f"begin;\nset local role {role};\n{sql.rstrip().rstrip(';')};\ncommit;\n", user="pbp_app")


@pytest.fixture(scope="module")
def pg():
    with postgres_only("wal-source", "logical") as stack:
        stack.psql("create role pbp_plain login; grant connect on database pbp to pbp_plain")
        # The slot exists before any event the tests read, as notifyd's would.
        create_slot(stack, SLOT, user=WAL_ROLE)
        yield stack


@pytest.fixture
def wal_mode(pg):
    pg.psql("select pbp_set_change_source('wal')")
    yield pg
    pg.psql("select pbp_set_change_source('notify')")


def listened(stack, sql: str) -> list[dict]:
    """The payloads on PBP's NOTIFY channel while `sql` runs, as the superuser."""
    channel = stack.psql("select pbp_stream_channel()").strip()
    result = psql_as(stack, f'listen "{channel}";\n{sql.rstrip().rstrip(";")};\nselect 1;\n')
    assert result.returncode == 0, result.stderr
    pattern = re.compile(r'^Asynchronous notification "[^"]+" with payload "(.*)" received from server process',
                         re.MULTILINE)
    return [json.loads(payload) for payload in pattern.findall(result.stdout)]


def from_the_slot(stack, sql: str, expected: int) -> list[dict]:
    """The pbp events the slot carries for `sql` (run as the superuser),
    `expected` of them: a marker emitted after `sql` must come right after
    them, so that an event too many or too few fails."""
    result = psql_as(stack, sql.rstrip().rstrip(";") + ";\n")
    assert result.returncode == 0, result.stderr
    marker = uuid.uuid4().hex
    stack.psql(f"""select pg_logical_emit_message(true, 'pbp', '{{"marker": "{marker}"}}')""")
    # The slot sends the transaction at its confirmed position again: what was read before is dropped.
    stamped = ["--already-stamped", stack.last_read] if getattr(stack, "last_read", None) else []
    lines = dump(stack, SLOT, "--count", str(expected + 1), "--seconds", "30", *stamped, user=WAL_ROLE)
    if lines.get("event"):
        stack.last_read = f"{lines['event'][-1]['commit_lsn']}:{lines['event'][-1]['index']}"
    events = [json.loads(event["content"]) for event in lines.get("event", [])]
    assert events and events[-1] == {"marker": marker}, f"not {expected} events then the marker: {events}"
    return events[:-1]


def without_mtimes(event: dict) -> dict:
    """An event without its stamps, which differ between two runs of the same statements."""
    event = dict(event)
    assert isinstance(event.pop("mtime"), str)
    for side in ("new", "old"):
        if isinstance(event.get(side), dict):
            event[side] = {name: value for name, value in event[side].items() if name != "mtime"}
    return event


# -- the source as data --------------------------------------------------------------


def test_the_source_is_notify_until_set_and_notifyd_s_roles_may_read_it(pg):
    for role in ("pbp_notifyd", WAL_ROLE):
        result = psql_as(pg, "select pbp_change_source()", user=role)
        assert (result.returncode, result.stdout.strip()) == (0, "notify"), result.stderr


def test_only_pbps_owner_may_set_the_source_and_only_to_a_known_one(pg):
    for role in ("pbp_notifyd", WAL_ROLE, "pbp_app", "pbp_plain"):
        result = psql_as(pg, "select pbp_set_change_source('wal')", user=role)
        assert result.returncode != 0 and "permission denied for function pbp_set_change_source" in result.stderr
    for value in ("'kafka'", "'WAL'", "null"):
        result = psql_as(pg, f"select pbp_set_change_source({value})")
        assert result.returncode != 0
        assert "pbp_set_change_source: the change source is 'notify' or 'wal', not" in result.stderr, result.stderr
    assert pg.psql("select pbp_change_source()").strip() == "notify"


def test_the_wal_source_needs_logical_wal():
    with postgres_only("wal-source-replica", None) as stack:
        result = psql_as(stack, "select pbp_set_change_source('wal')")
        assert result.returncode != 0
        assert ("pbp_set_change_source: the wal source needs wal_level = logical (it is replica): "
                "set it in postgresql.conf and restart PostgreSQL") in result.stderr, result.stderr
        assert stack.psql("select pbp_change_source()").strip() == "notify"


def test_migrating_again_keeps_the_source(wal_mode):
    wal_mode.prepare_database()
    assert wal_mode.psql("select pbp_change_source()").strip() == "wal"


# -- who may emit, who may read ------------------------------------------------------------


def test_only_pbps_triggers_may_emit_messages(pg):
    calls = ["select pg_logical_emit_message(true, 'pbp', '{}'::text)",
             "select pg_logical_emit_message(true, 'pbp', '\\x7b7d'::bytea)"]
    for call in calls:
        for role in ("pbp_plain", "pbp_notifyd", WAL_ROLE, "pbp_app"):
            result = psql_as(pg, call, user=role)
            assert result.returncode != 0, (role, call)
            assert "permission denied for function pg_logical_emit_message" in result.stderr, (role, result.stderr)
        for role in ("pbp_user", "pbp_anon"):
            result = as_request(pg, role, call)
            assert result.returncode != 0, (role, call)
            assert "permission denied for function pg_logical_emit_message" in result.stderr, (role, result.stderr)
    # Nor through PBP's own emit.
    result = as_request(pg, "pbp_user", "select pbp_private.emit_event('wal', 'x', '{}')")
    assert result.returncode != 0 and "permission denied for schema pbp_private" in result.stderr, result.stderr


def test_the_replication_role_reads_the_wal_and_nothing_else(pg):
    attributes = pg.psql("select rolcanlogin, rolreplication, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls"
                         f" from pg_roles where rolname = '{WAL_ROLE}'").strip()
    assert attributes == "t|t|f|f|f|f"
    # notifyd's notify role keeps no replication right.
    assert pg.psql("select rolreplication from pg_roles where rolname = 'pbp_notifyd'").strip() == "f"
    # It made the module's slot; it reads a slot of its own too, and SQL works on its replication connection.
    create_slot(pg, "pbp_source_role", user=WAL_ROLE)
    sql_over_replication = subprocess.run(
        ["psql", "-X", "-At", "-c", "select pbp_change_source()",
         f"{pg.conninfo(WAL_ROLE)} replication=database"], capture_output=True, text=True, timeout=60)
    assert sql_over_replication.stdout.strip() == "notify", sql_over_replication.stderr
    pg.psql("select pg_drop_replication_slot('pbp_source_role')")
    for table in ("testtype", "notes", "todo", "table_mtime", "pbp_private.stream"):
        result = psql_as(pg, f"select count(*) from {table}", user=WAL_ROLE)
        assert result.returncode != 0 and "permission denied" in result.stderr, (table, result.stderr)
    for statement in ("insert into testtype (val) values ('no')", "select pbp_stream_channel()",
                      "select pbp_watched_tables()", "select * from pbp_row_rules()"):
        result = psql_as(pg, statement, user=WAL_ROLE)
        assert result.returncode != 0 and "permission denied" in result.stderr, (statement, result.stderr)
    grants = pg.psql(f"""
        select table_name from information_schema.role_table_grants where grantee = '{WAL_ROLE}'
        union all
        select routine_name from information_schema.role_routine_grants where grantee = '{WAL_ROLE}'""")
    assert grants.split() == ["pbp_change_source"]


# -- the events ------------------------------------------------------------------------------


STATEMENTS = """
    insert into testtype (id, val) values (900001, 'one');
    insert into testtype (id, val) values (900002, 'two');
    update testtype set val = 'one again' where id = 900001;
    update testtype set id = 900003 where id = 900002;
    begin;
    insert into testtype (id, val) values (900004, 'never');
    rollback;
    delete from testtype where id = 900001;
    truncate testtype;
    """


def test_wal_events_have_the_shapes_of_notify_events(pg, wal_mode):
    pg.psql("select pbp_set_change_source('notify')")
    notified = listened(pg, STATEMENTS)
    assert [event["op"] for event in notified] == ["insert", "insert", "update", "update", "delete", "truncate"]
    pg.psql("select pbp_set_change_source('wal')")
    assert listened(pg, "insert into testtype (id, val) values (900005, 'quiet'); truncate testtype") == [], \
        "the wal source sends no NOTIFY"
    from_the_slot(pg, "select 1", 2)  # those two
    emitted = from_the_slot(pg, STATEMENTS, len(notified))
    assert [without_mtimes(event) for event in emitted] == [without_mtimes(event) for event in notified]


def test_a_rolled_back_transaction_never_arrives(wal_mode):
    events = from_the_slot(wal_mode, """
        begin;
        insert into testtype (val) values ('rolled back');
        rollback;
        begin;
        insert into testtype (val) values ('kept');
        savepoint inner_part;
        insert into testtype (val) values ('rolled back to the savepoint');
        rollback to savepoint inner_part;
        commit;
        """, 1)
    assert [event["new"]["val"] for event in events] == ["kept"]
    wal_mode.psql(f"delete from testtype where id = {events[0]['key']}")
    from_the_slot(wal_mode, "select 1", 1)


def test_a_100_kb_row_arrives_whole(wal_mode):
    big = "x" * 100_000
    [inserted, updated, deleted] = from_the_slot(wal_mode, f"""
        insert into testtype (id, val) values (900010, '{big}');
        update testtype set val = val || '!' where id = 900010;
        delete from testtype where id = 900010;
        """, 3)
    assert "truncated" not in inserted and inserted["new"]["val"] == big and inserted["old"] is None
    assert "truncated" not in updated and updated["new"]["val"] == big + "!" and updated["old"]["val"] == big
    assert "truncated" not in deleted and deleted["new"] is None and deleted["old"]["val"] == big + "!"


def test_switching_back_to_notify_sends_notify_again(wal_mode):
    wal_mode.psql("select pbp_set_change_source('notify')")
    [event] = listened(wal_mode, "insert into testtype (id, val) values (900020, 'heard')")
    assert event["op"] == "insert" and event["new"]["val"] == "heard"
    from_the_slot(wal_mode, "delete from testtype where id = 900020", 0)
    wal_mode.psql("select pbp_set_change_source('wal')")
    assert listened(wal_mode, "insert into testtype (id, val) values (900021, 'not heard')") == []
    [inserted, deleted] = from_the_slot(wal_mode, "delete from testtype where id = 900021", 2)
    assert (inserted["op"], deleted["op"]) == ("insert", "delete")


def test_a_row_rule_table_sends_its_owner_and_whole_rows_of_any_size(pg, wal_mode):
    big = "n" * 9000
    note = """
        insert into notes (id, owner, body) values (900030, 'alice', 'small');
        update notes set owner = 'bob' where id = 900030;
        update notes set id = 900031 where id = 900030;
        delete from notes where id = 900031;
        """
    emitted = from_the_slot(pg, note, 5)
    pg.psql("select pbp_set_change_source('notify')")
    notified = listened(pg, note)
    pg.psql("select pbp_set_change_source('wal')")
    # The key changed: the old key's row goes first, with its owner, as in notify mode.
    assert [(event["op"], event["key"]) for event in emitted] == [
        ("insert", 900030), ("update", 900030), ("delete", 900030), ("update", 900031), ("delete", 900031)]
    assert [without_mtimes(event) for event in emitted] == [without_mtimes(event) for event in notified]
    assert emitted[1]["new"]["owner"] == "bob" and emitted[1]["old"]["owner"] == "alice"

    # A note too large for a NOTIFY (key-only there) is sent whole, its key change too.
    [inserted, removed, moved, deleted] = from_the_slot(pg, f"""
        insert into notes (id, owner, body) values (900032, 'carol', '{big}');
        update notes set id = 900033 where id = 900032;
        delete from notes where id = 900033;
        """, 4)
    assert "truncated" not in inserted and inserted["new"] == {**inserted["new"], "owner": "carol", "body": big}
    assert (removed["op"], removed["key"], removed["old"]["body"], removed["new"]) == ("delete", 900032, big, None)
    assert "truncated" not in removed and "truncated" not in moved and moved["new"]["body"] == big
    assert (deleted["op"], deleted["key"]) == ("delete", 900033) and "truncated" not in deleted


def test_a_table_under_other_row_security_sends_keys_only_on_either_source(pg, wal_mode):
    pg.psql("""
        create table guarded (id bigint primary key, num int, mtime timestamptz not null default clock_timestamp());
        alter table guarded enable row level security;
        create policy small_numbers on guarded using (num < 10);
        select pbp_watch('guarded')""")
    statements = """
        insert into guarded (id, num) values (1, 1);
        update guarded set id = 2 where id = 1;
        delete from guarded;
        """
    emitted = from_the_slot(pg, statements, 4)
    pg.psql("select pbp_set_change_source('notify')")
    notified = listened(pg, statements)
    for events in (emitted, notified):
        # Key-only, so the old key's removal goes first; it names the old key alone, no content.
        assert [{name: value for name, value in event.items() if name != "mtime"} for event in events] == [
            {"table": "guarded", "op": "insert", "key": 1, "truncated": True},
            {"table": "guarded", "op": "delete", "key": 1, "truncated": True},
            {"table": "guarded", "op": "update", "key": 2, "truncated": True},
            {"table": "guarded", "op": "delete", "key": 2, "truncated": True},
        ]
