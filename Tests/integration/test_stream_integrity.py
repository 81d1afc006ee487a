"""Integrity of the change stream, in the database: only PBP's triggers put
events on it, the writers' bookkeeping makes no lock wait that PBP added, and a
row's mtime never goes back.

- A role that may log in cannot forge an event: NOTIFY on the default channel,
  or on any channel name it can find in what it may read, reaches neither a
  waiting poll nor notifyd's stream; a fresh role cannot even connect, and no
  role but PBP's owner may attach PBP's triggers to a table of its own.
- Two transactions that write two watched tables in opposite order do not
  deadlock, even from backends whose pids share a shard of the old per-table
  stamp (pid % 64), where the stamp row was locked until commit.
- An update's mtime is later than the row's previous one even when that one is
  in the future (the clock stepped back)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import WaitingPoll, caught_up_cursor
from notifyd_client import EVENT, NotifydClient
from psql_session import NOTIFICATION, psql_as

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chaos"))
from wire import PgConnection  # noqa: E402

INTRUDER = "pbp_test_intruder"


def run_sql_as(stack, user: str, sql: str) -> subprocess.CompletedProcess:
    """psql as `user` (the test cluster trusts every local role), errors not raised."""
    env = stack.pg_env()
    env["PGUSER"] = user
    return subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-f", "-"], input=sql,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def intruder(stack):
    """A login role such as a DBA makes for someone else, allowed to connect."""
    stack.psql(f"drop role if exists {INTRUDER}; create role {INTRUDER} login")
    stack.psql(f"grant connect on database pbp to {INTRUDER}")
    yield INTRUDER
    stack.psql(f"revoke all on database pbp from {INTRUDER}; drop owned by {INTRUDER}; drop role {INTRUDER}")


def channels_readable_by(stack, user: str) -> list[str]:
    """Every name `user` could try as the channel: the default, and each word
    of the functions' source, of the sessions' queries it may see and of
    the setting values."""
    texts = run_sql_as(stack, user, """
        select prosrc from pg_proc
        union all select coalesce(query, '') from pg_stat_activity
        union all select coalesce(setting, '') from pg_settings
        union all select obj_description(oid) from pg_proc where obj_description(oid) is not null
        """)
    assert texts.returncode == 0, texts.stderr
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_$]{0,62}", texts.stdout))
    return ["pbp", *sorted(words - {"pbp"})]


def forge_on(stack, user: str, channels: list[str], marker: str) -> None:
    """NOTIFY every channel with what a trigger would send, and worse."""
    payloads = [
        '{"table":"testtype","op":"truncate","key":null,"mtime":"2026-01-01T00:00:00+00:00"}',
        '{"table":"testtype","op":"update","key":1,"mtime":"9999-12-31T00:00:00+00:00",'
        f'"new":{{"id":1,"val":"{marker}","mtime":"9999-12-31T00:00:00+00:00"}},"old":{{"id":1}}}}',
    ]
    statements = []
    for channel in channels:
        quoted = '"' + channel.replace('"', '""') + '"'
        for payload in payloads:
            statements.append(f"notify {quoted}, '{payload}';")
    result = run_sql_as(stack, user, "begin;\n" + "\n".join(statements) + "\ncommit;")
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_fresh_login_role_cannot_connect(stack):
    stack.psql("drop role if exists pbp_test_stranger; create role pbp_test_stranger login")
    try:
        result = run_sql_as(stack, "pbp_test_stranger", "notify pbp, '{}'")
        assert result.returncode != 0 and "permission denied for database" in result.stderr, result
    finally:
        stack.psql("drop role pbp_test_stranger")


def test_no_role_can_forge_an_event_and_real_writes_still_arrive(client, stack, intruder):
    cursor = caught_up_cursor(client)
    poll = WaitingPoll(client, {"cursor": cursor, "subscriptions": [{"table": "testtype"}], "timeout": 50},
                       timeout=60)
    poll.assert_waiting()
    stream = NotifydClient(stack.notifyd_socket)
    stream.welcome()
    marker = f"forged-{uuid.uuid4().hex[:8]}"
    for user in (intruder, "pbp_app"):
        channels = channels_readable_by(stack, user)
        assert len(channels) > 100, "the role can read the catalog's source texts"
        forge_on(stack, user, channels, marker)
    # A forged event would have reached the poll within milliseconds.
    time.sleep(1.0)
    poll.assert_waiting(0.1)

    value = f"real-{uuid.uuid4().hex[:8]}"
    created = client.post("/api/testtype", {"val": value})
    assert created.status == 201, created
    response = poll.result(15)
    assert response.status == 200, response
    events = response.json()["events"]
    assert [(e["op"], e["new"]["val"]) for e in events] == [("insert", value)], events
    [(seq, payload)] = stream.events(1, timeout=15)
    assert value.encode() in payload and marker.encode() not in payload, payload
    stream.close()


def test_the_channel_and_the_triggers_are_private_to_pbp(stack, intruder):
    for sql in ["select pbp_stream_channel()",
                "select * from pbp_private.stream",
                "create temp table t (id int)"]:
        result = run_sql_as(stack, intruder, sql)
        assert result.returncode != 0 and "permission denied" in result.stderr, (sql, result)
    # With TEMP granted and a table of its own, it still may not attach PBP's triggers.
    stack.psql(f"grant temporary on database pbp to {intruder}")
    result = run_sql_as(stack, intruder, """
        create temp table testtype (id bigint primary key, val text, mtime timestamptz);
        create trigger forge after insert on testtype for each row execute function public.pbp_notify('id');
        """)
    assert result.returncode != 0 and "permission denied for function public.pbp_notify" in result.stderr, result
    for function in ["pbp_notify()", "pbp_notify_truncate()", "pbp_touch_table()", "pbp_set_mtime()",
                     "pbp_watch(regclass, name, text)", "pbp_stream_channel()"]:
        for role in (intruder, "pbp_app"):
            allowed = stack.psql(f"select has_function_privilege('{role}', '{function}', 'execute')").strip()
            assert allowed == "f", (role, function)
    assert stack.psql("select has_function_privilege('pbp_notifyd', 'pbp_stream_channel()', 'execute')").strip() == "t"


def test_a_writer_s_search_path_cannot_run_its_code_inside_pbp_s_triggers(stack, intruder):
    """PBP's triggers are SECURITY DEFINER without SET search_path (its cost
    on every row): every name in them is qualified. A writer that may create
    temporary objects and owns a schema puts its own types (domains whose
    check runs its function) and operators first in its search path: they
    must never run as PBP's owner, and the events must come out as usual."""
    stack.psql(f"""
        grant temporary on database pbp to {intruder};
        grant usage on schema public to {intruder};
        grant select, insert, update, delete on testtype to {intruder};
        grant usage on sequence testtype_id_seq to {intruder};
        create schema hijack authorization {intruder};
        """)
    value = f"hijack {uuid.uuid4().hex[:8]}"
    hijack = f"""
        set role {intruder};
        create temp table seen (who text, what text);
        create function pg_temp.spy(what pg_catalog.text) returns boolean language sql
          as 'insert into pg_temp.seen values (current_user, what); select true';
        create function hijack.spy_eq(a pg_catalog.text, b pg_catalog.text) returns boolean language sql
          as 'insert into pg_temp.seen values (current_user, ''='' || a); select a operator(pg_catalog.=) b';
        create operator hijack.= (leftarg = pg_catalog.text, rightarg = pg_catalog.text, function = hijack.spy_eq);
        create function hijack.spy_jsonb_eq(a pg_catalog.jsonb, b pg_catalog.jsonb) returns boolean language sql
          as 'insert into pg_temp.seen values (current_user, ''jsonb=''); select a operator(pg_catalog.=) b';
        create operator hijack.= (leftarg = pg_catalog.jsonb, rightarg = pg_catalog.jsonb, function = hijack.spy_jsonb_eq);
        """ + "".join(f"""
        create domain pg_temp.{name} as pg_catalog.{name} check (pg_temp.spy('{name}'));"""
                      for name in ("text", "json", "jsonb", "bool", "int4", "int8", "timestamptz", "tid", "oid")) + f"""
        set search_path = hijack, pg_temp, public, pg_catalog;
        insert into testtype (val) values ('{value}');
        update testtype set val = '{value} updated' where val = '{value}';
        update testtype set id = id + 1000000 where val = '{value} updated';
        begin isolation level repeatable read;
        update testtype set val = '{value} in rr' where val = '{value} updated';
        commit;
        delete from testtype where val = '{value} in rr';
        """ + "".join(f"""
        insert into testtype (val) values ('{value} {n}');""" for n in range(20)) + f"""
        delete from testtype where val like '{value} %' and val not like '%updated' and val not like '%in rr';
        select 'seen:' || coalesce(string_agg(distinct who || ' ' || what, ', '), '') from pg_temp.seen
          where who operator(pg_catalog.<>) current_user;
        reset role;
        """
    channel = stack.psql("select pbp_stream_channel()").strip()
    result = psql_as(stack, f'listen "{channel}";\n{hijack}\nselect 1;\n')
    assert result.returncode == 0, result.stderr
    assert re.findall(r"^seen:.*$", result.stdout, re.MULTILINE) == ["seen:"], result.stdout
    events = [json.loads(payload) for payload in NOTIFICATION.findall(result.stdout)]
    ops = [(event["op"], (event["new"] or event["old"] or {}).get("val")) for event in events
           if event["table"] == "testtype"]
    # (The 20 single inserts make PBP fold its table stamps at least once.)
    assert ops[:5] == [("insert", value), ("update", f"{value} updated"), ("update", f"{value} updated"),
                       ("update", f"{value} in rr"), ("delete", f"{value} in rr")], events
    assert ops[5:25] == [("insert", f"{value} {n}") for n in range(20)], events
    assert sorted(ops[25:]) == sorted(("delete", f"{value} {n}") for n in range(20)), events


