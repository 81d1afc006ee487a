"""Browser tests of the web UI (static/), driven by headless Chromium.

Needs the `stack` fixture (Tests/integration/conftest.py): `base_url`,
`psql(sql) -> stdout` (a superuser connection of its own) and `artifacts_dir`.
Every wait is explicit; nothing relies on a fixed sleep.
"""
import re
import time
import uuid

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from conftest import Client, temporary_stack

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 10          # seconds: a change made anywhere must reach the page within this
STATES = {"live", "reconnecting", "resyncing", "connecting"}
TESTTYPE = "#/testtype"      # the table most tests watch (the page's home lists the tables)
VAL = 'td[data-col="val"]'   # a row's cell of testtype's `val`


# ---- fixtures & helpers ---------------------------------------------------------

@pytest.fixture(scope="module")
def driver(stack):
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--lang=en-US"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    d.set_page_load_timeout(30)
    d.set_script_timeout(30)
    yield d
    d.quit()


def wait(driver, cond, message, timeout=WAIT):
    """Wait until cond(driver) is truthy and return it; fail with `message` (or what `message()` says then)."""
    def safe(d):
        try:
            return cond(d)
        except StaleElementReferenceException:
            return False
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(safe)
    except TimeoutException:
        raise AssertionError(f"{message() if callable(message) else message} (waited {timeout} s)") from None


def status(driver):
    return driver.execute_script(
        "const s = document.getElementById('status');"
        "return s ? [s.textContent.trim(), s.dataset.state] : [null, null];")


def open_page(driver, stack, query=TESTTYPE):
    # Leave exactly one window open (a multi-tab test may have opened more).
    handles = driver.window_handles
    for h in handles[1:]:
        driver.switch_to.window(h)
        driver.close()
    driver.switch_to.window(handles[0])
    # Going to the address the tab shows already, hash and all, would not load the page again.
    driver.get("about:blank")
    driver.get(stack.base_url.rstrip("/") + "/" + query)
    wait_live(driver)
    record_states(driver)


def wait_live(driver, timeout=WAIT):
    wait(driver, lambda d: status(d) == ["live", "live"],
         "the status indicator never said 'live'", timeout)


def record_states(driver):
    """Keep every state #status goes through in window.__states."""
    driver.execute_script("""
        window.__states = [];
        const el = document.getElementById('status');
        new MutationObserver(() => window.__states.push(el.dataset.state))
            .observe(el, {attributes: true, childList: true, characterData: true, subtree: true});
    """)


def row_id(driver, val):
    """The data-id of the row whose value is exactly `val`, or None."""
    return driver.execute_script(
        "const tr = [...document.querySelectorAll('#rows tr[data-id]')]"
        "  .find(tr => tr.querySelector(arguments[1])?.textContent === arguments[0]);"
        "return tr ? tr.dataset.id : null;", val, VAL)


def row_text(driver, key):
    return driver.execute_script(
        "const tr = document.querySelector(`#rows tr[data-id=\"${arguments[0]}\"]`);"
        "return tr ? tr.querySelector(arguments[1]).textContent : null;", str(key), VAL)


def row_el(driver, key):
    return driver.find_element(By.CSS_SELECTOR, f'#rows tr[data-id="{key}"]')


def add_box(driver, col="val"):
    """The add form's input for column `col`."""
    return driver.find_element(By.CSS_SELECTOR, f'#add-form [data-col="{col}"] .edit-input')


def detail_value(driver, col="val"):
    """The row view's value of column `col`."""
    return driver.find_element(By.CSS_SELECTOR, f'#detail-fields [data-col="{col}"] dd')


def detail_len(driver, col="val"):
    """The row view's "N characters" of text column `col`."""
    return driver.find_element(By.CSS_SELECTOR, f'#detail-fields [data-col="{col}"] .len')


def detail_box(driver, col="val"):
    """The row view's edit input of column `col`."""
    return driver.find_element(By.CSS_SELECTOR, f'#detail-form [data-col="{col}"] .edit-input')


def scalar(out):
    """The single number a `select count(*) …` printed (aligned or -tA output)."""
    for line in out.splitlines():
        if re.fullmatch(r"\s*-?\d+\s*", line):
            return int(line)
    raise AssertionError(f"no number in psql output: {out!r}")


