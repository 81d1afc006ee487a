"""Any watched table (issue 17): tables are discovered from pbp_watch()'s
catalog, described by GET /api/_tables, served typed (todo), kept serving
through DDL, and subscription filters are checked against their columns."""

import uuid

import pytest

from conftest import Client, temporary_stack, wait_for


def unique(prefix="t"):
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def described(client: Client, name: str):
    response = client.get("/api/_tables")
    assert response.status == 200, response
    assert response.headers["content-type"].startswith("application/json")
    return next((table for table in response.json()["tables"] if table["name"] == name), None)


def test_the_tables_are_described_for_clients(client):
    tables = client.get("/api/_tables").json()["tables"]
    names = [table["name"] for table in tables]
    assert names == sorted(names) and {"testtype", "todo"} <= set(names)
    todo = described(client, "todo")
    assert todo["key"] == "todo_id"
    columns = {column["name"]: column for column in todo["columns"]}
    assert list(columns) == ["todo_id", "title", "done", "due", "tags", "meta", "mtime"]
    assert columns["todo_id"] == {"name": "todo_id", "type": "bigint", "nullable": False, "default": "identity",
                                  "writable": False, "required": False, "key": True}
    assert columns["title"] == {"name": "title", "type": "text", "nullable": False, "default": None,
                                "writable": True, "required": True, "key": False}
    assert columns["done"]["default"] == "false" and not columns["done"]["required"]
    assert columns["due"]["type"] == "date" and columns["due"]["nullable"]
    assert columns["tags"]["type"] == "text[]" and columns["meta"]["type"] == "jsonb"
    assert not columns["mtime"]["writable"]
    testtype = described(client, "testtype")
    assert testtype["key"] == "id" and [c["name"] for c in testtype["columns"]] == ["id", "val", "mtime"]
    assert client.post("/api/_tables", {}).status == 405


def test_todo_round_trips_every_type(client, stack):
    created = client.post("/api/todo", {"title": "buy milk", "due": "2026-12-24", "tags": ["home", "shop"],
                                        "meta": {"priority": 2, "notes": None}})
    assert created.status == 201, created
    row = created.json()
    assert row["done"] is False and row["due"] == "2026-12-24" and row["tags"] == ["home", "shop"]
    assert row["meta"] == {"priority": 2, "notes": None} and isinstance(row["todo_id"], int)
    assert created.headers["location"] == f"/api/todo/{row['todo_id']}"
    fetched = client.get(f"/api/todo/{row['todo_id']}")
    assert fetched.json() == row and fetched.headers["pbp-key"] == "todo_id"
    patched = client.patch(f"/api/todo/{row['todo_id']}", {"done": True, "due": None, "tags": []})
    assert patched.status == 200, patched
    assert patched.json()["done"] is True and patched.json()["due"] is None and patched.json()["tags"] == []
    assert patched.json()["title"] == "buy milk", "PATCH changes only what it gives"
    assert client.post("/api/todo", {"done": True}).json()["error"] == "missing_field"
    assert client.post("/api/todo", {"title": "x", "done": "maybe"}).status == 422
    assert client.post("/api/todo", {"title": "x", "nosuch": 1}).json()["error"] == "unknown_column"
    assert client.delete(f"/api/todo/{row['todo_id']}").status == 204


def test_a_table_watched_while_the_stack_runs_is_served_and_dropped_when_unwatched(client, stack):
    name = unique("fresh")
    stack.psql(f"""
        create table {name} (slug text primary key, n integer, mtime timestamptz not null default now());
        select pbp_watch('{name}');
        grant select, insert, update, delete on {name} to pbp_anon;""")
    # At once: a name the description does not know has the catalog read again.
    created = client.post(f"/api/{name}", {"slug": "a", "n": 1})
    assert created.status == 201, created
    assert created.json() == {"slug": "a", "n": 1, "mtime": created.json()["mtime"]}
    assert client.get(f"/api/{name}/a").json()["n"] == 1
    assert client.put(f"/api/{name}/a", {"n": 2, "slug": "a"}).json()["n"] == 2, "the key given again is ignored"
    assert described(client, name)["key"] == "slug"
    poll = client.post("/api/changes", {"subscriptions": [{"table": name, "where": {"slug": "a"}}], "timeout": 0})
    assert poll.status == 200, poll

    stack.psql(f"select pbp_unwatch('{name}')")
    wait_for(lambda: client.get(f"/api/{name}").status == 404, 30, "the unwatched table to be dropped")
    assert client.get(f"/api/{name}").json()["error"] == "unknown_table"
    assert described(client, name) is None


