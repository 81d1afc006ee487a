"""Identity and authorization (issue 15) through nginx: bearer tokens decide the
role each request acts as, PostgreSQL's grants and row security decide what
it may read and write, and a bad token is never taken for anonymous."""

import sys
import uuid
from pathlib import Path

import pytest

from conftest import Client, temporary_stack

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import mint_token  # noqa: E402


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def secret(stack):
    return mint_token.read_secret(stack.jwt_key_path)


@pytest.fixture(scope="module")
def alice(secret):
    return bearer(mint_token.mint(secret, sub="alice", role="pbp_user"))


@pytest.fixture(scope="module")
def bob(secret):
    return bearer(mint_token.mint(secret, sub="bob", role="pbp_user"))


def body_of(client, path, headers):
    response = client.get(path, headers=headers)
    assert response.status == 200, response
    return response.json()


def test_alice_never_sees_bobs_notes(client, alice, bob):
    mine = client.post("/api/notes", {"body": f"alice's {uuid.uuid4().hex[:8]}"}, headers=alice)
    assert mine.status == 201, mine
    assert mine.json()["owner"] == "alice", "a new note is its writer's"
    his = client.post("/api/notes", {"body": "bob's secret"}, headers=bob)
    assert his.status == 201 and his.json()["owner"] == "bob", his
    bobs = his.json()["id"]

    for _ in range(3):  # the first page is cached: per identity, never across them
        assert {note["owner"] for note in body_of(client, "/api/notes", alice)} == {"alice"}
        assert {note["owner"] for note in body_of(client, "/api/notes", bob)} == {"bob"}
    assert client.get(f"/api/notes/{bobs}", headers=alice).status == 404
    assert client.put(f"/api/notes/{bobs}", {"body": "mine now"}, headers=alice).status == 404
    assert client.patch(f"/api/notes/{bobs}", {"body": "mine now"}, headers=alice).status == 404
    assert client.delete(f"/api/notes/{bobs}", headers=alice).status == 404
    assert client.get(f"/api/notes/{bobs}", headers=bob).json()["body"] == "bob's secret", "untouched"
    # Alice may not write a note in Bob's name: row security's WITH CHECK.
    forged = client.post("/api/notes", {"body": "from bob, honest", "owner": "bob"}, headers=alice)
    assert forged.status == 403 and forged.json()["error"] == "forbidden", forged


def test_anonymous_may_not_touch_notes_but_keeps_testtype(client):
    for response in (client.get("/api/notes"), client.post("/api/notes", {"body": "x"})):
        assert response.status == 403 and response.json()["error"] == "forbidden", response
    assert client.post("/api/testtype", {"val": "anonymous"}).status == 201
    poll = client.post("/api/changes", {"subscriptions": [{"table": "notes"}], "timeout": 0})
    assert poll.status == 403 and poll.json()["error"] == "forbidden", poll


def notes_cursor(client, headers) -> str:
    response = client.get("/api/notes?limit=1", headers=headers)
    assert response.status == 200, response
    return response.headers["pbp-cursor"]


def events_until(client, headers, cursor, done, seconds=20):
    """Polls as `headers` from `cursor` until `done(events)`; returns the events and the raw bodies."""
    import time
    events, bodies = [], b""
    deadline = time.monotonic() + seconds
    while not done(events):
        assert time.monotonic() < deadline, f"timed out; got {events}"
        response = client.post("/api/changes", {"cursor": cursor, "subscriptions": [{"table": "notes"}],
                                                "timeout": 2}, headers=headers, timeout=10)
        assert response.status == 200, response
        bodies += response.body
        events += response.json()["events"]
        cursor = response.json()["cursor"]
    return events, bodies