def test_migrating_again_keeps_the_channel_and_the_stream(client, stack):
    channel = stack.psql("select channel from pbp_private.stream").strip()
    stack.prepare_database()
    assert stack.psql("select channel from pbp_private.stream").strip() == channel
    cursor = caught_up_cursor(client)
    poll = WaitingPoll(client, {"cursor": cursor, "subscriptions": [{"table": "testtype"}]})
    poll.assert_waiting()
    value = f"after-migrate-{uuid.uuid4().hex[:8]}"
    stack.psql(f"insert into testtype (val) values ('{value}')")
    response = poll.result(15)
    assert response.status == 200 and response.json()["events"][0]["new"]["val"] == value, response


# -- the table stamp takes no lock held to commit ------------------------------------

TABLES = ("pbp_test_stamp_a", "pbp_test_stamp_b")


@pytest.fixture
def two_watched_tables(stack):
    for table in TABLES:
        stack.psql(f"""
            create table if not exists {table} (id bigserial primary key, val text, mtime timestamptz);
            select pbp_watch('{table}');
            """)
    yield TABLES
    stack.psql(f"drop table {', '.join(TABLES)}")
    stamps = ("table_mtime_shards" if stack.psql("select to_regclass('table_mtime_shards') is not null").strip() == "t"
              else "pbp_private.table_stamp_base", "pbp_private.table_stamp_log")
    for stamp in stamps:
        if stack.psql(f"select to_regclass('{stamp}') is not null").strip() == "t":
            stack.psql(f"delete from {stamp} where name in {TABLES}")


