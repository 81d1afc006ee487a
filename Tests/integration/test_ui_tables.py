"""The page serves any table: the list of the tables the API serves, and each
table's views built from GET /api/_tables, tested in Chromium on `todo`
(bigint identity key `todo_id`, text, boolean, date, text[], jsonb) and
`testtype`; and one long-poll for tabs showing different tables.

What the page sends is recorded in the page (its fetch wrapped, the request
still made), so that "only what changed" and "refused before sending" are
seen as the server would see them; what is stored is read with psql.
"""
import json
import time
import uuid

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from test_ui import (  # noqa: F401  (driver is a fixture)
    api_requests, assert_no_js_errors, driver, open_page, status, wait, wait_live,
)
from test_ui_tabs import assert_one_at_a_time, blank, open_tabs, report, sync_state, wait_logged, wait_one_leader

TODO_COLUMNS = ["todo_id", "title", "done", "due", "tags", "meta", "mtime"]


# ---- helpers ------------------------------------------------------------------------

def todo_row(stack, key):
    """The stored row as row_to_json writes it, or None."""
    out = stack.psql(f"select row_to_json(t) from todo t where todo_id = {int(key)}").strip()
    return json.loads(out) if out else None


def insert_todo(stack, title, extra=""):
    """A todo made with psql; `extra`: more `, column = value` pairs as SQL."""
    cols, vals = ["title"], ["'" + title.replace("'", "''") + "'"]
    for pair in filter(None, (p.strip() for p in extra.split(";"))):
        c, v = pair.split("=", 1)
        cols.append(c.strip())
        vals.append(v.strip())
    return int(stack.psql(f"insert into todo ({', '.join(cols)}) values ({', '.join(vals)}) returning todo_id").split()[0])


def record_writes(driver):
    """From now on, window.__sent lists the page's writes: [{method, path, body}]."""
    driver.execute_script("""
        window.__sent = [];
        window.__fetchBeforeRecording ??= window.fetch;
        const real = window.__fetchBeforeRecording;
        window.fetch = function (input, init) {
            const url = new URL(typeof input === 'string' ? input : input.url, location.href);
            const method = ((init && init.method) || 'GET').toUpperCase();
            if (!['GET', 'HEAD'].includes(method) && url.pathname !== '/api/changes') {
                window.__sent.push({method, path: url.pathname, body: init && init.body ? JSON.parse(init.body) : null});
            }
            return real.apply(this, arguments);
        };
    """)


def sent(driver):
    return driver.execute_script("return window.__sent;")


def cell(driver, key, col):
    return driver.find_element(By.CSS_SELECTOR, f'#rows tr[data-id="{key}"] td[data-col="{col}"]')


def cell_text(driver, key, col):
    return driver.execute_script(
        "const td = document.querySelector(`#rows tr[data-id=\"${arguments[0]}\"] td[data-col=\"${arguments[1]}\"]`);"
        "return td ? td.textContent : null;", str(key), col)


def is_null(el):
    return bool(el.find_elements(By.CSS_SELECTOR, ":scope > .null"))


def row_with(driver, col, text):
    """The data-id of the row whose `col` cell reads `text`, or None."""
    return driver.execute_script(
        "const tr = [...document.querySelectorAll('#rows tr[data-id]')]"
        "  .find(tr => tr.querySelector(`td[data-col=\"${arguments[0]}\"]`)?.textContent === arguments[1]);"
        "return tr ? tr.dataset.id : null;", col, text)


def set_input(driver, el, value):
    """Sets an input's value as a person would (a date input's text depends on the locale)."""
    driver.execute_script(
        "arguments[0].value = arguments[1];"
        "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));"
        "arguments[0].dispatchEvent(new Event('change', {bubbles: true}));", el, value)


def editor(scope, col):
    return scope.find_element(By.CSS_SELECTOR, f'.editor[data-col="{col}"]')


def type_into(el, text):
    el.send_keys(Keys.CONTROL, "a")
    el.send_keys(Keys.DELETE)
    el.send_keys(text)


