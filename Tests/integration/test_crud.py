"""The CRUD API through nginx: status codes of DESIGN.md, JSON and form bodies,
and a JSON error for every bad request."""

import uuid

import pytest


def unique(prefix="v"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def test_json_round_trip(client, stack):
    value = unique()
    created = client.post("/api/testtype", {"val": value})
    assert created.status == 201, created
    row = created.json()
    assert row["val"] == value and isinstance(row["id"], int) and row["mtime"]
    assert created.headers["location"] == f"/api/testtype/{row['id']}"
    assert stack.psql(f"select val from testtype where id = {row['id']}").strip() == value

    fetched = client.get(f"/api/testtype/{row['id']}")
    assert fetched.status == 200 and fetched.json() == row
    assert fetched.headers["pbp-key"] == "id"

    listed = client.get("/api/testtype")
    assert listed.status == 200
    assert row in listed.json()
    assert listed.headers["pbp-cursor"]
    assert listed.headers["pbp-key"] == "id"

    replaced = client.put(f"/api/testtype/{row['id']}", {"val": value + "-put"})
    assert replaced.status == 200 and replaced.json()["val"] == value + "-put"
    assert replaced.json()["mtime"] > row["mtime"]

    patched = client.patch(f"/api/testtype/{row['id']}", {"val": value + "-patch"})
    assert patched.status == 200 and patched.json()["val"] == value + "-patch"

    deleted = client.delete(f"/api/testtype/{row['id']}")
    assert deleted.status == 204 and deleted.body == b""
    assert client.get(f"/api/testtype/{row['id']}").status == 404
    assert client.delete(f"/api/testtype/{row['id']}").status == 404
    assert stack.psql(f"select count(*) from testtype where id = {row['id']}").strip() == "0"


def test_form_bodies_as_the_original_sent_them(client, stack):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    value = unique("form")
    created = client.post("/api/testtype", f"val={value}+with%20spaces", headers=form)
    assert created.status == 201, created
    row_id = created.json()["id"]
    assert created.json()["val"] == f"{value} with spaces"

    updated = client.put("/api/testtype", f"id={row_id}&val=changed", headers=form)
    assert updated.status == 200 and updated.json()["val"] == "changed"

    deleted = client.delete("/api/testtype", body=f"id={row_id}", headers=form)
    assert deleted.status == 204
    assert stack.psql(f"select count(*) from testtype where id = {row_id}").strip() == "0"


def test_pagination_with_limit_and_after(client):
    ids = [client.post("/api/testtype", {"val": unique("page")}).json()["id"] for _ in range(3)]
    first = client.get(f"/api/testtype?limit=2&after={ids[0] - 1}").json()
    assert [row["id"] for row in first] == ids[:2]
    rest = client.get(f"/api/testtype?limit=2&after={ids[1]}").json()
    assert rest[0]["id"] == ids[2]


def test_pages_of_large_rows_stop_at_the_byte_budget_and_continue_with_after(client, stack):
    """Rows of 200 KB: a page of 1,000 would be 200 MB; the server stops at
    its byte budget (4 MiB by default), says where to go on (Link rel=next,
    the same `after=` as a full page), and following the links reaches every
    row exactly once."""
    marker = unique("big")
    stack.psql(f"insert into testtype (val) select '{marker}-' || n || '-' || repeat('x', 200000)"
               " from generate_series(1, 60) n")
    try:
        expected = [int(i) for i in stack.psql("select id from testtype order by id").split()]
        seen, pages, path = [], 0, "/api/testtype?limit=1000"
        while path:
            response = client.get(path, timeout=60)
            assert response.status == 200, response
            assert len(response.body) <= (4 << 20) + 300_000, "a page stops at about its byte budget"
            page = response.json()
            seen += [row["id"] for row in page]
            pages += 1
            link = response.headers.get("link")
            if link:
                target, _, relation = link.partition(";")
                assert relation.strip() == 'rel="next"', link
                path = target.strip().strip("<>")
                assert path.startswith("/api/testtype?limit=1000&after="), link
                assert path.endswith(f"after={page[-1]['id']}"), (link, page[-1]["id"])
            else:
                assert len(page) < 1000, "a full page says where the next one starts"
                path = None
        assert pages >= 3, f"{pages} pages: the byte budget did not cut any"
        assert seen == expected, "every row once, in key order"
    finally:
        stack.psql(f"delete from testtype where val like '{marker}-%'")


def expect_error(response, status, code):
    assert response.status == status, response
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"]


def test_malformed_json(client):
    expect_error(client.post("/api/testtype", '{"val": ', headers={"Content-Type": "application/json"}), 400, "invalid_json")
    expect_error(client.post("/api/testtype", b'{"val": "\xff"}', headers={"Content-Type": "application/json"}), 400, "invalid_json")
    expect_error(client.post("/api/testtype", "[1, 2]", headers={"Content-Type": "application/json"}), 422, "invalid_body")
    deep = "[" * 5000 + "]" * 5000
    expect_error(client.post("/api/testtype", deep, headers={"Content-Type": "application/json"}), 400, "invalid_json")


def test_missing_and_unknown_fields(client, stack):
    before = stack.psql("select count(*) from testtype").strip()
    expect_error(client.post("/api/testtype", {}), 422, "missing_field")
    expect_error(client.post("/api/testtype", {"val": None}), 422, "missing_field")
    expect_error(client.post("/api/testtype", {"val": "x", "nope": 1}), 422, "unknown_column")
    row_id = client.post("/api/testtype", {"val": "keep"}).json()["id"]
    expect_error(client.put(f"/api/testtype/{row_id}", {}), 422, "missing_field")
    expect_error(client.patch(f"/api/testtype/{row_id}", {}), 422, "no_fields")
    assert client.get(f"/api/testtype/{row_id}").json()["val"] == "keep"
    assert int(stack.psql("select count(*) from testtype").strip()) == int(before) + 1


def test_unknown_ids_tables_and_methods(client):
    expect_error(client.get("/api/testtype/999999999"), 404, "not_found")
    expect_error(client.get("/api/testtype/abc"), 404, "not_found")
    expect_error(client.put("/api/testtype/999999999", {"val": "x"}), 404, "not_found")
    expect_error(client.delete("/api/testtype/999999999"), 404, "not_found")
    expect_error(client.get("/api/nosuchtable"), 404, "unknown_table")
    expect_error(client.get("/api/pg_authid"), 404, "unknown_table")
    expect_error(client.request("PATCH", "/api/testtype", {"val": "x"}), 405, "method_not_allowed")
    expect_error(client.request("OPTIONS", "/api/testtype/1"), 405, "method_not_allowed")
    expect_error(client.post("/api/testtype", "val=x", headers={"Content-Type": "text/plain"}), 415, "unsupported_media_type")
    expect_error(client.put("/api/changes", {"subscriptions": [{"table": "testtype"}]}), 405, "method_not_allowed")
    expect_error(client.post("/api/changes", "cursor=x", headers={"Content-Type": "application/x-www-form-urlencoded"}), 415, "unsupported_media_type")
    expect_error(client.get("/api/testtype/1/extra"), 404, "not_found")
    expect_error(client.get("/api/"), 404, "not_found")


def test_sql_injection_text_is_only_ever_data(client, stack):
    count_before = stack.psql("select count(*) from testtype").strip()
    hostile = "'); drop table testtype; --"
    created = client.post("/api/testtype", {"val": hostile})
    assert created.status == 201 and created.json()["val"] == hostile
    expect_error(client.get("/api/testtype;drop%20table%20testtype"), 404, "unknown_table")
    expect_error(client.get("/api/testtype/1%20or%201=1"), 404, "not_found")
    expect_error(client.post("/api/testtype", {"val": "x", 'val" = 1; drop table testtype; --': 1}), 422, "unknown_column")
    expect_error(client.get("/api/testtype?after=1)%20or%20(1=1&limit=5"), 422, "invalid_value")
    expect_error(client.get("/api/changes?table=testtype%27;drop%20table%20testtype;--"), 404, "unknown_table")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    expect_error(client.post("/api/testtype", "val=x&val%22%3Bdrop+table+testtype--=1", headers=form), 422, "unknown_column")
    expect_error(client.put("/api/testtype", "id=1%3Bdrop+table+testtype&val=x", headers=form), 404, "not_found")
    expect_error(client.delete("/api/testtype", body="id=1+or+1%3D1", headers=form), 404, "not_found")
    # Filters never reach SQL: a value is only compared with event rows, and a
    # column name only looked up in the table's description.
    poll = client.post("/api/changes", {"subscriptions": [{"table": "testtype", "where": {"val": "1' or '1'='1"}}]})
    assert poll.status == 200
    expect_error(client.post("/api/changes", {"subscriptions": [{"table": "testtype", "where": {"id; drop table testtype": "1"}}]}), 400, "unknown_column")
    expect_error(client.post("/api/changes", {"subscriptions": [{"table": "testtype\"; drop table testtype; --"}]}), 404, "unknown_table")
    assert int(stack.psql("select count(*) from testtype").strip()) == int(count_before) + 1


def test_body_over_the_limit(client, stack):
    count_before = stack.psql("select count(*) from testtype").strip()
    huge = {"val": "x" * (2 * 1024 * 1024)}
    expect_error(client.post("/api/testtype", huge), 413, "body_too_large")
    assert stack.psql("select count(*) from testtype").strip() == count_before


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "100001"])
def test_bad_limits(client, limit):
    expect_error(client.get(f"/api/testtype?limit={limit}"), 400, "invalid_limit")