def db_count(stack, key, val=None):
    sql = f"select count(*) from testtype where id = {int(key)}"
    if val is not None:
        sql += " and val = '" + val.replace("'", "''") + "'"
    return scalar(stack.psql(sql))


def psql_insert(stack, val):
    stack.psql("insert into testtype (val) values ('" + val.replace("'", "''") + "')")


def js_errors(driver):
    """Uncaught exceptions and script failures the page logged."""
    bad = []
    for entry in driver.get_log("browser"):
        msg = entry.get("message", "")
        if entry.get("level") == "SEVERE" and "Failed to load resource" not in msg:
            bad.append(msg)
    return bad


def assert_no_js_errors(driver):
    errors = js_errors(driver)
    assert not errors, "the page logged errors:\n" + "\n".join(errors)


def inject_fetch(driver, rules):
    """Make the page's fetch() fail on purpose for matching requests.

    rules: [{"method", "path", "count", "kind": "network"|"response", "status", "body"}]
    """
    driver.execute_script("""
        window.__realFetch ??= window.fetch;
        window.__rules = arguments[0];
        window.fetch = function (input, init) {
            const url = typeof input === 'string' ? input : input.url;
            const method = ((init && init.method) || 'GET').toUpperCase();
            const rule = window.__rules.find(r => r.count > 0 && r.method === method
                && new URL(url, location.href).pathname === r.path);
            if (!rule) return window.__realFetch.apply(this, arguments);
            rule.count -= 1;
            if (rule.kind === 'network') return Promise.reject(new TypeError('Failed to fetch (injected)'));
            return Promise.resolve(new Response(JSON.stringify(rule.body),
                {status: rule.status, headers: {'Content-Type': 'application/json'}}));
        };
    """, rules)


def clear_injection(driver):
    driver.execute_script("window.__rules = [];")


def api_requests(driver, path):
    """How many real requests the page made to `path` (resource timing)."""
    return driver.execute_script(
        "return performance.getEntriesByType('resource')"
        "  .filter(e => new URL(e.name).pathname === arguments[0]).length;", path)


# ---- 1. changes made elsewhere reach the page -------------------------------------------

def test_psql_changes_appear_live(driver, stack):
    open_page(driver, stack)
    marker = uuid.uuid4().hex
    driver.execute_script("window.__noReload = arguments[0];", marker)

    val = f"from-psql-{uuid.uuid4()}"
    psql_insert(stack, val)
    key = wait(driver, lambda d: row_id(d, val), "a row inserted with psql did not appear")
    assert db_count(stack, key, val) == 1

    updated = f"{val}-updated"
    stack.psql(f"update testtype set val = '{updated}' where id = {int(key)}")
    wait(driver, lambda d: row_text(d, key) == updated, "an UPDATE made with psql did not show")

    stack.psql(f"delete from testtype where id = {int(key)}")
    wait(driver, lambda d: row_text(d, key) is None, "a DELETE made with psql did not remove the row")

    assert driver.execute_script("return window.__noReload;") == marker, "the page was reloaded"
    assert status(driver) == ["live", "live"]
    assert_no_js_errors(driver)


def test_a_table_longer_than_one_page_is_shown_whole(driver, stack):
    """The API answers at most 1000 rows a request by default: the page reads
    the collection page after page, not just the first."""
    marker = f"bulk-{uuid.uuid4().hex[:8]}"
    stack.psql(f"insert into testtype (val) select '{marker} ' || g from generate_series(1, 2500) g")
    try:
        open_page(driver, stack)
        expected = scalar(stack.psql("select count(*) from testtype"))
        assert expected >= 2500
        shown = driver.execute_script("return document.querySelectorAll('#rows tr[data-id]').length;")
        assert shown == expected, f"the page shows {shown} of {expected} rows"
        last = scalar(stack.psql(f"select max(id) from testtype where val like '{marker}%'"))
        assert row_text(driver, last) == f"{marker} 2500"
    finally:
        stack.psql(f"delete from testtype where val like '{marker}%'")
    wait(driver, lambda d: not d.execute_script(
        "return [...document.querySelectorAll(`#rows tr[data-id] ${arguments[1]}`)].some(e => e.textContent.startsWith(arguments[0]));",
        marker, VAL), "the deleted rows stayed on the page")
    assert_no_js_errors(driver)