async def same_shard_pair(socket_dir: str) -> tuple[PgConnection, PgConnection]:
    """Two connections whose backends' pids are equal modulo 64; the others are closed."""
    by_shard: dict[int, PgConnection] = {}
    opened = []
    try:
        for _ in range(120):
            connection = PgConnection(socket_dir)
            await connection.connect()
            opened.append(connection)
            pid = int((await connection.query("select pg_backend_pid()")).rows[0][0])
            if pid % 64 in by_shard:
                pair = (by_shard[pid % 64], connection)
                for other in opened:
                    if other not in pair:
                        other.close()
                return pair
            by_shard[pid % 64] = connection
    except BaseException:
        for connection in opened:
            connection.close()
        raise
    for connection in opened:
        connection.close()
    pytest.skip("no two of 120 backends shared a pid modulo 64")


async def write_in_opposite_orders(socket_dir: str, a: str, b: str):
    first, second = await same_shard_pair(socket_dir)
    try:
        for connection in (first, second):
            await connection.query("set deadlock_timeout = '200ms'; set lock_timeout = '5s'")
        assert (await first.query(f"begin; insert into {a} (val) values ('1 first')")).error is None
        assert (await second.query(f"begin; insert into {b} (val) values ('2 first')")).error is None
        # Without PBP these two inserts touch no common row: neither waits.
        results = await asyncio.gather(first.query(f"insert into {b} (val) values ('1 second')"),
                                       second.query(f"insert into {a} (val) values ('2 second')"))
        commits = await asyncio.gather(first.query("commit"), second.query("commit"))
        return results, commits
    finally:
        first.close()
        second.close()


