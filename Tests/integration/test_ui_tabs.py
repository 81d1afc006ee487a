"""Several tabs of one browser against the real stack: one long-poll for all of
them, a leader that hands over when it closes or crashes, a tab watching one
row, and a row too large for NOTIFY.

The number of long-polls is counted on the server, from nginx's access log
(`$remote_addr [$time_local] "$request" $status $body_bytes_sent
$request_time $msec`): each /api/changes request covers [msec - request_time,
msec], and a line is written only when the request ends. During these tests
only the browser talks to nginx (psql goes straight to PostgreSQL), and each
window starts with the browser on about:blank, so every /api/changes request
in it is the browser's.
"""
import re
import time
import uuid

import pytest
from selenium.common.exceptions import WebDriverException

from test_ui import (  # noqa: F401  (driver is a fixture)
    TESTTYPE, VAL, api_requests, assert_no_js_errors, detail_box, detail_len, detail_value, driver, row_id,
    row_text, scalar, status, wait, wait_live,
)

TAKEOVER_LIMIT = 1.0   # seconds: the bound for another tab to take over
ACCESS_LINE = re.compile(
    r'^(?P<addr>\S+) \[(?P<time>[^\]]*)\] "(?P<method>\S+) (?P<uri>\S+)[^"]*" '
    r'(?P<status>\d{3}) (?P<bytes>\d+) (?P<rt>\d+\.\d+) (?P<msec>\d+\.\d+)$')


# ---- helpers ------------------------------------------------------------------------

def url(stack, path=""):
    return stack.base_url.rstrip("/") + "/" + path


def blank(driver):
    """One window, on about:blank: no page of ours runs (its polls are closed)."""
    handles = driver.window_handles
    for h in handles[1:]:
        driver.switch_to.window(h)
        driver.close()
    driver.switch_to.window(handles[0])
    driver.get("about:blank")


def open_tabs(driver, stack, paths):
    """Open one tab per path (the first in the current window); return their handles."""
    handles = []
    for i, path in enumerate(paths):
        if i:
            driver.switch_to.new_window("tab")
        driver.get(url(stack, path))
        wait_live(driver)
        handles.append(driver.current_window_handle)
    return handles


def sync_state(driver):
    return driver.execute_script("return pbp.sync.debugState();")


def role(driver):
    return driver.execute_script("return pbp.sync.role;")


def roles(driver, handles):
    out = {}
    for h in handles:
        driver.switch_to.window(h)
        out[h] = role(driver)
    return out


def wait_one_leader(driver, handles, timeout=5):
    """Until exactly one tab leads and every other follows (none claiming); its handle."""
    deadline = time.monotonic() + timeout
    while True:
        states = {}
        for h in handles:
            driver.switch_to.window(h)
            s = sync_state(driver)
            states[h] = (s["role"], s["claiming"])
        leaders = [h for h, (r, _) in states.items() if r == "leader"]
        settled = all(r in ("leader", "follower") and not c for r, c in states.values())
        if len(leaders) == 1 and settled:
            return leaders[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"not exactly one leader after {timeout} s: {states}")
        time.sleep(0.05)


def in_every_tab(driver, handles, cond, message, timeout=10):
    for h in handles:
        driver.switch_to.window(h)
        wait(driver, cond, f"{message} (tab {handles.index(h) + 1} of {len(handles)})", timeout)


def polls(stack, since):
    """The /api/changes requests nginx logged that were running at some point after `since`:
    [(start, end, status)] in seconds since the epoch."""
    out = []
    for line in (stack.nginx_dir / "access.log").read_text().splitlines():
        m = ACCESS_LINE.match(line)
        if not m or not m["uri"].startswith("/api/changes"):
            continue
        # In whole milliseconds, as nginx measures them (floats would blur touching ends).
        end_ms = round(float(m["msec"]) * 1000)
        start_ms = end_ms - round(float(m["rt"]) * 1000)
        start, end = start_ms / 1000, end_ms / 1000
        if end >= since:
            out.append((start, end, int(m["status"])))
    return sorted(out)


