"""Signed-in pages in Chromium: Alice's browser with Alice's token and Bob's
with Bob's (two WebDriver sessions), on #/notes, each shows only its owner's
notes, live; a note Alice adds reaches her other tab and never Bob's; a note
psql moves from Alice to Bob leaves her page and appears on his. Two tabs of
one browser with different tokens (sessionStorage is per tab) never share a
poll. A refused token shows as signed out and stops the requests.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from test_ui import CHROMEDRIVER, CHROMIUM, assert_no_js_errors, status, wait, wait_live

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import mint_token  # noqa: E402

BODY = 'td[data-col="body"]'


def new_driver():
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900", "--lang=en-US"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    d.set_page_load_timeout(30)
    d.set_script_timeout(30)
    return d


@pytest.fixture(scope="module")
def alice_browser(stack):
    d = new_driver()
    yield d
    d.quit()


@pytest.fixture(scope="module")
def bob_browser(stack):
    d = new_driver()
    yield d
    d.quit()


def token(stack, sub: str, **options) -> str:
    return mint_token.mint(mint_token.read_secret(stack.jwt_key_path), sub=sub, **options)


def sign_in(driver, stack, sub: str, route: str = "#/notes", new_tab: bool = False, given: str | None = None):
    """Opens `route` with the user's token in the address, as a sign-in link would."""
    if new_tab:
        driver.switch_to.new_window("tab")
    else:
        driver.get("about:blank")
    driver.get(f"{stack.base_url}/{route}&token={given or token(stack, sub)}")
    wait_live(driver)
    return driver.current_window_handle


def identity(driver) -> str:
    return driver.execute_script("return document.getElementById('identity').textContent.trim();")


def bodies(driver) -> set[str]:
    return set(driver.execute_script(
        "return [...document.querySelectorAll('#rows tr[data-id]')].map((tr) => tr.querySelector(arguments[0]).textContent);",
        BODY))


def api_calls(driver) -> int:
    """How many requests the page made to the API (resource timing)."""
    return driver.execute_script(
        "return performance.getEntriesByType('resource').filter((e) => new URL(e.name).pathname.startsWith('/api/')).length;")


def applied(driver, key: int) -> list[str]:
    """The ops of the events this tab applied for note `key` (events, not snapshot reloads)."""
    return driver.execute_script(
        "return pbp.applied.filter((e) => e.table === 'notes' && String(e.key) === String(arguments[0])).map((e) => e.op);", key)


def assert_live_all_along(driver):
    """No reload on the way: every change came as an event (a refused poll would reload instead)."""
    assert status(driver) == ["live", "live"]
    states = driver.execute_script("return pbp.sync.roleHistory.length && document.documentElement.dataset.state;")
    refused = [e["message"] for e in driver.get_log("browser") if "/api/changes" in e["message"]]
    assert not refused, f"polls failed: {refused[:3]} ({states})"


def psql_note(stack, owner: str, body: str) -> int:
    return int(stack.psql(f"insert into notes (owner, body) values ('{owner}', '{body}') returning id").split()[0])


def shot(driver, name: str, stack):
    driver.save_screenshot(str(stack.artifacts_dir / f"ui-auth-{name}.png"))


def test_a_sign_in_link_keeps_the_token_out_of_the_address(alice_browser, stack):
    d = alice_browser
    sign_in(d, stack, "alice")
    assert "token" not in d.current_url and d.current_url.endswith("#/notes"), d.current_url
    assert identity(d) == "signed in as alice"
    assert d.execute_script("return sessionStorage.getItem('pbp:token')").count(".") == 2
    d.refresh()
    wait_live(d)
    assert identity(d) == "signed in as alice", "a reload keeps the tab's token"
    assert_no_js_errors(d)


