"""The change stream end to end: a row changed by psql on its own connection
reaches a long-poll waiting at nginx, as the right event, with the cursor
advancing; and the poll protocol's edges (no cursor, reset, timeout, filters)."""

import threading
import uuid

import pytest

from conftest import Client, WaitingPoll, caught_up_cursor, wait_for


def snapshot_cursor(client: Client) -> str:
    response = client.get("/api/testtype?limit=1")
    assert response.status == 200, response
    return response.headers["pbp-cursor"]


def seq(cursor: str) -> int:
    return int(cursor.split(":")[1])


def test_psql_insert_update_delete_reach_a_waiting_poll(client, stack):
    cursor = caught_up_cursor(client, [{"table": "testtype"}])
    subscriptions = [{"table": "testtype"}]
    value = f"psql-{uuid.uuid4().hex[:8]}"

    poll = WaitingPoll(client, {"cursor": cursor, "subscriptions": subscriptions})
    poll.assert_waiting()
    row_id = int(stack.psql(f"insert into testtype (val) values ('{value}') returning id").split()[0])
    response = poll.result()
    assert response.status == 200, response
    body = response.json()
    [event] = body["events"]
    assert event["op"] == "insert" and event["table"] == "testtype" and event["key"] == row_id
    assert event["new"]["val"] == value and event["old"] is None
    assert event["matches"] == [0]
    assert seq(body["cursor"]) > seq(cursor) and event["cursor"] == body["cursor"]
    cursor = body["cursor"]

    poll = WaitingPoll(client, {"cursor": cursor, "subscriptions": subscriptions})
    poll.assert_waiting()
    stack.psql(f"update testtype set val = '{value}-2' where id = {row_id}")
    body = poll.result().json()
    [event] = body["events"]
    assert event["op"] == "update" and event["key"] == row_id
    assert event["old"]["val"] == value and event["new"]["val"] == value + "-2"
    assert event["new"]["mtime"] >= event["old"]["mtime"]
    assert seq(body["cursor"]) == seq(cursor) + 1
    cursor = body["cursor"]

    poll = WaitingPoll(client, {"cursor": cursor, "subscriptions": subscriptions})
    poll.assert_waiting()
    stack.psql(f"delete from testtype where id = {row_id}")
    body = poll.result().json()
    [event] = body["events"]
    assert event["op"] == "delete" and event["key"] == row_id
    assert event["new"] is None and event["old"]["val"] == value + "-2"
    assert seq(body["cursor"]) == seq(cursor) + 1


def test_events_already_past_the_cursor_are_answered_at_once(client, stack):
    cursor = snapshot_cursor(client)
    stack.psql("insert into testtype (val) values ('a'), ('b'), ('c')")
    # The three events may reach the worker a moment after the insert returns.
    events = []
    while len(events) < 3:
        body = client.post("/api/changes", {"cursor": cursor, "subscriptions": [{"table": "testtype"}]}).json()
        events += body["events"]
        cursor = body["cursor"]
    assert [e["new"]["val"] for e in events] == ["a", "b", "c"]
    assert [seq(e["cursor"]) for e in events] == sorted(seq(e["cursor"]) for e in events)


def test_get_form_and_row_filter(client, stack):
    watched = int(stack.psql("insert into testtype (val) values ('watched') returning id").split()[0])
    cursor = caught_up_cursor(client, [{"table": "testtype"}])
    result = {}

    def run():
        result["response"] = client.get(f"/api/changes?cursor={cursor}&table=testtype&where.id={watched}", timeout=60)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(0.5)
    assert thread.is_alive()
    stack.psql("insert into testtype (val) values ('other')")
    thread.join(1.0)
    assert thread.is_alive(), f"a change to another row answered a row filter: {result}"
    stack.psql(f"update testtype set val = 'watched-2' where id = {watched}")
    thread.join(10)
    body = result["response"].json()
    assert [(e["key"], e["op"]) for e in body["events"]] == [(watched, "update")]


def test_each_event_says_which_subscriptions_it_matched(client, stack):
    row_id = int(stack.psql("insert into testtype (val) values ('m') returning id").split()[0])
    cursor = caught_up_cursor(client, [{"table": "testtype"}])
    subscriptions = [{"table": "testtype", "where": {"id": row_id + 1000000}},
                     {"table": "testtype"},
                     {"table": "testtype", "where": {"id": row_id}}]
    poll = WaitingPoll(client, {"cursor": cursor, "subscriptions": subscriptions})
    poll.assert_waiting()
    stack.psql(f"update testtype set val = 'm2' where id = {row_id}")
    [event] = poll.result().json()["events"]
    assert event["matches"] == [1, 2]