def max_overlap(intervals):
    """The most intervals open at one instant (touching ends do not overlap)."""
    edges = sorted([(s, 1) for s, _, _ in intervals] + [(e, -1) for _, e, _ in intervals],
                   key=lambda x: (x[0], x[1]))   # at a tie, an end comes before a start
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


def min_gap_ms(intervals):
    """The smallest time between one poll's end and the next one's start (negative: overlap)."""
    gaps = [(b[0] - a[1]) * 1000 for a, b in zip(intervals, intervals[1:])]
    return min(gaps) if gaps else None


def assert_one_at_a_time(found):
    """Exactly one poll at a time, provably: nginx logs whole milliseconds, so a
    poll that starts in the millisecond its predecessor ended might still have
    overlapped it; each must start at least 1 ms after the one before ended."""
    assert max_overlap(found) == 1, f"the server saw {max_overlap(found)} polls from this browser at once: {found}"
    gap = min_gap_ms(found)
    assert gap is None or gap >= 1, f"a poll started {gap:.0f} ms after the previous one ended: {found}"


def wait_logged(stack, since, count, message, timeout=10):
    deadline = time.monotonic() + timeout
    while len(found := polls(stack, since)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{message}: {len(found)} of {count} polls logged: {found}")
        time.sleep(0.05)
    return found


def insert(stack, val):
    return int(stack.psql("insert into testtype (val) values ('" + val.replace("'", "''") + "') returning id").split()[0])


def report(request, text):
    """Figures worth reading in the test output (pytest -rP, or the terminal on failure)."""
    print(f"[{request.node.name}] {text}")


# ---- 1. three tabs see every change ---------------------------------------------------------

def test_three_tabs_see_insert_update_delete(driver, stack):
    blank(driver)
    tabs = open_tabs(driver, stack, [TESTTYPE] * 3)
    leader = wait_one_leader(driver, tabs)

    val = f"three-tabs-{uuid.uuid4()}"
    key = insert(stack, val)
    in_every_tab(driver, tabs, lambda d: row_id(d, val) == str(key), "a psql INSERT did not appear")
    stack.psql(f"update testtype set val = '{val}-updated' where id = {key}")
    in_every_tab(driver, tabs, lambda d: row_text(d, key) == f"{val}-updated", "a psql UPDATE did not appear")
    stack.psql(f"delete from testtype where id = {key}")
    in_every_tab(driver, tabs, lambda d: row_text(d, key) is None, "a psql DELETE did not remove the row")

    # Only the leader polled; the followers got the changes from it.
    for h in tabs:
        driver.switch_to.window(h)
        made = api_requests(driver, "/api/changes")
        if h == leader:
            assert made > 0, "the leader does not poll"
        else:
            assert made == 0, f"a follower made {made} requests to /api/changes"
            assert sync_state(driver)["member"]["received"] >= 3, "a follower did not receive the events"
        assert status(driver) == ["live", "live"]
        assert_no_js_errors(driver)


# ---- 2. one long-poll at a time, counted by the server -----------------------------------------

def test_server_sees_one_long_poll_for_three_tabs(driver, stack, request):
    blank(driver)
    t0 = time.time()
    tabs = open_tabs(driver, stack, [TESTTYPE] * 3)
    wait_one_leader(driver, tabs)
    keys = []
    for i in range(4):
        # Each insert answers the parked poll, so that it ends and is logged.
        val = f"one-poll-{i}-{uuid.uuid4()}"
        keys.append(insert(stack, val))
        in_every_tab(driver, tabs, lambda d, v=val: row_id(d, v), f"insert {i} did not reach every tab")
    found = wait_logged(stack, t0, 4, "the answered polls were not logged")
    overlap = max_overlap(found)
    report(request, f"{len(found)} polls ended in the window; max overlap {overlap}; "
                    f"smallest gap between polls {min_gap_ms(found):.1f} ms")
    assert len(found) >= 3, f"too few polls seen: {found}"
    assert_one_at_a_time(found)
    for k in keys:
        stack.psql(f"delete from testtype where id = {k}")


def test_resent_polls_never_overlap(driver, stack, request):
    """A new subscription makes the leader abort its poll and send it again from
    the same cursor. The browser closes the aborted request's connection a few
    milliseconds after fetch() gives up on it, so the leader waits before it
    re-sends: the server must never see the two at once."""
    blank(driver)
    t0 = time.time()
    leader, follower = open_tabs(driver, stack, [TESTTYPE] * 2)
    assert wait_one_leader(driver, [leader, follower]) == leader
    resends = 20
    for i in range(resends):
        # Each row the follower turns to is a subscription the poll lacks.
        target = 10**9 + i
        driver.switch_to.window(follower)
        driver.execute_script("location.hash = arguments[0];", f"#/testtype/{target}")
        driver.switch_to.window(leader)
        wait(driver, lambda d, t=target: any(s.get("where") == {"id": t} for s in
                                             (sync_state(d)["poll"] or {}).get("subscriptions", [])),
             f"the leader did not re-send its poll for the follower's subscription #{i}")
    sent = sync_state(driver)["sent"]
    resent = [(a, b) for a, b in zip(sent, sent[1:]) if a["end"] == "resent"]
    assert len(resent) >= resends, f"only {len(resent)} polls were re-sent: {sent}"
    assert all(a["cursor"] == b["cursor"] for a, b in resent), f"a poll was re-sent from another cursor: {sent}"

    val = f"after-resends-{uuid.uuid4()}"
    key = insert(stack, val)   # answers the last poll, so that it is logged too
    wait(driver, lambda d: row_id(d, val), "the leader missed a change after re-sending")
    found = wait_logged(stack, t0, resends + 1, "the re-sent polls were not logged")
    aborted = [p for p in found if p[2] == 499]
    gaps = [(b[0] - a[1]) * 1000 for a, b in zip(found, found[1:]) if a[2] == 499]
    report(request, f"{len(aborted)} polls aborted and re-sent; gap from each to its successor "
                    f"{min(gaps):.0f}..{max(gaps):.0f} ms; max overlap {max_overlap(found)}")
    assert len(aborted) >= resends, found
    assert_one_at_a_time(found)
    stack.psql(f"delete from testtype where id = {key}")


# ---- 3. the leader goes away: another takes over within a second, nothing is missed --------------

def leave(driver, how):
    if how == "close":
        driver.close()
        return
    try:
        driver.execute_cdp_cmd("Page.crash", {})   # the renderer dies: no pagehide, no goodbye
    except WebDriverException:
        pass                                       # chromedriver reports the crash it caused


@pytest.mark.parametrize("mode, how", [("", "close"), ("", "crash"), ("?tabs=storage", "close")],
                         ids=["weblocks-close", "weblocks-crash", "localstorage-close"])
def test_leader_leaves_and_another_takes_over(driver, stack, request, mode, how):
    blank(driver)
    t0 = time.time()
    tabs = open_tabs(driver, stack, [mode + TESTTYPE] * 3)
    leader = wait_one_leader(driver, tabs)
    rest = [h for h in tabs if h != leader]
    before = f"before-{how}-{uuid.uuid4()}"
    insert(stack, before)
    in_every_tab(driver, tabs, lambda d: row_id(d, before), "a change before the hand-over did not arrive")

    driver.switch_to.window(leader)
    gone_at = time.time()
    leave(driver, how)
    # A change made while nobody holds the poll must not be lost.
    during = f"during-{how}-{uuid.uuid4()}"
    insert(stack, during)
    new_leader = wait_one_leader(driver, rest, timeout=5)
    driver.switch_to.window(new_leader)
    took_over_at = driver.execute_script(
        "return pbp.sync.roleHistory.filter(r => r.role === 'leader').at(-1).at;") / 1000
    takeover = took_over_at - gone_at
    first_poll = wait(driver, lambda d: (s := sync_state(d)["sent"]) and s[0]["at"] / 1000, "the new leader does not poll")
    report(request, f"takeover {takeover * 1000:.0f} ms after the leader {'closed' if how == 'close' else 'crashed'}, "
                    f"its first poll {(first_poll - gone_at) * 1000:.0f} ms after")
    assert takeover < TAKEOVER_LIMIT, f"the new leader took {takeover:.3f} s to take over"

    in_every_tab(driver, rest, lambda d: row_id(d, during), "the change made during the hand-over was lost")
    after = f"after-{how}-{uuid.uuid4()}"
    insert(stack, after)
    in_every_tab(driver, rest, lambda d: row_id(d, after), "a change after the hand-over did not arrive")
    for h in rest:
        driver.switch_to.window(h)
        assert status(driver) == ["live", "live"]
        assert_no_js_errors(driver)

    # The old leader's poll and the new leader's never ran at once on the server.
    found = wait_logged(stack, t0, 3, "the polls around the hand-over were not logged")
    report(request, f"polls: {len(found)}, max overlap {max_overlap(found)}, smallest gap {min_gap_ms(found):.1f} ms")
    assert_one_at_a_time(found)
    if how == "crash":
        driver.switch_to.window(leader)
        driver.close()
        driver.switch_to.window(new_leader)
    stack.psql(f"delete from testtype where val in ('{before}', '{during}', '{after}')")


def test_localstorage_election_does_not_end_with_two_leaders(driver, stack, request):
    """Without Web Locks, tabs claim a lease in localStorage. Make them all claim
    at once (the lease vanishes, as when a leader closes) while the leader is
    still there: they must settle on one leader, and stay on one."""
    blank(driver)
    tabs = open_tabs(driver, stack, ["?tabs=storage" + TESTTYPE] * 3)
    wait_one_leader(driver, tabs)
    for round_ in range(3):
        # Removing the key fires 'storage' in the other tabs, which claim at once.
        driver.switch_to.window(tabs[round_ % 3])
        driver.execute_script("localStorage.removeItem('pbp-leader:lease');")
        wait_one_leader(driver, tabs)
    t0 = time.time()
    val = f"storage-{uuid.uuid4()}"
    key = insert(stack, val)
    in_every_tab(driver, tabs, lambda d: row_id(d, val), "after the contest a change did not reach every tab")
    assert len([r for r in roles(driver, tabs).values() if r == "leader"]) == 1
    found = wait_logged(stack, t0, 1, "the poll answered after the contest was not logged")
    assert_one_at_a_time(found)
    stack.psql(f"delete from testtype where id = {key}")


# ---- 4. a tab watching one row ---------------------------------------------------------------

def replica_keys(driver):
    return driver.execute_script("return [...pbp.replica.rows.keys()];")


def applied_keys(driver):
    return driver.execute_script("return pbp.applied.map(e => String(e.key));")


def test_row_view_gets_only_its_row_through_the_one_poll(driver, stack, request):
    watched = insert(stack, f"watched-{uuid.uuid4()}")
    other = insert(stack, f"other-{uuid.uuid4()}")
    blank(driver)
    t0 = time.time()
    # The row tab opens first and leads: the table tab's subscription must reach its poll.
    row_tab, table_tab = open_tabs(driver, stack, [f"#/testtype/{watched}", TESTTYPE])
    assert wait_one_leader(driver, [row_tab, table_tab]) == row_tab

    driver.switch_to.window(row_tab)
    want = [{"table": "testtype"}, {"table": "testtype", "where": {"id": watched}}]
    poll = wait(driver, lambda d: (p := sync_state(d)["poll"]) and sorted(p["subscriptions"], key=str) == sorted(want, key=str) and p,
                "the leader's poll does not carry both tabs' subscriptions")
    # It re-sent its poll for the new subscription from the same cursor.
    sent = sync_state(driver)["sent"]
    assert any(s["end"] == "resent" for s in sent), f"the poll was not re-sent: {sent}"
    resent = [s for s in sent if s["end"] == "resent"][-1]
    assert resent["cursor"] == sent[sent.index(resent) + 1]["cursor"], f"re-sent from another cursor: {sent}"

    # A change to the watched row reaches both tabs.
    stack.psql(f"update testtype set val = 'watched-changed' where id = {watched}")
    in_every_tab(driver, [row_tab, table_tab],
                 lambda d: d.execute_script("return pbp.replica.get(arguments[0])?.val;", str(watched)) == "watched-changed",
                 "a change to the watched row did not reach both tabs")
    driver.switch_to.window(row_tab)
    wait(driver, lambda d: detail_value(d).text == "watched-changed", "the row view did not show the change")

    # Changes to other rows reach the table tab only.
    stack.psql(f"update testtype set val = 'other-changed' where id = {other}")
    fresh = f"fresh-{uuid.uuid4()}"
    fresh_key = insert(stack, fresh)
    driver.switch_to.window(table_tab)
    wait(driver, lambda d: row_text(d, other) == "other-changed", "the table tab missed a change to another row")
    wait(driver, lambda d: row_id(d, fresh) == str(fresh_key), "the table tab missed an insert")
    driver.switch_to.window(row_tab)
    assert replica_keys(driver) == [str(watched)]
    assert set(applied_keys(driver)) == {str(watched)}, "the row tab was handed other rows' events"
    assert sync_state(driver)["member"]["received"] == 1

    # Deleted: the row view says so; the table drops the row.
    stack.psql(f"delete from testtype where id = {watched}")
    wait(driver, lambda d: d.find_element("id", "detail-badge").text == "deleted", "the row view did not say 'deleted'")
    gone = driver.find_element("id", "detail-gone")
    assert gone.is_displayed() and "This row was deleted at" in gone.text, gone.text
    assert not driver.find_element("id", "detail-form").is_displayed(), "a deleted row can still be edited"
    driver.switch_to.window(table_tab)
    wait(driver, lambda d: row_text(d, watched) is None, "the table tab kept the deleted row")
    assert api_requests(driver, "/api/changes") == 0, "the table tab polled on its own"

    found = wait_logged(stack, t0, 4, "the polls were not logged")
    report(request, f"polls: {len(found)} (statuses {[s for _, _, s in found]}), max overlap {max_overlap(found)}, "
                    f"smallest gap {min_gap_ms(found):.1f} ms")
    assert_one_at_a_time(found)
    assert 499 in [s for _, _, s in found], "the re-sent poll's predecessor was not closed"
    stack.psql(f"delete from testtype where id in ({other}, {fresh_key})")


def test_row_view_edit_delete_and_in_place_navigation(driver, stack):
    key = insert(stack, f"edit-me-{uuid.uuid4()}")
    blank(driver)
    table_tab, row_tab = open_tabs(driver, stack, [TESTTYPE] * 2)

    # The second tab switches to the row's own view in place (#/testtype/N).
    driver.switch_to.window(row_tab)
    driver.find_element("css selector", f'#rows tr[data-id="{key}"] a.row-link').click()
    wait(driver, lambda d: d.find_element("id", "detail-badge").text == "watching", "the row link did not open the row view")
    assert driver.current_url.endswith(f"#/testtype/{key}")
    assert replica_keys(driver) == [str(key)]
    driver.switch_to.window(table_tab)
    wait(driver, lambda d: any(s.get("where") == {"id": key} for s in (sync_state(d)["poll"] or {}).get("subscriptions", [])) or
         role(d) == "follower", "the row subscription did not reach the leader")

    # Edit through the row view: Enter saves.
    driver.switch_to.window(row_tab)
    box = detail_box(driver)
    box.clear()
    box.send_keys("edited-in-row-view\n")
    wait(driver, lambda d: detail_value(d).text == "edited-in-row-view", "the edit did not show")
    assert scalar(stack.psql(f"select count(*) from testtype where id = {key} and val = 'edited-in-row-view'")) == 1
    driver.switch_to.window(table_tab)
    wait(driver, lambda d: row_text(d, key) == "edited-in-row-view", "the table tab did not get the edit")

    # Delete through the row view.
    driver.switch_to.window(row_tab)
    driver.find_element("id", "detail-delete").click()
    wait(driver, lambda d: d.find_element("id", "detail-badge").text == "deleted", "the row view did not say 'deleted'")
    assert "deleted from this tab" in driver.find_element("id", "detail-gone").text
    assert scalar(stack.psql(f"select count(*) from testtype where id = {key}")) == 0
    driver.switch_to.window(table_tab)
    wait(driver, lambda d: row_text(d, key) is None, "the table tab kept the row deleted in the other tab")

    # Back to the table, in place.
    driver.switch_to.window(row_tab)
    driver.find_element("id", "detail-back").click()
    wait(driver, lambda d: d.find_element("id", "table-view").is_displayed(), "the back link did not show the table")
    wait_live(driver)
    val = f"after-back-{uuid.uuid4()}"
    new_key = insert(stack, val)
    in_every_tab(driver, [table_tab, row_tab], lambda d: row_id(d, val), "after going back a change did not arrive")
    for h in (table_tab, row_tab):
        driver.switch_to.window(h)
        assert_no_js_errors(driver)
    stack.psql(f"delete from testtype where id = {new_key}")


# ---- 5. a row too large for NOTIFY ---------------------------------------------------------------

def test_100kb_row_arrives_in_full(driver, stack):
    blank(driver)
    tabs = open_tabs(driver, stack, [TESTTYPE] * 2)
    key = int(stack.psql("insert into testtype (val) values (repeat('x', 100000)) returning id").split()[0])
    in_every_tab(driver, tabs, lambda d: d.execute_script(
        "const tr = document.querySelector(`#rows tr[data-id=\"${arguments[0]}\"]`);"
        "return tr && tr.querySelector(arguments[1]).textContent.length;", str(key), VAL) == 100000,
        "the 100 KB row did not arrive in full")
    for h in tabs:
        driver.switch_to.window(h)
        assert driver.execute_script("return pbp.replica.get(arguments[0]).val;", str(key)) == "x" * 100000
        # Shown clamped, with its length, not as a page of x's.
        cell = driver.find_element("css selector", f'#rows tr[data-id="{key}"] {VAL}')
        assert cell.get_attribute("data-len") == "100,000 characters"
        assert cell.size["height"] < 150, f"the long value is not clamped: {cell.size}"
    driver.switch_to.window(tabs[0])
    wait(driver, lambda d: not d.find_elements("css selector", ".flash"), "the change highlight never ended", timeout=5)
    stack.artifacts_dir.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(stack.artifacts_dir / "ui-long-value.png"))
    # Its own view shows it whole too.
    driver.get(url(stack, f"#/testtype/{key}"))
    wait(driver, lambda d: len(detail_value(d).get_attribute("textContent")) == 100000,
         "the row view did not show the 100 KB value")
    assert detail_len(driver).text == "100,000 characters"
    stack.psql(f"delete from testtype where id = {key}")
    driver.switch_to.window(tabs[1])
    wait(driver, lambda d: row_text(d, key) is None, "the big row was not removed")
    assert_no_js_errors(driver)


