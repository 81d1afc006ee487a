// browser.mjs: one simulated browser with one tab, running the page's own
// modules: a TabSync in mode 'single' (static/tabs.js, with its Poller from
// static/poller.js) whose one member is made by static/watch.js over the
// page's api (static/api.js, a fresh module instance per page load, as a
// browser loads the page anew) and static/replica.js. Opening the page does
// what app.js's start does: sync.start(), then the view's member, retried
// until its table's key is known. Closing it fires 'pagehide', on which the
// page's own handler shuts the tab down.
//
// What the harness counts it only observes: calls into the api object the
// page is given, the member's load(), the replica's change notifications and
// watch.js's onApply. The view kinds are the page's (a table: watchTable; a
// row: watchRow) and one more, 'group' (the rows with a given `grp`): the
// page has no such view, so it is watchTable's member with a filter on a
// column other than the key, to exercise the server's and the replica's
// filters on such columns.

import { TabSync } from '../../static/tabs.js';
import { watchTable, watchRow } from '../../static/watch.js';
import { retrying, isAbort } from '../../static/poller.js';
import { BrowserWindow, withBrowser } from './browser_env.mjs';

const API_MODULE = new URL('../../static/api.js', import.meta.url);
let pageLoads = 0;

export const now = () => Number(process.hrtime.bigint()) / 1e6;   // CLOCK_MONOTONIC, as Python's time.monotonic()

const epochOf = (cursor) => String(cursor).split(':')[0];

export class SimulatedBrowser {
  /**
   * view: {table, where, kind: 'table' | 'row' | 'group', token?, rule?}
   * (signed in with `token`, seeing only the rows `rule` allows). onApply(browser,
   * events) sees every batch the page applies.
   */
  constructor({ name, view, baseUrl, seed, onApply = () => {}, onWarning = () => {} }) {
    this.name = name;
    this.view = view;
    this.window = new BrowserWindow({ name, baseUrl, seed });
    this.window.onWarning = onWarning;
    this.onApply = onApply;
    this.sync = null;
    this.member = null;
    this.replica = null;
    this.state = 'connecting';
    this.closed = false;
    this.changes = 0;          // replica notifications that changed a row
    this.lastChange = 0;       // now() of the last one
    this.stats = {
      loads: 0, load_failures: 0, polls: 0, probes: 0, batches: 0, events_received: 0,
      events_applied: 0, truncated_fetched: 0, resets: 0, reloads_other: 0, transient: 0,
    };
    this.log = [];             // [now(), what, detail]: resets, failures
  }

  /** Load the page: its modules, its TabSync, its view. */
  open() {
    return withBrowser(this.window, async () => {
      if (this.closed) return;
      pageLoads += 1;
      const pageApi = await import(`${API_MODULE}?page=${pageLoads}`);
      // Signed in, as the page is after `#token=…`: every call sends it.
      if (this.view.token) pageApi.useToken(this.view.token);
      const api = this._observed(pageApi);
      this.sync = new TabSync({ mode: 'single', api, onStatus: (state) => { this.state = state; } });
      this.sync.start();
      const watched = await retrying(() => this._watch(api), { onFailure: (err) => this._failed('load_failure', err) })
        .catch((err) => { if (!isAbort(err)) this.window.errors.push(`mount: ${err?.stack ?? err}`); return null; });
      if (!watched || this.closed) return;
      this.replica = watched.replica;
      this.replica.subscribe(({ keys }) => {
        if (keys.size) { this.changes += 1; this.lastChange = now(); }
      });
      const member = watched.member;
      const load = member.load;
      member.load = async (signal) => {
        try {
          const snapshot = await load(signal);
          this.stats.loads += 1;
          return snapshot;
        } catch (err) {
          if (!isAbort(err)) this._failed('load_failure', err);
          throw err;
        }
      };
      this.member = this.sync.setMember(member);
    });
  }

  async _watch(api) {
    if (this.closed) throw new DOMException('the page was closed', 'AbortError');
    const { table, where, kind } = this.view;
    const onApply = (events) => {
      this.stats.events_applied += events.length;
      this.onApply(this, events);
    };
    if (kind === 'row') {
      const key = Object.values(where)[0];
      return watchRow(table, key, { api, onApply });
    }
    const watched = await watchTable(table, { api, onApply });
    if (kind === 'group') {
      watched.replica.where = where;
      watched.subscription.where = where;
    }
    return watched;
  }

  /** The page's api, with every call the poller makes counted. */
  _observed(pageApi) {
    const stats = this.stats;
    return {
      ...pageApi,
      pollChanges: async (cursor, subscriptions, options) => {
        if (cursor == null) stats.probes += 1; else stats.polls += 1;
        try {
          const answer = await pageApi.pollChanges(cursor, subscriptions, options);
          if (cursor != null) {
            stats.batches += 1;
            stats.events_received += answer.events.length;
          }
          return answer;
        } catch (err) {
          if (!isAbort(err)) this._pollFailed(err, cursor);
          throw err;
        }
      },
      getRow: async (table, key, options) => {
        stats.truncated_fetched += 1;
        try {
          return await pageApi.getRow(table, key, options);
        } catch (err) {
          if (!isAbort(err)) this._pollFailed(err, null);
          throw err;
        }
      },
    };
  }

  /** Sorted as the poller sorts its failures (409, transient, other). */
  _pollFailed(err, cursor) {
    if (err?.status === 409) {
      this.stats.resets += 1;
      const code = err.body?.error ?? err.code;
      const told = err.body?.cursor ?? null;
      const same = epochOf(told) === epochOf(cursor);
      this.log.push([now(), 'reset', `${code} ${same ? 'same epoch' : 'new epoch'} sent ${cursor} told ${told}`]);
    } else if (err?.transient !== false) {
      this.stats.transient += 1;
      this.log.push([now(), 'transient', `${err?.status ?? 0} ${err?.code ?? err}`]);
    } else {
      this.stats.reloads_other += 1;
      this.log.push([now(), 'reload', `${err.status} ${err.code}: ${err.message}`]);
    }
  }

  _failed(what, err) {
    this.stats.load_failures += 1;
    this.log.push([now(), what, `${err?.status ?? 0} ${err?.code ?? err}`]);
  }

  /** The tab closes (or the page is left): the page's own 'pagehide' handler shuts it down. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.window.dispatch('pagehide', { persisted: false });
    withBrowser(this.window, () => this.window.closeConnections());
  }

  goOffline() { withBrowser(this.window, () => this.window.goOffline()); }

  goOnline() { this.window.goOnline(); }

  get ready() { return Boolean(this.member?.ready); }

  get polling() { return Boolean(this.sync?.poller?.running); }

  get errors() { return this.window.errors; }
}