def fill_list(driver, ed, items):
    """Makes the list editor hold exactly `items`."""
    for button in ed.find_elements(By.CSS_SELECTOR, '[data-action="remove-item"]'):
        button.click()
    add = ed.find_element(By.CSS_SELECTOR, '[data-action="add-item"]')
    for item in items:
        add.click()
        ed.find_elements(By.CSS_SELECTOR, ".list-items li input")[-1].send_keys(item)


def start_edit(driver, key):
    cell(driver, key, "title").find_element(By.XPATH, "..").find_element(By.CSS_SELECTOR, "button[data-action=edit]").click()
    return wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, f'#rows tr[data-id="{key}"].editing'), "Edit did not open the row's editors")


def save_edit(driver, key):
    driver.find_element(By.CSS_SELECTOR, f'#rows tr[data-id="{key}"] button[data-action=save]').click()


def shot(stack, driver, name):
    wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, ".flash"), "the change highlight never ended", timeout=5)
    stack.artifacts_dir.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(stack.artifacts_dir / name))


# ---- the list of tables ------------------------------------------------------------------

def test_the_home_lists_every_table_the_api_serves(driver, stack, client):
    served = client.get("/api/_tables").json()["tables"]
    assert {"todo", "testtype"} <= {t["name"] for t in served}
    driver.get(stack.base_url.rstrip("/") + "/")
    home = driver.find_element(By.ID, "home-view")
    wait(driver, lambda d: home.is_displayed() and d.find_elements(By.CSS_SELECTOR, "#table-list .table-card"),
         "the home did not list the tables")
    cards = driver.find_elements(By.CSS_SELECTOR, "#table-list .table-card")
    assert [c.get_attribute("data-table") for c in cards] == [t["name"] for t in served]
    for c, t in zip(cards, served):
        assert c.find_element(By.CSS_SELECTOR, ".table-key code").text == t["key"]
        assert [li.get_attribute("data-col") for li in c.find_elements(By.CSS_SELECTOR, ".table-columns li")] == \
            [col["name"] for col in t["columns"]]
    title = driver.find_element(By.CSS_SELECTOR, '#table-list [data-table="todo"] [data-col="title"]')
    assert "text" in title.text and "required" in title.text
    assert "nullable" in driver.find_element(By.CSS_SELECTOR, '#table-list [data-table="todo"] [data-col="meta"]').text
    # The navigation names them too, the home marked as where we are.
    nav = [a.get_attribute("data-table") for a in driver.find_elements(By.CSS_SELECTOR, "#table-nav a")]
    assert nav == [""] + [t["name"] for t in served]
    assert driver.find_element(By.CSS_SELECTOR, '#table-nav a[data-table=""]').get_attribute("aria-current") == "page"
    assert not driver.find_element(By.ID, "table-view").is_displayed()
    assert status(driver) == ["idle", "idle"], "a view that watches nothing is not 'connecting' forever"
    assert api_requests(driver, "/api/changes") == 0, "the list of tables polls for nothing"
    shot(stack, driver, "ui-tables-home.png")

    # A table's link opens its view, a column per column.
    driver.find_element(By.CSS_SELECTOR, '#table-list [data-table="todo"] a.table-link').click()
    wait_live(driver)
    assert driver.current_url.endswith("#/todo")
    assert driver.find_element(By.ID, "table-title").text == "todo"
    heads = driver.find_elements(By.CSS_SELECTOR, "#rows thead th[data-col]")
    assert [h.get_attribute("data-col") for h in heads] == TODO_COLUMNS
    assert driver.find_element(By.CSS_SELECTOR, '#table-nav a[data-table="todo"]').get_attribute("aria-current") == "page"
    assert driver.execute_script("return pbp.replica.keyField;") == "todo_id"

    # A table the API does not serve: said so, on the list.
    driver.get(stack.base_url.rstrip("/") + "/#/nosuchtable")
    wait(driver, lambda d: "no table named “nosuchtable”" in d.find_element(By.ID, "home-alert").text,
         "an unknown table was not said to be unknown")
    assert driver.find_elements(By.CSS_SELECTOR, "#table-list .table-card")
    assert_no_js_errors(driver)