def test_no_cursor_answers_at_once_with_the_newest(client):
    response = client.post("/api/changes", {"subscriptions": [{"table": "testtype"}]}, timeout=5)
    assert response.status == 200
    body = response.json()
    assert body["events"] == [] and seq(body["cursor"]) >= 0


def test_cursor_of_another_epoch_gets_a_reset(client):
    current = snapshot_cursor(client)
    epoch = current.split(":")[0]
    other = ("1" if epoch[0] != "1" else "2") + epoch[1:]
    response = client.post("/api/changes", {"cursor": f"{other}:1", "subscriptions": [{"table": "testtype"}]})
    assert response.status == 409
    body = response.json()
    assert body["error"] == "reset" and body["cursor"].split(":")[0] == epoch
    # Ahead of this stream in its own epoch: another worker (or, on the wal
    # source, another host) may be there already, so after a short grace the
    # client gets its cursor back, with no events, rather than a reset
    # (test_cluster.py: a host whose notifyd is away).
    future = f"{epoch}:{seq(current) + 1000000}"
    response = client.post("/api/changes", {"cursor": future, "subscriptions": [{"table": "testtype"}]})
    assert response.status == 200, response
    assert response.json() == {"events": [], "cursor": future}


def test_poll_timeout_answers_with_no_events(client):
    cursor = snapshot_cursor(client)
    response = client.post("/api/changes", {"cursor": cursor, "subscriptions": [{"table": "testtype", "where": {"id": -1}}], "timeout": 1}, timeout=10)
    assert response.status == 200
    body = response.json()
    assert body["events"] == [] and seq(body["cursor"]) >= seq(cursor)


@pytest.mark.parametrize("body, code", [
    ({"cursor": "garbage", "subscriptions": [{"table": "testtype"}]}, "invalid_cursor"),
    ({"cursor": "00000000000000000:1", "subscriptions": [{"table": "testtype"}]}, "invalid_cursor"),
    ({"cursor": 5, "subscriptions": [{"table": "testtype"}]}, "invalid_cursor"),
    ({"subscriptions": []}, "invalid_poll"),
    ({"subscriptions": [{"nottable": 1}]}, "invalid_subscription"),
    ({"subscriptions": [{"table": "testtype", "where": [1]}]}, "invalid_subscription"),
    ({"subscriptions": [{"table": "testtype"}] * 1000}, "too_many_subscriptions"),
])
def test_bad_polls(client, body, code):
    response = client.post("/api/changes", body, timeout=5)
    assert response.status == 400, response
    assert response.json()["error"] == code


def test_a_row_too_large_for_notify_arrives_truncated(client, stack):
    cursor = caught_up_cursor(client, [{"table": "testtype"}])
    poll = WaitingPoll(client, {"cursor": cursor, "subscriptions": [{"table": "testtype"}]})
    poll.assert_waiting()
    row_id = int(stack.psql("insert into testtype (val) values (repeat('x', 100000)) returning id").split()[0])
    [event] = poll.result().json()["events"]
    assert event["truncated"] is True and event["key"] == row_id and "new" not in event
    fetched = client.get(f"/api/testtype/{row_id}").json()
    assert len(fetched["val"]) == 100000


def follow(client: Client, cursor: str, subscriptions: list, until) -> tuple[list, list]:
    """Polls from `cursor` on, following each answer's cursor, until an event
    satisfies `until`; returns the events and (cursor seq, event count) per answer."""
    events, answers = [], []
    while True:
        response = client.post("/api/changes", {"cursor": cursor, "subscriptions": subscriptions, "timeout": 20},
                               timeout=30)
        assert response.status == 200, response
        body = response.json()
        assert seq(body["cursor"]) > seq(cursor), "every answer moves the cursor forward"
        events += body["events"]
        answers.append((seq(body["cursor"]), len(body["events"])))
        cursor = body["cursor"]
        if any(until(event) for event in body["events"]):
            return events, answers
        assert len(answers) < 100, answers