# ---- 2. the page's own form, edit and delete ------------------------------------------------

def test_add_edit_delete_through_the_page(driver, stack):
    open_page(driver, stack)
    val = f"from-ui-{uuid.uuid4()}"
    box = add_box(driver)
    box.clear()
    box.send_keys(val)
    driver.find_element(By.CSS_SELECTOR, "#add-form button[type=submit]").click()
    key = wait(driver, lambda d: row_id(d, val), "a row added through the form did not appear")
    assert db_count(stack, key, val) == 1, "the added row is not in the database"
    wait(driver, lambda d: add_box(d).get_attribute("value") == "",
         "the input was not cleared after Add")

    # Edit with the Edit button; Enter saves.
    edited = f"{val}-edited"
    row_el(driver, key).find_element(By.CSS_SELECTOR, "button[data-action=edit]").click()
    editor = wait(driver, lambda d: row_el(d, key).find_element(By.CSS_SELECTOR, f"{VAL} input"),
                  "Edit did not turn the value into an input")
    assert driver.switch_to.active_element == editor, "the edit input did not get the focus"
    editor.clear()
    editor.send_keys(edited, Keys.ENTER)
    wait(driver, lambda d: row_text(d, key) == edited, "the edited value did not show")
    wait(driver, lambda d: db_count(stack, key, edited) == 1, "the edit did not reach the database")

    # Click the value to edit; Escape cancels and changes nothing.
    row_el(driver, key).find_element(By.CSS_SELECTOR, f"{VAL} .val-text").click()
    editor = wait(driver, lambda d: row_el(d, key).find_element(By.CSS_SELECTOR, f"{VAL} input"),
                  "clicking the value did not start editing")
    editor.send_keys("-not-saved", Keys.ESCAPE)
    wait(driver, lambda d: row_text(d, key) == edited, "Escape did not restore the value")
    assert db_count(stack, key, edited) == 1, "Escape must not save"

    # Delete.
    row_el(driver, key).find_element(By.CSS_SELECTOR, "button[data-action=delete]").click()
    wait(driver, lambda d: row_text(d, key) is None, "the deleted row stayed on the page")
    wait(driver, lambda d: db_count(stack, key) == 0, "the row deleted through the page is still in the database")
    assert_no_js_errors(driver)


# ---- 3. what a person sees --------------------------------------------------------------------

def test_page_looks_right(driver, stack):
    open_page(driver, stack)
    vals = [f"screenshot-{i}-{uuid.uuid4().hex[:8]}" for i in range(3)]
    for v in vals:
        psql_insert(stack, v)
    keys = [wait(driver, lambda d, v=v: row_id(d, v), f"row {v} did not appear") for v in vals]
    try:
        heading = driver.find_element(By.TAG_NAME, "h1")
        assert heading.is_displayed() and heading.text.strip()
        form = driver.find_element(By.ID, "add-form")
        assert form.is_displayed()
        # A field per writable column, named after it, the required one marked.
        label = form.find_element(By.CSS_SELECTOR, '[data-col="val"] label')
        assert label.is_displayed() and label.find_element(By.CSS_SELECTOR, ".field-name").text == "val"
        assert label.find_element(By.CSS_SELECTOR, ".req").text == "required"
        box = add_box(driver)
        assert box.is_displayed() and box.is_enabled()
        assert box.get_attribute("id") == label.get_attribute("for") and box.get_attribute("aria-required") == "true"
        assert [e.get_attribute("data-col") for e in form.find_elements(By.CSS_SELECTOR, "[data-col].add-field")] == ["val"]
        # A column per column, in table order; the key column says so.
        heads = driver.find_elements(By.CSS_SELECTOR, "#rows thead th[data-col]")
        assert [h.get_attribute("data-col") for h in heads] == ["id", "val", "mtime"]
        assert "col-key" in heads[0].get_attribute("class")
        add = form.find_element(By.CSS_SELECTOR, "button[type=submit]")
        assert add.is_displayed() and add.text.strip() == "Add"
        table = driver.find_element(By.ID, "rows")
        assert table.is_displayed() and table.tag_name == "table"
        assert all(row_el(driver, k).is_displayed() for k in keys)
        # Each ID links to that row's own view.
        link = row_el(driver, keys[0]).find_element(By.CSS_SELECTOR, "td.key a")
        assert link.text == keys[0] and link.get_attribute("href").endswith(f"#/testtype/{keys[0]}")
        st = driver.find_element(By.ID, "status")
        assert st.is_displayed() and st.text.strip() in STATES
        assert st.get_attribute("aria-live") == "polite"
        assert driver.find_element(By.ID, "alert").get_attribute("role") == "alert"
        # The status dot has a colour of its own (not the text colour of "connecting").
        dot = driver.execute_script(
            "return getComputedStyle(document.getElementById('status'), '::before').backgroundColor;")
        assert dot and dot not in ("rgba(0, 0, 0, 0)", "transparent")

        # Let the "just changed" highlight fade so the screenshot shows the resting look.
        wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, "#rows tr.flash"),
             "the change highlight never ended", timeout=5)
        stack.artifacts_dir.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(stack.artifacts_dir / "ui.png"))

        # Narrow (phone) width: no sideways scrolling, the form still usable.
        driver.set_window_size(390, 844)
        wait(driver, lambda d: d.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth;"),
            "the page scrolls sideways on a narrow screen", timeout=3)
        assert add_box(driver).is_displayed()
        assert driver.save_screenshot(str(stack.artifacts_dir / "ui-narrow.png"))
    finally:
        driver.set_window_size(1280, 900)
        for k in keys:
            stack.psql(f"delete from testtype where id = {int(k)}")
    for k in keys:
        wait(driver, lambda d, k=k: row_text(d, k) is None, f"row {k} did not go away")
    assert_no_js_errors(driver)