def test_writers_on_one_shard_in_opposite_table_order_do_not_deadlock(stack, two_watched_tables):
    a, b = two_watched_tables
    version_before = {t: stack.psql(f"select version from table_mtime where name = '{t}'").strip() for t in (a, b)}
    results, commits = asyncio.run(write_in_opposite_orders(str(stack.pg_dir), a, b))
    errors = [(r.error.sqlstate, str(r.error)) for r in results if r.error is not None]
    assert errors == [], errors
    assert all(c.error is None for c in commits)
    assert stack.psql(f"select count(*) from {a}").strip() == "2"
    assert stack.psql(f"select count(*) from {b}").strip() == "2"
    for table in (a, b):
        after = stack.psql(f"select version from table_mtime where name = '{table}'").strip()
        assert int(after) > int(version_before[table] or 0), (table, version_before[table], after)


def test_the_stamp_stays_small_and_its_version_grows_with_every_write(stack, two_watched_tables):
    a, _ = two_watched_tables
    versions = []
    for n in range(60):
        insert = f"insert into {a} (val) values ('{n}')"
        # Folds happen in REPEATABLE READ writers too (there a fold that
        # would fail the writer is given up).
        stack.psql(f"begin isolation level repeatable read; {insert}; commit" if n % 2 else insert)
        versions.append(int(stack.psql(f"select version from table_mtime where name = '{a}'").strip()))
    assert all(later > earlier for earlier, later in zip(versions, versions[1:])), versions
    if stack.psql("select to_regclass('pbp_private.table_stamp_log') is not null").strip() == "t":
        rows = int(stack.psql(f"select count(*) from pbp_private.table_stamp_log where name = '{a}'").strip())
        assert rows <= 32, f"{rows} stamp rows after 64 writes: they are not folded"


# -- a row's mtime never goes back ------------------------------------------------------

def test_an_update_is_later_than_a_row_mtime_from_the_future(stack):
    row = stack.psql("insert into testtype (val) values ('from the future') returning id").split()[0]
    # As if the clock had stepped back a day since the row was written.
    stack.psql(f"""
        set session_replication_role = replica;
        update testtype set mtime = clock_timestamp() + interval '1 day' where id = {row};
        """)
    future = stack.psql(f"select mtime from testtype where id = {row}").strip()
    stack.psql(f"update testtype set val = 'updated now' where id = {row}")
    later = stack.psql(f"select mtime > '{future}'::timestamptz from testtype where id = {row}").strip()
    assert later == "t", (future, stack.psql(f"select mtime from testtype where id = {row}"))