# ---- create, with an input that fits each type -------------------------------------------

def test_create_a_todo_with_every_type(driver, stack):
    open_page(driver, stack, "#/todo")
    form = driver.find_element(By.ID, "add-form")
    fields = [f.get_attribute("data-col") for f in form.find_elements(By.CSS_SELECTOR, ".add-field")]
    assert fields == ["title", "done", "due", "tags", "meta"], "the form is not the writable columns"
    kinds = {col: editor(form, col) for col in fields}
    assert kinds["done"].find_element(By.CSS_SELECTOR, "input").get_attribute("type") == "checkbox"
    assert kinds["due"].find_element(By.CSS_SELECTOR, ".edit-input").get_attribute("type") == "date"
    assert kinds["meta"].find_element(By.CSS_SELECTOR, ".edit-input").tag_name == "textarea"
    assert kinds["tags"].find_elements(By.CSS_SELECTOR, ".list-editor")
    # Only the required column is marked; only the nullable ones can be NULL.
    assert [f.get_attribute("data-col") for f in form.find_elements(By.CSS_SELECTOR, ".add-field")
            if f.find_elements(By.CSS_SELECTOR, ".req")] == ["title"]
    assert [c for c in fields if kinds[c].find_elements(By.CSS_SELECTOR, ".null-check")] == ["due", "tags", "meta"]

    record_writes(driver)
    title = f"buy milk {uuid.uuid4().hex[:8]}"
    kinds["title"].find_element(By.CSS_SELECTOR, ".edit-input").send_keys(title)
    kinds["done"].find_element(By.CSS_SELECTOR, "input").click()
    set_input(driver, kinds["due"].find_element(By.CSS_SELECTOR, ".edit-input"), "2026-12-24")
    fill_list(driver, kinds["tags"], ["home", "two words"])
    kinds["meta"].find_element(By.CSS_SELECTOR, "textarea").send_keys('{"prio": 2, "who": ["ann"]}')
    shot(stack, driver, "ui-todo-create-form.png")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    key = wait(driver, lambda d: row_with(d, "title", title), "the todo added through the form did not appear")
    assert sent(driver) == [{"method": "POST", "path": "/api/todo", "body": {
        "title": title, "done": True, "due": "2026-12-24", "tags": ["home", "two words"], "meta": {"prio": 2, "who": ["ann"]}}}]
    stored = todo_row(stack, key)
    assert {k: stored[k] for k in ("title", "done", "due", "tags", "meta")} == {
        "title": title, "done": True, "due": "2026-12-24", "tags": ["home", "two words"], "meta": {"prio": 2, "who": ["ann"]}}
    assert cell(driver, key, "done").find_element(By.CSS_SELECTOR, ".bool").get_attribute("data-value") == "true"
    assert cell_text(driver, key, "due") == "2026-12-24"
    assert [i.text for i in cell(driver, key, "tags").find_elements(By.CSS_SELECTOR, ".item")] == ["home", "two words"]
    assert json.loads(cell_text(driver, key, "meta")) == {"prio": 2, "who": ["ann"]}
    # The form is ready for the next one.
    wait(driver, lambda d: editor(form, "title").find_element(By.CSS_SELECTOR, "input").get_attribute("value") == "",
         "the form was not cleared after Add")
    assert not editor(form, "tags").find_elements(By.CSS_SELECTOR, ".list-items li")

    # Only the title: the other columns get their defaults (done false, the rest NULL).
    only = f"just a title {uuid.uuid4().hex[:8]}"
    editor(form, "title").find_element(By.CSS_SELECTOR, "input").send_keys(only, Keys.ENTER)
    key2 = wait(driver, lambda d: row_with(d, "title", only), "the todo with only a title did not appear")
    assert sent(driver)[-1]["body"] == {"title": only}, "untouched fields must be left to their defaults"
    stored = todo_row(stack, key2)
    assert stored["done"] is False and stored["due"] is None and stored["tags"] is None and stored["meta"] is None
    for col in ("due", "tags", "meta"):
        assert is_null(cell(driver, key2, col)), f"{col} NULL is not shown as NULL"
    assert not is_null(cell(driver, key2, "done"))

    # An empty title is an empty text, not NULL, and is shown apart from NULL.
    editor(form, "title").find_element(By.CSS_SELECTOR, "input").send_keys(Keys.ENTER)
    empty = wait(driver, lambda d: d.execute_script(
        "return [...document.querySelectorAll('#rows tr[data-id]')].map(tr => tr.dataset.id)"
        "  .find(k => !['%s', '%s'].includes(k) && pbp.replica.get(k)?.title === '');" % (key, key2)),
        "the todo with an empty title did not appear")
    assert todo_row(stack, empty)["title"] == ""
    assert cell_text(driver, empty, "title") == "" and not is_null(cell(driver, empty, "title"))
    shot(stack, driver, "ui-todo-table.png")
    stack.psql(f"delete from todo where todo_id in ({key}, {key2}, {empty})")
    assert_no_js_errors(driver)