def test_a_repeated_collection_read_sees_every_write_from_any_connection(client, stack):
    """Workers keep first pages checked against the table's version: writes by
    psql, not through the API, must show on the very next read."""
    for n in range(3):
        assert client.post("/api/testtype", {"val": f"page-{n}"}).status == 201
    first = client.get("/api/testtype?limit=7").json()
    assert client.get("/api/testtype?limit=7").json() == first
    target = first[0]["id"]
    stack.psql(f"update testtype set val = 'changed by psql' where id = {target}")
    for _ in range(4):  # every worker and thread, not just one
        assert client.get("/api/testtype?limit=7").json()[0]["val"] == "changed by psql"
    stack.psql(f"delete from testtype where id = {target}")
    for _ in range(4):
        assert target not in [row["id"] for row in client.get("/api/testtype?limit=7").json()]


def test_collection_validators_and_304(client, stack):
    first = client.get("/api/testtype?limit=5")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert etag.startswith('"') and modified.endswith("GMT")
    again = client.get("/api/testtype?limit=5", headers={"If-None-Match": etag})
    assert again.status == 304 and again.body == b"" and again.headers["etag"] == etag
    assert again.headers["pbp-cursor"]
    # A date is not a validator here (a second's resolution, statement time
    # rather than commit order): the page is sent again, with the cursor.
    by_date = client.get("/api/testtype?limit=5", headers={"If-Modified-Since": modified})
    assert by_date.status == 200 and by_date.json() == first.json() and by_date.headers["pbp-cursor"]
    # Any write, by any connection, changes the validator.
    stack.psql("insert into testtype (val) values ('validator')")
    changed = client.get("/api/testtype?limit=5", headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["etag"] != etag


def test_openapi_document_describes_the_api(client):
    response = client.get("/api/openapi.json")
    assert response.status == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    # A path pair per watched table, named by its own key column.
    assert set(document["paths"]) >= {"/api/testtype", "/api/testtype/{id}", "/api/todo", "/api/todo/{todo_id}",
                                      "/api/changes", "/api/_tables",
                                      "/api/openapi.json"}
    todo = document["paths"]["/api/todo"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert todo["required"] == ["title"] and todo["additionalProperties"] is False
    assert todo["properties"]["done"] == {"type": "boolean"}
    assert todo["properties"]["due"]["format"] == "date" and "null" in todo["properties"]["due"]["type"]
    assert todo["properties"]["tags"]["type"] == ["array", "null"]
    put = document["paths"]["/api/testtype/{id}"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert put["required"] == ["val"]
    row = document["paths"]["/api/todo/{todo_id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(row["required"]) == {"todo_id", "title", "done", "due", "tags", "meta", "mtime"}
    assert row["properties"]["todo_id"]["readOnly"] is True
    errors = document["paths"]["/api/todo"]["post"]["responses"]["422"]["content"]["application/json"]["schema"]
    assert "missing_field" in errors["allOf"][1]["properties"]["error"]["enum"]
    tables = [s["properties"]["table"]["const"] for s in document["paths"]["/api/changes"]["post"]["requestBody"]
              ["content"]["application/json"]["schema"]["properties"]["subscriptions"]["items"]["oneOf"]]
    assert tables == ["notes", "testtype", "todo"]
    from openapi_spec_validator import validate
    validate(document)
    # Every $ref resolves inside the document.
    refs = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    refs.append(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    assert refs
    for ref in refs:
        node = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]


@pytest.mark.parametrize("path, status", [("/api/testtype?limit=1", 200), ("/api/no_such_table", 404),
                                          ("/api/testtype?limit=0", 400), ("/", 200)])
def test_answers_carry_the_security_headers(client, path, status):
    """The /api/ location sets headers of its own, which in nginx replaces the
    server's list: the security headers must be named there again."""
    response = client.get(path)
    assert response.status == status
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    if path.startswith("/api/"):
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
        assert response.headers["cache-control"] == "no-cache"