def test_row_view_looks_right(driver, stack):
    val = f"a row to look at {uuid.uuid4().hex[:8]}"
    key = int(stack.psql("insert into testtype (val) values ('" + val + "') returning id").split()[0])
    open_page(driver, stack, f"#/testtype/{key}")
    try:
        badge = driver.find_element(By.ID, "detail-badge")
        wait(driver, lambda d: badge.text == "watching", "the row view did not say 'watching'")
        assert driver.find_element(By.ID, "detail-view").is_displayed()
        assert not driver.find_element(By.ID, "table-view").is_displayed(), "the table shows in the row view"
        assert driver.find_element(By.ID, "detail-title").text == f"Row {key}"
        back = driver.find_element(By.ID, "detail-back")
        assert back.is_displayed() and "All rows of testtype" in back.text
        assert back.get_attribute("href").endswith("#/testtype")
        assert driver.find_element(By.ID, "detail-sub").text == '{"table":"testtype","where":{"id":%d}}' % key
        assert driver.find_element(By.ID, "detail-key").text == str(key)
        assert detail_value(driver).text == val
        assert detail_len(driver).text == f"{len(val)} characters"
        assert detail_value(driver, "mtime").find_element(By.TAG_NAME, "time").text.strip()
        # Every column is shown; only the updatable ones can be edited.
        shown = driver.find_elements(By.CSS_SELECTOR, "#detail-fields [data-col]")
        assert [e.get_attribute("data-col") for e in shown] == ["id", "val", "mtime"]
        label = driver.find_element(By.CSS_SELECTOR, '#detail-form [data-col="val"] label')
        assert label.is_displayed() and label.text == "val"
        box = detail_box(driver)
        assert box.is_displayed() and box.get_attribute("value") == val
        assert box.get_attribute("id") == label.get_attribute("for")
        assert [e.get_attribute("data-col") for e in driver.find_elements(By.CSS_SELECTOR, "#detail-form .edit-field")] == ["val"]
        save = driver.find_element(By.CSS_SELECTOR, "#detail-form button[type=submit]")
        assert save.is_displayed() and save.text == "Save"
        delete = driver.find_element(By.ID, "detail-delete")
        assert delete.is_displayed() and "Delete" in delete.text
        assert not driver.find_element(By.ID, "detail-gone").is_displayed()
        assert status(driver) == ["live", "live"]
        assert driver.title == f"PBP · testtype · row {key}"
        wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, ".flash"), "the change highlight never ended", timeout=5)
        assert driver.save_screenshot(str(stack.artifacts_dir / "ui-detail.png"))

        # Deleted elsewhere: said plainly, the last value kept (dimmed), no more editing.
        stack.psql(f"delete from testtype where id = {key}")
        wait(driver, lambda d: badge.text == "deleted", "the row view did not say 'deleted'")
        gone = driver.find_element(By.ID, "detail-gone")
        assert gone.is_displayed() and gone.text.startswith("This row was deleted at ")
        assert detail_value(driver).text == val, "the last value is not shown"
        assert not box.is_displayed() and not delete.is_displayed(), "a deleted row can still be edited"
        assert driver.save_screenshot(str(stack.artifacts_dir / "ui-detail-deleted.png"))

        # Created again with the same id: it comes back.
        stack.psql(f"insert into testtype (id, val) values ({key}, 'back again')")
        wait(driver, lambda d: badge.text == "watching" and detail_value(d).text == "back again",
             "the row view did not show the row created again")
        assert not gone.is_displayed()
    finally:
        stack.psql(f"delete from testtype where id = {key}")

    # A row that is not there at all.
    open_page(driver, stack, "#/testtype/999999999")
    wait(driver, lambda d: d.find_element(By.ID, "detail-badge").text == "not found", "a missing row did not say 'not found'")
    assert driver.find_element(By.ID, "detail-gone").text.startswith("There is no row 999999999 in testtype.")
    assert not driver.find_element(By.ID, "detail-fields").is_displayed()
    assert_no_js_errors(driver)