def test_a_bad_value_is_refused_in_the_page_before_anything_is_sent(driver, stack):
    open_page(driver, stack, "#/todo")
    form = driver.find_element(By.ID, "add-form")
    record_writes(driver)
    title = f"bad json {uuid.uuid4().hex[:8]}"
    editor(form, "title").find_element(By.CSS_SELECTOR, "input").send_keys(title)
    meta = editor(form, "meta")
    area = meta.find_element(By.CSS_SELECTOR, "textarea")
    area.send_keys('{"prio": }')
    # The JSON editor says so as it is typed.
    error = meta.find_element(By.CSS_SELECTOR, ".editor-error")
    wait(driver, lambda d: error.is_displayed() and "not valid JSON" in error.text, "the JSON editor did not flag invalid JSON")
    assert area.get_attribute("aria-invalid") is not None
    shot(stack, driver, "ui-todo-invalid-json.png")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    alert = driver.find_element(By.ID, "alert")
    wait(driver, lambda d: "meta: not valid JSON" in alert.text, "Add with invalid JSON was not refused")
    assert sent(driver) == [], "invalid JSON was sent"
    assert stack.psql(f"select count(*) from todo where title = '{title}'").strip() == "0"
    assert driver.switch_to.active_element == area, "the focus did not go to the field at fault"

    # Corrected, it goes.
    type_into(area, '{"prio": 3}')
    wait(driver, lambda d: not error.is_displayed(), "the JSON error stayed once the JSON was valid")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    key = wait(driver, lambda d: row_with(d, "title", title), "the corrected todo did not appear")
    assert todo_row(stack, key)["meta"] == {"prio": 3}

    # In an edit too: nothing is sent, the row is unchanged.
    record_writes(driver)
    row = start_edit(driver, key)
    meta_area = editor(row, "meta").find_element(By.CSS_SELECTOR, "textarea")
    type_into(meta_area, "{'single': 'quotes'}")
    save_edit(driver, key)
    wait(driver, lambda d: "meta: not valid JSON" in alert.text, "Save with invalid JSON was not refused")
    assert sent(driver) == []
    assert todo_row(stack, key)["meta"] == {"prio": 3}
    assert "editing" in driver.find_element(By.CSS_SELECTOR, f'#rows tr[data-id="{key}"]').get_attribute("class"), \
        "a refused edit must keep what was typed"
    meta_area.send_keys(Keys.ESCAPE)
    stack.psql(f"delete from todo where todo_id = {key}")
    assert_no_js_errors(driver)


# ---- edit each type: a PATCH of only what changed ----------------------------------------