def test_each_browser_shows_only_its_own_notes_live(alice_browser, bob_browser, stack):
    tag = uuid.uuid4().hex[:8]
    psql_note(stack, "alice", f"alice-first-{tag}")
    psql_note(stack, "bob", f"bob-first-{tag}")
    sign_in(alice_browser, stack, "alice")
    sign_in(bob_browser, stack, "bob")
    assert f"alice-first-{tag}" in bodies(alice_browser) and f"bob-first-{tag}" not in bodies(alice_browser)
    assert f"bob-first-{tag}" in bodies(bob_browser) and f"alice-first-{tag}" not in bodies(bob_browser)
    # Live: notes inserted now arrive, each in its owner's page only.
    alices = psql_note(stack, "alice", f"alice-live-{tag}")
    bobs = psql_note(stack, "bob", f"bob-live-{tag}")
    wait(alice_browser, lambda d: f"alice-live-{tag}" in bodies(d), "Alice's new note did not reach her page")
    wait(bob_browser, lambda d: f"bob-live-{tag}" in bodies(d), "Bob's new note did not reach his page")
    assert applied(alice_browser, alices) == ["insert"] and applied(bob_browser, bobs) == ["insert"], "as events"
    assert applied(alice_browser, bobs) == [] and applied(bob_browser, alices) == []
    assert_live_all_along(alice_browser)
    assert_live_all_along(bob_browser)
    assert not any(b.startswith("bob-") for b in bodies(alice_browser)), bodies(alice_browser)
    assert not any(b.startswith("alice-") for b in bodies(bob_browser)), bodies(bob_browser)
    assert identity(bob_browser) == "signed in as bob"
    shot(alice_browser, "alice", stack)
    shot(bob_browser, "bob", stack)


def test_a_note_alice_adds_reaches_her_other_tab_and_never_bobs(alice_browser, bob_browser, stack):
    tag = uuid.uuid4().hex[:8]
    alices = token(stack, "alice")   # one token: her two tabs share one poll
    first = sign_in(alice_browser, stack, "alice", given=alices)
    second = sign_in(alice_browser, stack, "alice", new_tab=True, given=alices)
    sign_in(bob_browser, stack, "bob")
    alice_browser.switch_to.window(first)
    box = alice_browser.find_element(By.CSS_SELECTOR, '#add-form [data-col="body"] .edit-input')
    box.send_keys(f"added-{tag}")
    alice_browser.find_element(By.CSS_SELECTOR, "#add-form button[type=submit]").click()
    wait(alice_browser, lambda d: f"added-{tag}" in bodies(d), "the note Alice added did not appear in her tab")
    alice_browser.switch_to.window(second)
    wait(alice_browser, lambda d: f"added-{tag}" in bodies(d), "Alice's note did not reach her other tab")
    roles = set()
    for handle in (first, second):
        alice_browser.switch_to.window(handle)
        roles.add(alice_browser.execute_script("return pbp.sync.role;"))
    assert roles == {"leader", "follower"}, "her two tabs of one token share one poll"
    alice_browser.switch_to.window(second)
    assert stack.psql(f"select owner from notes where body = 'added-{tag}'").strip() == "alice"
    # Bob's page is live past that note (his own later one arrives) and never showed it.
    psql_note(stack, "bob", f"bob-after-{tag}")
    wait(bob_browser, lambda d: f"bob-after-{tag}" in bodies(d), "Bob's page is not live")
    assert f"added-{tag}" not in bodies(bob_browser)
    events = bob_browser.execute_script("return pbp.applied.map((e) => e.key);")
    alice_id = int(stack.psql(f"select id from notes where body = 'added-{tag}'").strip())
    assert alice_id not in events, "Bob's tab was handed Alice's event"
    shot(alice_browser, "alice-second-tab", stack)
    alice_browser.close()
    alice_browser.switch_to.window(first)