def test_events_obey_the_row_rule(client, stack, alice, bob):
    tag = uuid.uuid4().hex[:8]
    alices, bobs = notes_cursor(client, alice), notes_cursor(client, bob)
    stack.psql(f"insert into notes (owner, body) values ('alice', 'a-{tag}'), ('bob', 'secret-{tag}')")
    seen, raw = events_until(client, alice, alices, lambda evs: any(e["new"] and e["new"]["body"] == f"a-{tag}"
                                                                    for e in evs))
    assert f"secret-{tag}".encode() not in raw, "Alice received Bob's note"
    key = next(e["key"] for e in seen if e["new"] and e["new"]["body"] == f"a-{tag}")
    alices = notes_cursor(client, alice)

    # A note moved from Alice to Bob reaches Alice as a removal with no content, Bob as an arrival.
    stack.psql(f"update notes set owner = 'bob', body = 'moved-{tag}' where id = {key}")
    seen, raw = events_until(client, alice, alices, lambda evs: any(e["key"] == key for e in evs))
    [removal] = [e for e in seen if e["key"] == key]
    assert removal["op"] == "delete" and removal["new"] is None and removal["old"]["owner"] == "alice", removal
    assert f"moved-{tag}".encode() not in raw and b'"bob"' not in raw, "the new row's content leaked to Alice"
    seen, raw = events_until(client, bob, bobs, lambda evs: any(e["key"] == key for e in evs))
    [arrival] = [e for e in seen if e["key"] == key]
    assert arrival["op"] == "insert" and arrival["old"] is None and arrival["new"]["body"] == f"moved-{tag}"
    assert f"a-{tag}".encode() not in raw, "what the row was while Alice's leaked to Bob"

    # A note that changes its key and its owner at once: Alice drops it under the key she has, Bob gets it
    # under its new key, and neither learns the other's side.
    [mine] = stack.psql(f"insert into notes (owner, body) values ('alice', 'b-{tag}') returning id").split()
    mine = int(mine)
    alices, bobs = notes_cursor(client, alice), notes_cursor(client, bob)
    stack.psql(f"update notes set id = id + 1000000, owner = 'bob', body = 'rekeyed-{tag}' where id = {mine}")
    moved = mine + 1000000
    seen, raw = events_until(client, alice, alices, lambda evs: any(e["key"] == mine and e["op"] == "delete"
                                                                    for e in evs))
    assert all(e["op"] == "delete" and e["new"] is None for e in seen), seen
    assert f"rekeyed-{tag}".encode() not in raw and b'"bob"' not in raw, "the new row's content leaked to Alice"
    seen, raw = events_until(client, bob, bobs, lambda evs: any(e["key"] == moved for e in evs))
    assert [(e["op"], e["key"], e["old"]) for e in seen if e["op"] != "delete"] == [("insert", moved, None)], seen
    assert f"b-{tag}".encode() not in raw, "what the row was while Alice's leaked to Bob"

    # A note too large for NOTIFY comes key-only, judged by the owner it carries.
    bobs = notes_cursor(client, bob)
    stack.psql(f"insert into notes (owner, body) values ('alice', repeat('x', 9000) || '{tag}')")
    stack.psql(f"insert into notes (owner, body) values ('bob', 'after-{tag}')")
    seen, _ = events_until(client, bob, bobs, lambda evs: any(e["new"] and e["new"].get("body") == f"after-{tag}"
                                                               for e in evs))
    assert not any(e.get("truncated") for e in seen), f"Bob got Alice's big note: {seen}"


@pytest.mark.parametrize("kind", ["forged", "expired", "not_yet_valid", "alg_none", "wrong_key", "without_expiry",
                                  "garbage", "basic"])