def test_ddl_on_a_served_table_never_breaks_requests(client, stack):
    name = unique("ddl")
    stack.psql(f"""
        create table {name} (id bigserial primary key, a text not null, b integer, mtime timestamptz not null default now());
        select pbp_watch('{name}');
        grant select, insert, update, delete on {name} to pbp_anon;
        grant usage on sequence {name}_id_seq to pbp_anon;""")
    first = client.post(f"/api/{name}", {"a": "x", "b": 1})
    assert first.status == 201, first
    key = first.json()["id"]
    # Warm every statement on every worker thread, so that stale descriptions are what the DDL meets.
    for _ in range(20):
        assert client.get(f"/api/{name}").status == 200
        assert client.get(f"/api/{name}/{key}").status == 200

    stack.psql(f"alter table {name} add column c boolean not null default false")
    added = client.post(f"/api/{name}", {"a": "y", "c": True})
    assert added.status == 201, added
    assert added.json()["c"] is True
    assert client.post("/api/changes", {"subscriptions": [{"table": name, "where": {"c": True}}],
                                        "timeout": 0}).status == 200

    stack.psql(f"alter table {name} drop column a")
    for _ in range(10):
        dropped = client.post(f"/api/{name}", {"b": 3})
        assert dropped.status == 201, dropped
        assert "a" not in dropped.json()
        assert client.patch(f"/api/{name}/{key}", {"b": 4}).status == 200

    stack.psql(f"alter table {name} rename column b to renamed")
    for _ in range(10):
        renamed = client.patch(f"/api/{name}/{key}", {"renamed": 5})
        assert renamed.status == 200, renamed
        assert client.get(f"/api/{name}/{key}").json()["renamed"] == 5

    stack.psql(f"alter table {name} alter column renamed type text using renamed::text")
    for _ in range(10):
        retyped = client.put(f"/api/{name}/{key}", {"renamed": "five", "c": False})
        assert retyped.status == 200, retyped
        assert client.get(f"/api/{name}").status == 200

    stack.psql(f"alter table {name} alter column id type integer")
    for _ in range(10):
        assert client.get(f"/api/{name}/{key}").status == 200
        assert client.get(f"/api/{name}?after={key}").status == 200
    # A change that no request trips over is seen when the description is next read (within seconds).
    wait_for(lambda: described(client, name)["columns"][0]["type"] == "integer", 30, "the new key type")
    assert client.post("/api/changes", {"subscriptions": [{"table": name, "where": {"renamed": "five"}}],
                                        "timeout": 0}).status == 200


@pytest.mark.parametrize("where, code", [
    ({"nosuch": 1}, "unknown_column"),
    ({"id": "x"}, "invalid_filter"),
    ({"id": 1.5}, "invalid_filter"),
])
def test_filters_are_judged_against_the_table(client, where, code):
    response = client.post("/api/changes", {"subscriptions": [{"table": "testtype", "where": where}], "timeout": 0})
    assert response.status == 400, response
    assert response.json()["error"] == code
    query = "&".join(f"where.{column}={value}" for column, value in where.items())
    response = client.get(f"/api/changes?table=testtype&{query}&timeout=0")
    assert response.status == 400 and response.json()["error"] == code


def test_todo_filters_by_type(client):
    for where in ({"done": True}, {"done": "false"}, {"due": "2026-12-24"}, {"title": "x"}):
        assert client.post("/api/changes", {"subscriptions": [{"table": "todo", "where": where}],
                                            "timeout": 0}).status == 200, where
    for where, code in (({"done": "yes"}, "invalid_filter"), ({"tags": "a"}, "invalid_filter"),
                        ({"meta": "a"}, "invalid_filter")):
        response = client.post("/api/changes", {"subscriptions": [{"table": "todo", "where": where}], "timeout": 0})
        assert response.status == 400 and response.json()["error"] == code, (where, response)


def test_tables_restricts_what_is_served():
    with temporary_stack("tables-restricted", extra_fcgi_args=["--tables", "todo"]) as stack:
        client = Client(stack.port)
        assert [table["name"] for table in client.get("/api/_tables").json()["tables"]] == ["todo"]
        assert client.get("/api/testtype").json()["error"] == "unknown_table"
        assert client.post("/api/changes", {"subscriptions": [{"table": "testtype"}]}).status == 404
        assert client.get("/api/todo").status == 200