def test_edit_each_type_sends_only_what_changed(driver, stack):
    key = insert_todo(stack, f"edit me {uuid.uuid4().hex[:8]}",
                      "due = '2026-01-02'; tags = '{a,b}'; meta = '{\"n\": 1}'")
    open_page(driver, stack, "#/todo")
    wait(driver, lambda d: cell_text(d, key, "due") == "2026-01-02", "the todo made with psql is not shown")
    record_writes(driver)

    # One column at a time: each PATCH names that column alone.
    steps = [
        ("done", lambda row: editor(row, "done").find_element(By.CSS_SELECTOR, "input").click(), True),
        ("due", lambda row: set_input(driver, editor(row, "due").find_element(By.CSS_SELECTOR, ".edit-input"), "2027-03-04"), "2027-03-04"),
        ("tags", lambda row: fill_list(driver, editor(row, "tags"), ["c"]), ["c"]),
        ("meta", lambda row: type_into(editor(row, "meta").find_element(By.CSS_SELECTOR, "textarea"), '{"n": 2, "deep": {"x": [1, null]}}'),
         {"n": 2, "deep": {"x": [1, None]}}),
        ("title", lambda row: type_into(editor(row, "title").find_element(By.CSS_SELECTOR, ".edit-input"), "edited title"), "edited title"),
    ]
    for col, change, want in steps:
        row = start_edit(driver, key)
        change(row)
        save_edit(driver, key)
        wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, f'#rows tr[data-id="{key}"].editing'),
             f"saving {col} did not end the edit")
        assert sent(driver)[-1] == {"method": "PATCH", "path": f"/api/todo/{key}", "body": {col: want}}, sent(driver)
        wait(driver, lambda d: todo_row(stack, key)[col] == want, f"the edit of {col} did not reach the database")
    stored = todo_row(stack, key)
    assert (stored["done"], stored["due"], stored["tags"], stored["title"]) == (True, "2027-03-04", ["c"], "edited title")
    assert cell_text(driver, key, "title") == "edited title"
    assert [i.text for i in cell(driver, key, "tags").find_elements(By.CSS_SELECTOR, ".item")] == ["c"]

    # Opening the editors and saving without a change sends nothing.
    before = len(sent(driver))
    start_edit(driver, key)
    save_edit(driver, key)
    wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, f'#rows tr[data-id="{key}"].editing'), "an unchanged save did not end the edit")
    assert len(sent(driver)) == before, "a save that changed nothing sent a request"

    stack.psql(f"delete from todo where todo_id = {key}")
    assert_no_js_errors(driver)


def test_a_change_made_elsewhere_while_editing_keeps_what_is_typed(driver, stack):
    key = insert_todo(stack, f"typed over {uuid.uuid4().hex[:8]}")
    open_page(driver, stack, "#/todo")
    wait(driver, lambda d: cell_text(d, key, "title"), "the todo is not shown")
    row = start_edit(driver, key)
    title = editor(row, "title").find_element(By.CSS_SELECTOR, ".edit-input")
    type_into(title, "mine")
    stack.psql(f"update todo set title = 'theirs', done = true where todo_id = {key}")
    hint = cell(driver, key, "title").find_element(By.CSS_SELECTOR, ".edit-hint")
    wait(driver, lambda d: hint.is_displayed() and "theirs" in hint.text, "the edit was not told of the change made elsewhere")
    assert title.get_attribute("value") == "mine", "what was typed was overwritten"
    # A column not typed in follows the change; the key cell keeps its link.
    assert editor(row, "done").find_element(By.CSS_SELECTOR, "input").is_selected()
    assert cell(driver, key, "todo_id").find_element(By.CSS_SELECTOR, "a.row-link").text == str(key)
    record_writes(driver)
    save_edit(driver, key)
    wait(driver, lambda d: cell_text(d, key, "title") == "mine", "the edit typed over a change did not save")
    assert sent(driver)[-1]["body"] == {"title": "mine"}
    stack.psql(f"delete from todo where todo_id = {key}")
    assert_no_js_errors(driver)