def test_a_bad_token_is_refused_never_taken_for_anonymous(client, secret, kind):
    tokens = {
        "forged": lambda: mint_token.forged(mint_token.mint(secret, sub="alice"), sub="bob"),
        "expired": lambda: mint_token.expired(secret, sub="alice"),
        "not_yet_valid": lambda: mint_token.not_yet_valid(secret, sub="alice"),
        "alg_none": lambda: mint_token.alg_none(sub="alice"),
        "wrong_key": lambda: mint_token.wrong_key(sub="alice"),
        "without_expiry": lambda: mint_token.without_expiry(secret, sub="alice"),
    }
    if kind == "garbage":
        headers = {"Authorization": "Bearer not.a.token"}
    elif kind == "basic":
        headers = {"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="}
    else:
        headers = bearer(tokens[kind]())
    for response in (client.get("/api/testtype?limit=1", headers=headers),
                     client.post("/api/testtype", {"val": "never"}, headers=headers),
                     client.post("/api/changes", {"subscriptions": [{"table": "testtype"}], "timeout": 0},
                                 headers=headers)):
        assert response.status == 401, (kind, response)
        assert response.json()["error"] == "invalid_token", response
        assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"'), response.headers


def test_a_role_the_token_may_not_use_is_forbidden(client, secret):
    for role in ("postgres", "pbp_notifyd", "no_such_role"):
        headers = bearer(mint_token.mint(secret, sub="mallory", role=role))
        response = client.get("/api/testtype?limit=1", headers=headers)
        assert response.status == 403 and response.json()["error"] == "forbidden", (role, response)


def test_a_token_without_a_role_acts_as_the_default_token_role(client, secret):
    headers = bearer(mint_token.mint(secret, sub="carol", role=None))
    created = client.post("/api/notes", {"body": "carol's"}, headers=headers)
    assert created.status == 201 and created.json()["owner"] == "carol", created


def test_polls_are_authenticated_afresh(client, secret, alice):
    assert client.post("/api/changes", {"subscriptions": [{"table": "testtype"}], "timeout": 0},
                       headers=alice).status == 200
    short = bearer(mint_token.mint(secret, sub="alice", ttl=-60))  # expired a minute ago
    assert client.post("/api/changes", {"subscriptions": [{"table": "testtype"}], "timeout": 0},
                       headers=short).status == 401


def test_without_an_anonymous_role_a_token_is_needed():
    with temporary_stack("no-anonymous", anonymous_role=None) as stack:
        client = Client(stack.port)
        response = client.get("/api/testtype?limit=1")
        assert response.status == 401 and response.json()["error"] == "unauthorized", response
        assert response.headers["www-authenticate"] == "Bearer"
        secret = mint_token.read_secret(stack.jwt_key_path)
        assert client.get("/api/testtype?limit=1", headers=bearer(mint_token.mint(secret, sub="dave"))).status == 200


def test_one_pooled_connection_keeps_nothing_of_a_signed_in_request():
    """With one worker thread, every request below shares one PostgreSQL
    connection, which rests as the anonymous role between requests (its
    requests then need no setup): a signed-in request, one refused by
    PostgreSQL, and the status page (the login role) leave it anonymous."""
    with temporary_stack("one-connection", workers=1, threads=1) as stack:
        client = Client(stack.port, stack.status_port)
        secret = mint_token.read_secret(stack.jwt_key_path)
        alice = bearer(mint_token.mint(secret, sub="alice", role="pbp_user"))
        ungranted = bearer(mint_token.mint(secret, sub="mallory", role="postgres"))
        note = client.post("/api/notes", {"body": "alice's, on the one connection"}, headers=alice)
        assert note.status == 201, note
        path = f"/api/notes/{note.json()['id']}"

        def anonymous_is_still_anonymous():
            for response in (client.get(path), client.get("/api/notes")):
                assert response.status == 403 and response.json()["error"] == "forbidden", response
            assert client.get("/api/testtype?limit=1").status == 200

        anonymous_is_still_anonymous()
        for _ in range(3):
            assert client.get(path, headers=alice).status == 200
            anonymous_is_still_anonymous()
        refused = client.get("/api/notes", headers=ungranted)
        assert refused.status == 403 and refused.json()["error"] == "forbidden", refused
        anonymous_is_still_anonymous()
        assert client.operators.get("/api/_status").status == 200
        anonymous_is_still_anonymous()
        assert client.get(path, headers=alice).json()["owner"] == "alice"