# ---- errors and recovery ------------------------------------------------------------------------

def test_api_error_message_is_shown(driver, stack):
    open_page(driver, stack)
    inject_fetch(driver, [{"method": "POST", "path": "/api/testtype", "count": 1, "kind": "response",
                           "status": 503, "body": {"error": "db_unavailable",
                                                   "message": "Database unavailable (injected)"}}])
    box = add_box(driver)
    box.clear()
    box.send_keys("will-fail", Keys.ENTER)
    alert = driver.find_element(By.ID, "alert")
    wait(driver, lambda d: "Database unavailable (injected)" in alert.text, "the API error message was not shown")
    assert alert.is_displayed()
    assert box.get_attribute("value") == "will-fail", "a failed add must keep what was typed"

    # The next successful action clears the message.
    clear_injection(driver)
    val = f"after-error-{uuid.uuid4()}"
    box.clear()
    box.send_keys(val, Keys.ENTER)
    key = wait(driver, lambda d: row_id(d, val), "the row added after an error did not appear")
    wait(driver, lambda d: alert.text.strip() == "", "the error message stayed after a success")
    stack.psql(f"delete from testtype where id = {int(key)}")
    wait(driver, lambda d: row_text(d, key) is None, "the cleanup delete did not show")


def test_reconnects_and_resyncs_without_losing_changes(driver, stack):
    open_page(driver, stack)

    # Network failure on the long-poll: 'reconnecting', and changes made
    # meanwhile arrive once the connection is back.
    inject_fetch(driver, [{"method": "POST", "path": "/api/changes", "count": 10**6, "kind": "network"}])
    first = f"before-outage-{uuid.uuid4()}"
    psql_insert(stack, first)   # ends the parked poll; the next one fails
    wait(driver, lambda d: row_id(d, first), "the row that ended the poll did not appear")
    wait(driver, lambda d: status(d) == ["reconnecting", "reconnecting"], "a failing poll did not show 'reconnecting'")
    during = f"during-outage-{uuid.uuid4()}"
    psql_insert(stack, during)
    clear_injection(driver)
    wait_live(driver, timeout=15)   # backoff is capped at 10 s
    wait(driver, lambda d: row_id(d, during), "a change made during the outage was lost")

    # Reset (409): the page reloads its snapshot, says 'resyncing', then 'live'.
    snapshots = api_requests(driver, "/api/testtype")
    driver.execute_script("window.__states = [];")
    inject_fetch(driver, [{"method": "POST", "path": "/api/changes", "count": 1, "kind": "response",
                           "status": 409, "body": {"error": "reset", "cursor": "injected"}}])
    trigger = f"before-reset-{uuid.uuid4()}"
    psql_insert(stack, trigger)
    wait(driver, lambda d: row_id(d, trigger), "the row before the reset did not appear")
    wait(driver, lambda d: "resyncing" in d.execute_script("return window.__states;"),
         "a 409 reset did not show 'resyncing'")
    wait_live(driver)
    assert api_requests(driver, "/api/testtype") == snapshots + 1, "a reset must reload the snapshot once"
    after = f"after-reset-{uuid.uuid4()}"
    psql_insert(stack, after)
    wait(driver, lambda d: row_id(d, after), "changes after a reset did not arrive")

    keys = [row_id(driver, v) for v in (first, during, trigger, after)]
    for k in keys:
        stack.psql(f"delete from testtype where id = {int(k)}")
    for k in keys:
        wait(driver, lambda d, k=k: row_text(d, k) is None, f"row {k} did not go away")
    assert_no_js_errors(driver)