def test_a_nullable_column_is_set_to_null_and_back(driver, stack):
    key = insert_todo(stack, f"nullable {uuid.uuid4().hex[:8]}", "due = '2026-05-06'; tags = '{x}'; meta = '[1]'")
    open_page(driver, stack, "#/todo")
    wait(driver, lambda d: cell_text(d, key, "due") == "2026-05-06", "the todo is not shown")
    record_writes(driver)
    row = start_edit(driver, key)
    assert not editor(row, "title").find_elements(By.CSS_SELECTOR, ".null-check"), "a NOT NULL column offers NULL"
    for col in ("due", "tags", "meta"):
        editor(row, col).find_element(By.CSS_SELECTOR, ".null-check").click()
    save_edit(driver, key)
    wait(driver, lambda d: all(is_null(cell(d, key, c)) for c in ("due", "tags", "meta")), "NULL is not shown")
    assert sent(driver)[-1]["body"] == {"due": None, "tags": None, "meta": None}
    stored = todo_row(stack, key)
    assert stored["due"] is None and stored["tags"] is None and stored["meta"] is None

    # And back to a value: the NULL toggle off, a value typed.
    row = start_edit(driver, key)
    ed = editor(row, "due")
    assert ed.find_element(By.CSS_SELECTOR, ".null-check").is_selected()
    ed.find_element(By.CSS_SELECTOR, ".null-check").click()
    set_input(driver, ed.find_element(By.CSS_SELECTOR, ".edit-input"), "2026-07-08")
    save_edit(driver, key)
    wait(driver, lambda d: cell_text(d, key, "due") == "2026-07-08", "the date set again did not show")
    assert sent(driver)[-1]["body"] == {"due": "2026-07-08"}
    assert todo_row(stack, key)["due"] == "2026-07-08"
    stack.psql(f"delete from todo where todo_id = {key}")
    assert_no_js_errors(driver)


# ---- live: a change made with psql shows in its cell -------------------------------------

def json_or_none(text):
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def test_a_psql_change_shows_live_in_the_right_cell(driver, stack):
    key = insert_todo(stack, f"live {uuid.uuid4().hex[:8]}")
    other = insert_todo(stack, f"other {uuid.uuid4().hex[:8]}")
    open_page(driver, stack, "#/todo")
    wait(driver, lambda d: cell_text(d, key, "title") and cell_text(d, other, "title"), "the todos are not shown")
    marker = uuid.uuid4().hex
    driver.execute_script("window.__noReload = arguments[0];", marker)
    untouched = {c: cell(driver, key, c).get_attribute("innerHTML") for c in ("title", "due")}
    other_before = cell(driver, other, "meta").get_attribute("innerHTML")
    driver.execute_script("""
        window.__flashed = new Set();
        new MutationObserver((ms) => { for (const m of ms) if (m.target.classList?.contains('flash')) window.__flashed.add(m.target.dataset.id); })
            .observe(document.getElementById('rows'), {attributes: true, attributeFilter: ['class'], subtree: true});
    """)
    stack.psql(f"update todo set done = true, tags = '{{psql,live}}', meta = '{{\"from\": \"psql\"}}' where todo_id = {key}")
    # Until the change arrives the cell shows the old value, NULL, which is not JSON.
    wait(driver, lambda d: json_or_none(cell_text(d, key, "meta")) == {"from": "psql"}, "the psql change to meta did not show")
    assert cell(driver, key, "done").find_element(By.CSS_SELECTOR, ".bool").get_attribute("data-value") == "true"
    assert [i.text for i in cell(driver, key, "tags").find_elements(By.CSS_SELECTOR, ".item")] == ["psql", "live"]
    assert {c: cell(driver, key, c).get_attribute("innerHTML") for c in ("title", "due")} == untouched, "other cells changed"
    assert cell(driver, other, "meta").get_attribute("innerHTML") == other_before, "another row changed"
    wait(driver, lambda d: str(key) in d.execute_script("return [...window.__flashed];"), "the changed row was not highlighted")
    assert str(other) not in driver.execute_script("return [...window.__flashed];"), "an unchanged row was highlighted"

    stack.psql(f"update todo set due = '2030-01-01', meta = null where todo_id = {key}")
    wait(driver, lambda d: cell_text(d, key, "due") == "2030-01-01" and is_null(cell(d, key, "meta")), "a psql NULL did not show")
    stack.psql(f"delete from todo where todo_id in ({key}, {other})")
    wait(driver, lambda d: cell_text(d, key, "title") is None, "the psql DELETE did not remove the row")
    assert driver.execute_script("return window.__noReload;") == marker, "the page was reloaded"
    assert_no_js_errors(driver)