def test_a_poll_far_behind_is_answered_in_parts_at_once_and_misses_nothing(client, stack):
    """A worker bounds what it examines for one answer (some 4,000 events here): a poll
    further behind is answered with what it found and the cursor of the last
    event examined, and following the cursors finds every match exactly once."""
    tag = uuid.uuid4().hex[:8]
    cursor = caught_up_cursor(client)
    ids = stack.psql(
        f"insert into testtype (val) select case when n = 20000 then 'last-{tag}' "
        f"when n in (19000, 19500) then 'needle-{tag}' else 'hay-{tag}' end "
        f"from generate_series(1, 20000) n returning id, val").splitlines()
    needles = [int(line.split("|")[0]) for line in ids if line.endswith(f"|needle-{tag}")]
    assert len(needles) == 2
    # Polled only once every worker holds all of them (a poll parked earlier
    # would be answered from each batch as it arrives, not from the ring).
    def workers_hold_them():
        workers = client.operators.get("/api/_status").json()["workers"]
        return all(worker["cursor"] and seq(worker["cursor"]) >= seq(cursor) + 20000 for worker in workers)
    wait_for(workers_hold_them, 60, "every worker to hold the 20,000 events")
    subscriptions = [{"table": "testtype", "where": {"val": f"needle-{tag}"}},
                     {"table": "testtype", "where": {"val": f"last-{tag}"}}]
    events, answers = follow(client, cursor, subscriptions, lambda event: event["matches"] == [1])
    assert [event["key"] for event in events if event["matches"] == [0]] == needles, \
        "each match once, in order, none skipped"
    assert len(answers) >= 3, f"20,000 events were examined for one answer: {answers}"
    assert any(count == 0 for _, count in answers[:-1]), f"no answer came back empty-handed: {answers}"
    # The deletes' events pass too before the next test takes its cursor.
    last = events[-1]["key"]
    stack.psql(f"delete from testtype where val in ('needle-{tag}', 'hay-{tag}', 'last-{tag}')")
    follow(client, events[-1]["cursor"], [{"table": "testtype", "where": {"id": last}}],
           lambda event: event["op"] == "delete")


def test_a_forged_payload_reaches_no_one_and_cannot_set_the_cursor(client, stack):
    """Defence in depth: whatever can NOTIFY on the channel, a worker delivers
    only payloads of the triggers' shape, and the server's cursor is its own."""
    cursor = caught_up_cursor(client)
    poll = WaitingPoll(client, {"cursor": cursor, "subscriptions": [{"table": "testtype"}]})
    poll.assert_waiting()
    forged = ('{"table":"testtype","op":"insert","key":424242,"mtime":"2999-01-01T00:00:00+00:00",'
              '"new":{"id":424242,"val":"forged"},"old":null,"cursor":"ffffffffffffffff:1"}')
    stack.psql(f"select pg_notify('pbp', '{forged}')")
    stack.psql("select pg_notify('pbp', '{\"table\":\"testtype\",\"op\":\"truncate\"}')")
    value = f"real-{uuid.uuid4().hex[:8]}"
    row_id = int(stack.psql(f"insert into testtype (val) values ('{value}') returning id").split()[0])
    body = poll.result().json()
    assert [event["key"] for event in body["events"]] == [row_id], body
    [event] = body["events"]
    assert event["cursor"] == body["cursor"] and not body["cursor"].startswith("ffffffffffffffff")
    status = client.operators.get("/api/_status").json()
    assert "payloads_refused" in status["totals"]
    stack.psql(f"delete from testtype where id = {row_id}")


def test_truncate_is_an_event_too(client, stack):
    cursor = caught_up_cursor(client)
    # NOTIFY is sent on commit only: a rolled-back TRUNCATE says nothing.
    stack.psql("begin; truncate testtype; rollback")
    assert client.post("/api/changes", {"cursor": cursor, "subscriptions": [{"table": "testtype"}], "timeout": 1}).json()["events"] == []
    poll = WaitingPoll(client, {"cursor": cursor, "subscriptions": [{"table": "testtype", "where": {"id": 1}}]})
    poll.assert_waiting()
    stack.psql("truncate testtype")
    [event] = poll.result().json()["events"]
    assert event["op"] == "truncate" and event["table"] == "testtype"
    assert client.get("/api/testtype").json() == []