def test_large_row_arrives_through_truncated_event(driver, stack):
    """A row too big for pg_notify comes as a truncated event; the page fetches it."""
    open_page(driver, stack)
    val = f"big-{uuid.uuid4()}"
    psql_insert(stack, val)
    key = wait(driver, lambda d: row_id(d, val), "the row did not appear")
    stack.psql(f"update testtype set val = repeat('x', 9000) where id = {int(key)}")
    wait(driver, lambda d: row_text(d, key) == "x" * 9000, "a 9000-byte value did not arrive")
    stack.psql(f"delete from testtype where id = {int(key)}")
    wait(driver, lambda d: row_text(d, key) is None, "the big row was not removed")
    assert_no_js_errors(driver)


# ---- a table whose key column is not `id` ------------------------------------------------------

KEYED_SQL = """
create table if not exists keyed (
  code text primary key default 'k' || substr(md5(random()::text), 1, 12),
  val text not null,
  mtime timestamptz not null default clock_timestamp()
);
select pbp_watch('keyed');
grant select, insert, update, delete on keyed to pbp_anon;
"""


@pytest.fixture(scope="module")
def keyed_stack():
    """A stack of its own that serves a second table, keyed by `code` (text)."""
    with temporary_stack("ui-keyed", extra_fcgi_args=["--tables", "testtype,keyed"]) as instance:
        instance.psql(KEYED_SQL)
        # The server reads its catalog of watched tables every few seconds: wait until it serves `keyed`.
        client = Client(instance.port)
        deadline = time.monotonic() + 15
        while "keyed" not in [t["name"] for t in client.get("/api/_tables").json()["tables"]]:
            assert time.monotonic() < deadline, "the server never served the table watched while it ran"
            time.sleep(0.1)
        yield instance