# ---- one row of todo --------------------------------------------------------------------

def test_a_todo_row_view(driver, stack):
    key = insert_todo(stack, f"row view {uuid.uuid4().hex[:8]}", "tags = '{one}'; meta = '{\"a\": 1}'")
    open_page(driver, stack, f"#/todo/{key}")
    badge = driver.find_element(By.ID, "detail-badge")
    wait(driver, lambda d: badge.text == "watching", "the todo's row view did not say 'watching'")
    assert driver.find_element(By.ID, "detail-sub").text == '{"table":"todo","where":{"todo_id":%d}}' % key
    assert driver.find_element(By.ID, "detail-key").text == str(key)
    assert driver.find_element(By.ID, "detail-key-name").get_attribute("textContent").startswith("todo_id")
    shown = [e.get_attribute("data-col") for e in driver.find_elements(By.CSS_SELECTOR, "#detail-fields [data-col]")]
    assert shown == TODO_COLUMNS
    value = lambda col: driver.find_element(By.CSS_SELECTOR, f'#detail-fields [data-col="{col}"] dd')  # noqa: E731
    assert is_null(value("due"))
    assert [i.text for i in value("tags").find_elements(By.CSS_SELECTOR, ".item")] == ["one"]
    editing = [e.get_attribute("data-col") for e in driver.find_elements(By.CSS_SELECTOR, "#detail-form .edit-field")]
    assert editing == ["title", "done", "due", "tags", "meta"]
    form = driver.find_element(By.ID, "detail-form")
    meta = editor(form, "meta").find_element(By.CSS_SELECTOR, "textarea")
    assert json.loads(meta.get_attribute("value")) == {"a": 1}
    shot(stack, driver, "ui-todo-row.png")

    # Edit: only what changed is sent.
    record_writes(driver)
    due = editor(form, "due")
    assert due.find_element(By.CSS_SELECTOR, ".null-check").is_selected(), "a NULL date is not shown as NULL in its editor"
    assert not due.find_element(By.CSS_SELECTOR, ".edit-input").is_enabled(), "the input of a column set to NULL takes typing"
    due.find_element(By.CSS_SELECTOR, ".null-check").click()
    set_input(driver, due.find_element(By.CSS_SELECTOR, ".edit-input"), "2026-02-03")
    type_into(meta, '{"a": 2}')
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver, lambda d: value("due").text == "2026-02-03",
         lambda: f"the row view's edit did not show (alert: {driver.find_element(By.ID, 'detail-alert').text!r}, sent {sent(driver)})")
    assert sent(driver) == [{"method": "PATCH", "path": f"/api/todo/{key}", "body": {"due": "2026-02-03", "meta": {"a": 2}}}]
    assert todo_row(stack, key)["meta"] == {"a": 2}

    # Invalid JSON is refused here too.
    type_into(meta, "[1, 2")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver, lambda d: "meta: not valid JSON" in d.find_element(By.ID, "detail-alert").text, "invalid JSON was not refused")
    assert len(sent(driver)) == 1
    meta.send_keys(Keys.ESCAPE)
    wait(driver, lambda d: json.loads(meta.get_attribute("value")) == {"a": 2}, "Escape did not put the row's value back")

    # A psql change shows in its field, and in the editors of what is not being typed.
    stack.psql(f"update todo set done = true, tags = null where todo_id = {key}")
    wait(driver, lambda d: is_null(value("tags")), "the psql change did not reach the row view")
    assert value("done").find_element(By.CSS_SELECTOR, ".bool").get_attribute("data-value") == "true"
    assert editor(form, "done").find_element(By.CSS_SELECTOR, "input").is_selected()
    assert editor(form, "tags").find_element(By.CSS_SELECTOR, ".null-check").is_selected()

    # NULL through the row view.
    editor(form, "meta").find_element(By.CSS_SELECTOR, ".null-check").click()
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver, lambda d: is_null(value("meta")), "meta set to NULL did not show")
    assert sent(driver)[-1]["body"] == {"meta": None}
    assert todo_row(stack, key)["meta"] is None

    driver.find_element(By.ID, "detail-delete").click()
    wait(driver, lambda d: badge.text == "deleted", "the row view did not say 'deleted'")
    assert todo_row(stack, key) is None
    assert_no_js_errors(driver)