# ---- TRUNCATE ------------------------------------------------------------------------------------

def test_truncate_empties_every_tab(driver, stack):
    key = insert(stack, f"before-truncate-{uuid.uuid4()}")
    blank(driver)
    table_tab, row_tab = open_tabs(driver, stack, [TESTTYPE, f"#/testtype/{key}"])
    driver.switch_to.window(table_tab)
    wait(driver, lambda d: row_text(d, key) is not None, "the row is not in the table tab")

    stack.psql("truncate testtype")
    wait(driver, lambda d: d.execute_script("return pbp.replica.size;") == 0 and d.find_element("id", "empty").is_displayed(),
         "TRUNCATE did not empty the table tab")
    assert driver.find_element("id", "count").text == "0 rows"
    driver.switch_to.window(row_tab)
    wait(driver, lambda d: d.find_element("id", "detail-badge").text == "deleted", "TRUNCATE did not reach the row tab")
    assert driver.find_element("id", "detail-gone").text.startswith("The table was emptied (TRUNCATE) at ")

    val = f"after-truncate-{uuid.uuid4()}"
    new_key = insert(stack, val)
    driver.switch_to.window(table_tab)
    wait(driver, lambda d: row_id(d, val) == str(new_key), "a row inserted after TRUNCATE did not appear")
    for h in (table_tab, row_tab):
        driver.switch_to.window(h)
        assert_no_js_errors(driver)
    stack.psql(f"delete from testtype where id = {new_key}")