def test_rows_are_kept_by_the_key_column_the_server_names(driver, keyed_stack):
    """Nothing in the page assumes a key column named `id`: the table `keyed`
    is keyed by `code`, which only the server's description says."""
    stack = keyed_stack
    stack.psql("insert into keyed (code, val) values ('alpha', 'first'), ('beta', 'second')")
    open_page(driver, stack, "#/keyed")
    wait(driver, lambda d: row_text(d, "alpha") == "first" and row_text(d, "beta") == "second",
         "the rows of a table keyed by `code` are not shown by their codes")
    assert driver.execute_script("return pbp.replica.keyField;") == "code"
    assert driver.execute_script("return pbp.member.keyField;") == "code"
    assert driver.find_element(By.CSS_SELECTOR, "#rows th.col-key").get_attribute("textContent") == "code"
    link = row_el(driver, "alpha").find_element(By.CSS_SELECTOR, "td.key a")
    assert link.text == "alpha" and link.get_attribute("href").endswith("#/keyed/alpha")

    # The page's own add and delete keep the replica by that key too.
    box = add_box(driver)
    box.clear()
    box.send_keys("added here", Keys.ENTER)
    code = wait(driver, lambda d: row_id(d, "added here"), "a row added through the page did not appear")
    assert code.startswith("k") and stack.psql(f"select val from keyed where code = '{code}'").strip() == "added here"
    assert driver.execute_script("return pbp.replica.get(arguments[0])?.code;", code) == code
    row_el(driver, code).find_element(By.CSS_SELECTOR, "button[data-action=delete]").click()
    wait(driver, lambda d: row_text(d, code) is None, "the row deleted through the page stayed")
    assert stack.psql(f"select count(*) from keyed where code = '{code}'").strip() == "0"

    # One row: subscribed by its code, and the leader's poll asks for exactly that.
    open_page(driver, stack, "#/keyed/alpha")
    badge = driver.find_element(By.ID, "detail-badge")
    wait(driver, lambda d: badge.text == "watching", "the row view of `alpha` did not say 'watching'")
    assert driver.find_element(By.ID, "detail-key").text == "alpha"
    driver.execute_script("pbp.applied.length = 0;")   # what this view is handed from now on
    assert driver.find_element(By.ID, "detail-sub").text == '{"table":"keyed","where":{"code":"alpha"}}'
    state = driver.execute_script("return pbp.sync.debugState();")
    assert state["member"]["keyField"] == "code"
    mine = [e for e in state["registry"] if e["member"] == state["member"]["id"]]
    assert mine and mine[0]["keyField"] == "code", "the member's join did not carry its key column"
    assert state["poll"]["subscriptions"] == [{"table": "keyed", "where": {"code": "alpha"}}]

    # A row too big for NOTIFY comes as a truncated event to every subscription
    # on its table; the leader tells by the member's key column that `beta`'s
    # is not for the watcher of `alpha`.
    stack.psql("update keyed set val = repeat('b', 9000) where code = 'beta'")
    stack.psql("update keyed set val = repeat('a', 9000) where code = 'alpha'")
    wait(driver, lambda d: detail_value(d).get_attribute("textContent") == "a" * 9000,
         "the big update of the watched row did not arrive")
    applied = driver.execute_script("return pbp.applied.map(e => e.key);")
    assert "alpha" in applied and "beta" not in applied, f"the row view was handed another row's event: {applied}"

    # A text key that reads as a number stays the text the server gave: row '007', not 7.
    stack.psql("insert into keyed (code, val) values ('007', 'zeros kept')")
    open_page(driver, stack, "#/keyed/007")
    wait(driver, lambda d: d.find_element(By.ID, "detail-badge").text == "watching", "the row view of `007` did not say 'watching'")
    assert driver.find_element(By.ID, "detail-sub").text == '{"table":"keyed","where":{"code":"007"}}'
    assert detail_value(driver).text == "zeros kept"
    stack.psql("update keyed set val = 'zeros changed' where code = '007'")
    wait(driver, lambda d: detail_value(d).text == "zeros changed", "a change to row `007` did not reach its view")
    assert_no_js_errors(driver)


# ---- several tabs: one long-poll per browser ---------------------------------------------------

def role(driver):
    return driver.execute_script("return document.getElementById('role')?.textContent.trim() || null;")


@pytest.mark.parametrize("mode", ["", "?tabs=storage"], ids=["weblocks", "localstorage"])
def test_tabs_share_one_poll_and_hand_over(driver, stack, mode):
    open_page(driver, stack, mode + TESTTYPE)
    wait(driver, lambda d: role(d) == "leader", "the only tab did not become leader")
    tab_a = driver.current_window_handle

    driver.switch_to.new_window("tab")
    tab_b = driver.current_window_handle
    driver.get(stack.base_url.rstrip("/") + "/" + mode + TESTTYPE)
    wait(driver, lambda d: role(d) == "follower", "a second tab did not become follower")
    wait_live(driver)

    val = f"two-tabs-{uuid.uuid4()}"
    psql_insert(stack, val)
    key = wait(driver, lambda d: row_id(d, val), "the follower did not get a change")
    assert api_requests(driver, "/api/changes") == 0, "a follower must not poll"
    driver.switch_to.window(tab_a)
    wait(driver, lambda d: row_id(d, val) == key, "the leader did not get the change")

    # The leader goes away: the follower takes over and keeps receiving changes.
    driver.close()
    driver.switch_to.window(tab_b)
    wait(driver, lambda d: role(d) == "leader", "the follower did not take over", timeout=5)
    wait_live(driver)
    val2 = f"after-handover-{uuid.uuid4()}"
    psql_insert(stack, val2)
    key2 = wait(driver, lambda d: row_id(d, val2), "changes after the hand-over did not arrive")
    assert api_requests(driver, "/api/changes") > 0, "the new leader does not poll"

    for k in (key, key2):
        stack.psql(f"delete from testtype where id = {int(k)}")
    for k in (key, key2):
        wait(driver, lambda d, k=k: row_text(d, k) is None, f"row {k} did not go away")
    assert_no_js_errors(driver)
