"""Roles and row rules in the database (issue 15, the SQL side): pbp_app is an
authenticator (NOINHERIT) that may become pbp_anon or pbp_user; a request's
claims live in `request.jwt.claims`; `pbp_watch(table, owner_column =>,
owner_claim =>)` makes PostgreSQL's row security enforce "the owner column
equals that claim", records the rule for the worker (pbp_row_rules()), and
makes the key-only events of such a table carry the owner.

Each request is played here as pbp-fcgi will play it: a transaction with
SET LOCAL ROLE and the claims set transaction-locally."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from psql_session import notifications, psql_as

REPO_SQL_COMMIT_BEFORE_ROLES = "e1bffb5"  # main before issue 15: pbp_app INHERIT, pbp_watch(regclass)


def as_request(stack, role: str, sql: str, claims: dict | None = None) -> subprocess.CompletedProcess:
    """`sql` in one transaction as pbp-fcgi will run a request: logged in as
    pbp_app, SET LOCAL ROLE, the claims in request.jwt.claims for the
    transaction only."""
    claims_sql = ""
    if claims is not None:
        text = json.dumps(claims).replace("'", "''")
        claims_sql = f"select set_config('request.jwt.claims', '{text}', true) \\g /dev/null\n"
    statement = sql.rstrip().rstrip(";")
    return psql_as(stack, f"begin;\nset local role {role};\n{claims_sql}{statement};\ncommit;\n", user="pbp_app")


def rows(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


def alice(stack, sql):
    return as_request(stack, "pbp_user", sql, {"sub": "alice", "role": "pbp_user"})


@pytest.fixture
def notes(stack):
    """Two notes of Alice's and one of Bob's, with bodies of their own; their ids."""
    tag = uuid.uuid4().hex[:8]
    ids = stack.psql(f"""
        insert into notes (owner, body) values
          ('alice', 'a1-{tag}'), ('alice', 'a2-{tag}'), ('bob', 'b1-{tag}')
        returning id""").split()
    yield {"alice": ids[:2], "bob": ids[2], "tag": tag}
    stack.psql(f"delete from notes where body like '%-{tag}%'")


# -- what each role may do ---------------------------------------------------------


def test_the_roles_are_an_authenticator_and_the_roles_tokens_name(stack):
    attributes = stack.psql("""
        select rolname, rolcanlogin, rolinherit from pg_roles
        where rolname in ('pbp_app', 'pbp_anon', 'pbp_user') order by rolname""").split()
    assert attributes == ["pbp_anon|f|t", "pbp_app|t|f", "pbp_user|f|t"]
    for role in ("pbp_anon", "pbp_user"):
        assert stack.psql(f"select pg_has_role('pbp_app', '{role}', 'member')").strip() == "t"
        # NOINHERIT: pbp_app has none of their privileges without SET ROLE.
        assert stack.psql(f"select pg_has_role('pbp_app', '{role}', 'usage')").strip() == "f"
    # A token may not name pbp_app's other roles, nor a superuser.
    assert stack.psql("select pg_has_role('pbp_app', 'pbp_notifyd', 'member')").strip() == "f"


def test_a_user_sees_and_changes_only_her_notes(stack, notes):
    tag = notes["tag"]
    assert rows(alice(stack, f"select body from notes where body like '%-{tag}' order by body")) == [
        f"a1-{tag}", f"a2-{tag}"]
    assert rows(alice(stack, f"select body from notes where id = {notes['bob']}")) == []
    assert rows(alice(stack, f"update notes set body = 'mine now' where id = {notes['bob']} returning id")) == []
    assert rows(alice(stack, f"delete from notes where id = {notes['bob']} returning id")) == []
    assert stack.psql(f"select owner, body from notes where id = {notes['bob']}").strip() == f"bob|b1-{tag}"
    # Her own: changed, and a new note is hers without naming an owner.
    assert rows(alice(stack, f"update notes set body = 'a1-{tag}-x' where id = {notes['alice'][0]} returning owner")) \
        == ["alice"]
    assert rows(alice(stack, f"insert into notes (body) values ('a3-{tag}') returning owner")) == ["alice"]
    assert rows(alice(stack, f"delete from notes where id = {notes['alice'][1]} returning id")) == [notes["alice"][1]]


def test_a_user_may_not_write_a_note_for_someone_else(stack, notes):
    tag = notes["tag"]
    for sql in (f"insert into notes (owner, body) values ('bob', 'forged-{tag}')",
                f"update notes set owner = 'bob' where id = {notes['alice'][0]}"):
        result = alice(stack, sql)
        assert result.returncode != 0 and "violates row-level security policy" in result.stderr, (sql, result)
    assert stack.psql(f"select count(*) from notes where body = 'forged-{tag}'").strip() == "0"
    assert stack.psql(f"select owner from notes where id = {notes['alice'][0]}").strip() == "alice"


def test_without_claims_a_user_sees_no_note(stack, notes):
    assert rows(as_request(stack, "pbp_user", f"select id from notes where body like '%-{notes['tag']}'")) == []
    result = as_request(stack, "pbp_user", "insert into notes (body) values ('nobody''s')")
    assert result.returncode != 0 and "violates row-level security policy" in result.stderr, result
    assert stack.psql("select count(*) from notes where body = 'nobody''s'").strip() == "0"


def test_a_claim_is_compared_exactly(stack, notes):
    tag = notes["tag"]
    for sub in ("Alice", "alice ", "ali"):
        result = as_request(stack, "pbp_user", f"select id from notes where body like '%-{tag}'", {"sub": sub})
        assert rows(result) == [], sub


def test_anonymous_may_use_testtype_and_todo_but_not_notes(stack, notes):
    for sql in ("select count(*) from notes",
                "insert into notes (owner, body) values ('alice', 'anon')",
                f"update notes set body = 'x' where id = {notes['bob']}",
                f"delete from notes where id = {notes['bob']}"):
        result = as_request(stack, "pbp_anon", sql)
        assert result.returncode != 0 and "permission denied for table notes" in result.stderr, (sql, result)
    value = f"anon-{notes['tag']}"
    [row_id] = rows(as_request(stack, "pbp_anon", f"insert into testtype (val) values ('{value}') returning id"))
    assert rows(as_request(stack, "pbp_anon", f"update testtype set val = '{value}-2' where id = {row_id} returning val")) \
        == [f"{value}-2"]
    assert rows(as_request(stack, "pbp_anon", f"delete from testtype where id = {row_id} returning id")) == [row_id]
    [todo_id] = rows(as_request(stack, "pbp_anon", f"insert into todo (title) values ('{value}') returning todo_id"))
    assert rows(as_request(stack, "pbp_anon", f"delete from todo where todo_id = {todo_id} returning todo_id")) == [todo_id]


def test_a_user_may_use_testtype_too(stack):
    value = f"user-{uuid.uuid4().hex[:8]}"
    [row_id] = rows(alice(stack, f"insert into testtype (val) values ('{value}') returning id"))
    assert rows(alice(stack, f"delete from testtype where id = {row_id} returning val")) == [value]


def test_the_authenticator_alone_cannot_read_notes(stack, notes):
    for sql in ("select count(*) from notes", "insert into notes (owner, body) values ('alice', 'x')"):
        result = psql_as(stack, sql, user="pbp_app")
        assert result.returncode != 0 and "permission denied for table notes" in result.stderr, (sql, result)
    result = psql_as(stack, "select nextval('notes_id_seq')", user="pbp_app")
    assert result.returncode != 0 and "permission denied" in result.stderr, result
    # What it needs itself: the catalog and the rules; no table's rows, which
    # requests read as their own roles.
    assert "notes" in rows(psql_as(stack, "select pbp_watched_tables()::text", user="pbp_app"))
    result = psql_as(stack, "select count(*) from testtype", user="pbp_app")
    assert result.returncode != 0 and "permission denied for table testtype" in result.stderr, result


def test_pages_and_stamps_work_under_the_switched_role(stack, notes):
    tag = notes["tag"]
    [page] = rows(alice(stack, "select rows from pbp_page('notes', 'id', 'bigint', null, 1000, 10000000)"))
    owners = {row["owner"] for row in json.loads(page)}
    bodies = {row["body"] for row in json.loads(page)}
    assert owners == {"alice"} and f"b1-{tag}" not in bodies and f"a1-{tag}" in bodies
    assert rows(alice(stack, "select version > 0 from table_mtime where name = 'notes'")) == ["t"]
    [anon_page] = rows(as_request(stack, "pbp_anon", "select more from pbp_page('testtype', 'id', 'bigint', null, 1, 100)"))
    assert anon_page in ("t", "f")
    assert rows(as_request(stack, "pbp_anon", "select count(*) > 0 from table_mtime where name = 'testtype'")) == ["t"]
    for role in ("pbp_anon", "pbp_user"):
        assert "notes|owner|sub" in rows(as_request(stack, role, "select * from pbp_row_rules()"))
        assert "notes" in rows(as_request(stack, role, "select pbp_watched_tables()::text"))


# -- the row rule -----------------------------------------------------------------


def test_the_row_rules_are_listed_for_pbp_fcgi(stack):
    listed = rows(psql_as(stack, "select relation::text, owner_column, owner_claim from pbp_row_rules()",
                          user="pbp_app"))
    assert "notes|owner|sub" in listed
    assert not any(line.startswith(("testtype|", "todo|")) for line in listed)
    assert stack.psql("select owner_column, owner_claim from pbp_private.watched where relation = 'notes'::regclass") \
        .strip() == "owner|sub"


def policies_of(stack, table: str) -> list[str]:
    return stack.psql(f"""
        select polname, polcmd, pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid)
        from pg_policy where polrelid = '{table}'::regclass""").splitlines()


def test_watching_again_keeps_one_policy_and_the_rule(stack, notes):
    before = policies_of(stack, "notes")
    assert len(before) == 1 and before[0].startswith("pbp_owner|*|")
    stack.psql("select pbp_watch('notes', owner_column => 'owner', owner_claim => 'sub')")
    assert policies_of(stack, "notes") == before
    # Without a rule, the rule stays: a call that forgets it never opens the table.
    stack.psql("select pbp_watch('notes')")
    assert policies_of(stack, "notes") == before
    assert "notes|owner|sub" in stack.psql("select * from pbp_row_rules()").splitlines()
    assert stack.psql("select relrowsecurity from pg_class where oid = 'notes'::regclass").strip() == "t"
    assert rows(alice(stack, f"select count(*) from notes where id = {notes['bob']}")) == ["0"]


@pytest.fixture
def scratch_table(stack):
    name = f"pbp_test_rule_{uuid.uuid4().hex[:6]}"
    stack.psql(f"""
        create table {name} (id bigserial primary key, who text, num int, label char(5), mtime timestamptz);
        grant select, insert, update, delete on {name} to pbp_user;
        grant usage on sequence {name}_id_seq to pbp_user""")
    yield name
    stack.psql(f"drop table if exists {name}")


def test_a_rule_is_declared_whole_on_a_text_column(stack, scratch_table):
    for call, message in [
            (f"pbp_watch('{scratch_table}', owner_column => 'who')", "both"),
            (f"pbp_watch('{scratch_table}', owner_claim => 'sub')", "both"),
            (f"pbp_watch('{scratch_table}', owner_column => 'nosuch', owner_claim => 'sub')", "no column"),
            (f"pbp_watch('{scratch_table}', owner_column => 'num', owner_claim => 'sub')", "text"),
            (f"pbp_watch('{scratch_table}', owner_column => 'label', owner_claim => 'sub')", "text"),
            (f"pbp_watch('{scratch_table}', owner_column => 'who', owner_claim => '')", "claim")]:
        result = psql_as(stack, f"select {call}")
        assert result.returncode != 0 and message in result.stderr, (call, result)
    assert stack.psql(f"select count(*) from pbp_private.watched where relation::text = '{scratch_table}'").strip() == "0"


def test_another_claim_on_a_table_of_its_own(stack, scratch_table):
    stack.psql(f"select pbp_watch('{scratch_table}', owner_column => 'who', owner_claim => 'team')")
    stack.psql(f"insert into {scratch_table} (who) values ('red'), ('blue')")
    seen = as_request(stack, "pbp_user", f"select who from {scratch_table}", {"sub": "alice", "team": "red"})
    assert rows(seen) == ["red"]
    assert f"{scratch_table}|who|team" in stack.psql("select * from pbp_row_rules()").splitlines()


def test_unwatching_drops_the_rule_and_keeps_the_table_closed(stack, scratch_table):
    stack.psql(f"select pbp_watch('{scratch_table}', owner_column => 'who', owner_claim => 'sub')")
    stack.psql(f"insert into {scratch_table} (who) values ('alice')")
    stack.psql(f"select pbp_unwatch('{scratch_table}')")
    assert policies_of(stack, scratch_table) == []
    assert not any(line.startswith(scratch_table) for line in stack.psql("select * from pbp_row_rules()").splitlines())
    # Row security stays on: with no policy left, no role but the owner sees a row.
    assert rows(alice(stack, f"select count(*) from {scratch_table}")) == ["0"]
    # Watched again without a rule: still closed, and no rule comes back.
    stack.psql(f"select pbp_watch('{scratch_table}')")
    assert policies_of(stack, scratch_table) == []
    assert rows(alice(stack, f"select count(*) from {scratch_table}")) == ["0"]


def test_a_rule_table_may_have_no_other_policy(stack, scratch_table):
    stack.psql(f"alter table {scratch_table} enable row level security; "
               f"create policy mine on {scratch_table} using (true)")
    result = psql_as(stack, f"select pbp_watch('{scratch_table}', owner_column => 'who', owner_claim => 'sub')")
    assert result.returncode != 0 and "mine" in result.stderr, result


# -- events of protected tables ---------------------------------------------------------


def without_mtime(event: dict) -> dict:
    assert isinstance(event.pop("mtime"), str)
    return event


def test_a_truncated_note_carries_its_owner(stack):
    big = "x" * 9000
    [note_id] = stack.psql(f"insert into notes (owner, body) values ('alice', 'small') returning id").split()
    events = notifications(stack, f"""
        update notes set body = '{big}' where id = {note_id};
        update notes set owner = 'bob', body = '{big}!' where id = {note_id};
        update notes set id = id + 1000000, body = '{big}?' where id = {note_id};
        delete from notes where id = {int(note_id) + 1000000};
        """)
    key = int(note_id)
    moved = key + 1000000
    assert [without_mtime(event) for event in events] == [
        {"table": "notes", "op": "update", "key": key, "truncated": True,
         "new": {"owner": "alice"}, "old": {"owner": "alice"}},
        {"table": "notes", "op": "update", "key": key, "truncated": True,
         "new": {"owner": "bob"}, "old": {"owner": "alice"}},
        # The key changed: the old key's row goes first, with its owner.
        {"table": "notes", "op": "delete", "key": key, "truncated": True, "new": None, "old": {"owner": "bob"}},
        {"table": "notes", "op": "update", "key": moved, "truncated": True,
         "new": {"owner": "bob"}, "old": {"owner": "bob"}},
        {"table": "notes", "op": "delete", "key": moved, "truncated": True, "new": None, "old": {"owner": "bob"}},
    ]
    [inserted] = notifications(stack, f"insert into notes (owner, body) values ('carol', '{big}') returning id")
    assert inserted["op"] == "insert" and inserted["new"] == {"owner": "carol"} and inserted["old"] is None
    assert inserted["truncated"] is True and set(inserted) == {"table", "op", "key", "mtime", "truncated", "new", "old"}
    stack.psql(f"delete from notes where id = {inserted['key']}")


def test_a_small_note_is_sent_whole_and_other_tables_keep_their_shapes(stack):
    [event] = notifications(stack, "insert into notes (owner, body) values ('alice', 'whole') returning id")
    assert event["new"]["body"] == "whole" and event["new"]["owner"] == "alice" and "truncated" not in event
    stack.psql(f"delete from notes where id = {event['key']}")
    [big] = notifications(stack, f"insert into testtype (val) values ('{'y' * 9000}') returning id")
    assert set(big) == {"table", "op", "key", "mtime", "truncated"}
    stack.psql(f"delete from testtype where id = {big['key']}")


def test_a_table_under_other_row_security_sends_keys_only(stack, scratch_table):
    stack.psql(f"""
        alter table {scratch_table} enable row level security;
        create policy small_numbers on {scratch_table} using (num < 10);
        select pbp_watch('{scratch_table}')""")
    [event] = notifications(stack, f"insert into {scratch_table} (who, num) values ('alice', 1) returning id")
    assert set(event) == {"table", "op", "key", "mtime", "truncated"} and event["truncated"] is True
    assert event["table"] == scratch_table and event["op"] == "insert"


# -- the migration ------------------------------------------------------------------------


def grants_and_rules(stack, database: str = "pbp") -> str:
    """Who may do what, the policies and the rules, as text to compare."""
    result = psql_as(stack, """
        select 'role', rolname, rolcanlogin, rolinherit from pg_roles where rolname like 'pbp\\_%' order by 2;
        select 'member', r.rolname, m.rolname from pg_auth_members a
          join pg_roles r on r.oid = a.roleid join pg_roles m on m.oid = a.member
          where r.rolname like 'pbp\\_%' order by 2, 3;
        select 'table', grantee, table_name, string_agg(privilege_type, ',' order by privilege_type)
          from information_schema.role_table_grants where grantee like 'pbp\\_%' group by 2, 3 order by 2, 3;
        select 'routine', grantee, routine_name from information_schema.role_routine_grants
          where grantee like 'pbp\\_%' order by 2, 3;
        select 'sequence', r.rolname, c.relname, a.privilege_type
          from pg_class c, aclexplode(c.relacl) a join pg_roles r on r.oid = a.grantee
          where c.relkind = 'S' and r.rolname like 'pbp\\_%' order by 2, 3, 4;
        select 'policy', polrelid::regclass, polname, pg_get_expr(polqual, polrelid) from pg_policy order by 2, 3;
        select 'rule', * from pbp_row_rules() order by 2;
        select 'rls', relname from pg_class where relrowsecurity order by 2;
        """, database=database)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_migrating_again_changes_nothing(stack, notes):
    before = grants_and_rules(stack)
    count = stack.psql("select count(*) from notes").strip()
    stack.prepare_database()
    stack.prepare_database()
    assert grants_and_rules(stack) == before
    assert stack.psql("select count(*) from notes").strip() == count
    assert rows(alice(stack, f"select count(*) from notes where body like '%-{notes['tag']}'")) == ["2"]


def test_a_database_of_the_previous_version_is_upgraded(stack):
    """The SQL of main before this issue, applied to a database of its own
    (pbp_app made INHERIT again, as that version made it), then this
    version's migrate.sh: the same grants and rules as a database made new."""
    database = "pbp_upgrade_test"
    stack.psql(f"drop database if exists {database} with (force)", database="postgres")
    stack.psql(f"create database {database}", database="postgres")
    try:
        files = subprocess.run(["git", "-C", str(stack_repo()), "ls-tree", "--name-only",
                                f"{REPO_SQL_COMMIT_BEFORE_ROLES}:sql"], capture_output=True, text=True, check=True)
        for name in sorted(line for line in files.stdout.split() if line.endswith(".sql")):
            old = subprocess.run(["git", "-C", str(stack_repo()), "show",
                                  f"{REPO_SQL_COMMIT_BEFORE_ROLES}:sql/{name}"],
                                 capture_output=True, text=True, check=True).stdout
            result = psql_as(stack, f"\\set DBNAME {database}\nbegin;\n{old}\ncommit;\n", database=database)
            assert result.returncode == 0, (name, result.stderr)
        stack.psql("alter role pbp_app inherit")
        stack.psql("insert into testtype (val) values ('kept')", database=database)
        subprocess.run([str(stack_repo() / "sql" / "migrate.sh"), database], check=True, env=stack.pg_env(),
                       capture_output=True)
        assert stack.psql("select rolinherit from pg_roles where rolname = 'pbp_app'").strip() == "f"
        assert stack.psql("select val from testtype", database=database).split() == ["kept"]
        assert grants_and_rules(stack, database) == grants_and_rules(stack)
        old_signature = stack.psql("select count(*) from pg_proc where proname = 'pbp_watch'", database=database)
        assert old_signature.strip() == "1"
    finally:
        stack.psql("alter role pbp_app noinherit")
        stack.psql(f"drop database if exists {database} with (force)", database="postgres")


def stack_repo():
    from conftest import REPO
    return REPO