def test_a_testtype_row_view_edits_by_patch(driver, stack):
    key = int(stack.psql("insert into testtype (val) values ('patch me') returning id").split()[0])
    open_page(driver, stack, f"#/testtype/{key}")
    wait(driver, lambda d: d.find_element(By.ID, "detail-badge").text == "watching", "the row view did not say 'watching'")
    record_writes(driver)
    box = driver.find_element(By.CSS_SELECTOR, '#detail-form [data-col="val"] .edit-input')
    type_into(box, "patched")
    box.send_keys(Keys.ENTER)
    wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, '#detail-fields [data-col="val"] dd').text == "patched", "the edit did not show")
    assert sent(driver) == [{"method": "PATCH", "path": f"/api/testtype/{key}", "body": {"val": "patched"}}]
    assert stack.psql(f"select val from testtype where id = {key}").strip() == "patched"
    stack.psql(f"delete from testtype where id = {key}")
    assert_no_js_errors(driver)


# ---- one long-poll for tabs on different tables ------------------------------------------

def test_one_poll_covers_tabs_on_different_tables(driver, stack, request):
    """One tab on todo, one on testtype, one on a todo row: the leader's one
    POST /api/changes carries all three subscriptions, and each change reaches
    the tabs it concerns."""
    watched = insert_todo(stack, f"watched {uuid.uuid4().hex[:8]}")
    blank(driver)
    t0 = time.time()
    tabs = open_tabs(driver, stack, ["#/todo", "#/testtype", f"#/todo/{watched}"])
    leader = wait_one_leader(driver, tabs)
    want = sorted([{"table": "todo"}, {"table": "testtype"}, {"table": "todo", "where": {"todo_id": watched}}], key=str)
    driver.switch_to.window(leader)
    wait(driver, lambda d: (p := sync_state(d)["poll"]) and sorted(p["subscriptions"], key=str) == want,
         "the leader's poll does not carry the three tabs' subscriptions")
    todo_tab, testtype_tab, row_tab = tabs

    stack.psql(f"update todo set title = 'watched, changed' where todo_id = {watched}")
    val = f"testtype-{uuid.uuid4().hex[:8]}"
    tkey = int(stack.psql(f"insert into testtype (val) values ('{val}') returning id").split()[0])
    other = insert_todo(stack, f"other {uuid.uuid4().hex[:8]}")
    driver.switch_to.window(todo_tab)
    wait(driver, lambda d: cell_text(d, watched, "title") == "watched, changed" and cell_text(d, other, "title"),
         "the todo tab missed a change")
    driver.switch_to.window(testtype_tab)
    wait(driver, lambda d: cell_text(d, tkey, "val") == val, "the testtype tab missed its insert")
    assert driver.execute_script("return [...pbp.replica.rows.values()].every(r => 'val' in r);"), "a todo reached the testtype tab"
    driver.switch_to.window(row_tab)
    wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, '#detail-fields [data-col="title"] dd').text == "watched, changed",
         "the row tab missed its row's change")
    assert {str(k) for k in driver.execute_script("return pbp.applied.map(e => e.key);")} == {str(watched)}, \
        "the row tab was handed other rows' events"

    for h in tabs:
        driver.switch_to.window(h)
        made = api_requests(driver, "/api/changes")
        assert (made > 0) if h == leader else (made == 0), f"tab {tabs.index(h) + 1} made {made} polls (leader: {h == leader})"
        assert_no_js_errors(driver)
    found = wait_logged(stack, t0, 2, "the polls were not logged")
    report(request, f"polls: {len(found)}, statuses {[s for _, _, s in found]}")
    assert_one_at_a_time(found)
    stack.psql(f"delete from todo where todo_id in ({watched}, {other}); delete from testtype where id = {tkey}")