def test_a_note_moved_from_alice_to_bob_leaves_her_page_and_reaches_his(alice_browser, bob_browser, stack):
    tag = uuid.uuid4().hex[:8]
    note = psql_note(stack, "alice", f"moving-{tag}")
    sign_in(alice_browser, stack, "alice")
    sign_in(bob_browser, stack, "bob")
    assert f"moving-{tag}" in bodies(alice_browser) and f"moving-{tag}" not in bodies(bob_browser)
    stack.psql(f"update notes set owner = 'bob' where id = {note}")
    wait(alice_browser, lambda d: f"moving-{tag}" not in bodies(d), "the moved note stayed on Alice's page")
    wait(bob_browser, lambda d: f"moving-{tag}" in bodies(d), "the moved note did not reach Bob's page")
    assert applied(alice_browser, note) == ["delete"], "a removal event, not a reload"
    # An arrival: an insert, without the row as it was while it was Alice's.
    assert applied(bob_browser, note) == ["insert"]
    assert_live_all_along(alice_browser)
    assert_live_all_along(bob_browser)
    shot(alice_browser, "alice-after-move", stack)
    shot(bob_browser, "bob-after-move", stack)
    assert_no_js_errors(alice_browser)
    assert_no_js_errors(bob_browser)


def test_tabs_of_one_browser_with_different_tokens_never_share_a_poll(alice_browser, stack):
    d = alice_browser
    tag = uuid.uuid4().hex[:8]
    alices = token(stack, "alice")
    alice_tab = sign_in(d, stack, "alice", given=alices)
    bob_tab = sign_in(d, stack, "bob", new_tab=True)
    alice_again = sign_in(d, stack, "alice", new_tab=True, given=alices)
    state = {}
    for handle in (alice_tab, bob_tab, alice_again):
        d.switch_to.window(handle)
        state[handle] = d.execute_script("return pbp.sync.debugState();")
    # Each identity elects its own leader; Bob's tab leads alone and polls with his token.
    assert state[bob_tab]["identity"] not in ("", state[alice_tab]["identity"])
    assert state[alice_again]["identity"] == state[alice_tab]["identity"]
    assert state[bob_tab]["role"] == "leader"
    assert sorted([state[alice_tab]["role"], state[alice_again]["role"]]) == ["follower", "leader"]
    assert {entry["tab"] for entry in state[bob_tab]["registry"]} <= {state[bob_tab]["id"]}
    assert state[bob_tab]["id"] not in {entry["tab"] for entry in state[alice_tab]["registry"]}
    psql_note(stack, "alice", f"split-alice-{tag}")
    psql_note(stack, "bob", f"split-bob-{tag}")
    for handle, mine, theirs in ((alice_tab, "alice", "bob"), (bob_tab, "bob", "alice"), (alice_again, "alice", "bob")):
        d.switch_to.window(handle)
        wait(d, lambda drv: f"split-{mine}-{tag}" in bodies(drv), f"{mine}'s note did not reach {mine}'s tab")
        assert f"split-{theirs}-{tag}" not in bodies(d)
    for handle in (bob_tab, alice_again):
        d.switch_to.window(handle)
        d.close()
    d.switch_to.window(alice_tab)


def test_a_refused_token_signs_the_tab_out_without_retrying_fast(alice_browser, stack):
    d = alice_browser
    d.get("about:blank")
    d.get(f"{stack.base_url}/#/notes&token={mint_token.expired(mint_token.read_secret(stack.jwt_key_path), sub='alice')}")
    wait(d, lambda drv: status(drv)[1] == "signed-out", "an expired token did not show as signed out")
    assert identity(d).startswith("token refused"), identity(d)
    before = api_calls(d)
    time.sleep(3)
    assert api_calls(d) == before, "the page kept asking with a refused token"
    shot(d, "refused", stack)
    d.find_element(By.ID, "sign-out").click()
    wait(d, lambda drv: identity(drv) == "anonymous", "signing out did not forget the token")
    assert d.execute_script("return sessionStorage.getItem('pbp:token')") is None
