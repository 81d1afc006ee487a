// poller.js: talks to the change stream. No DOM, no replica.
//
// A Poller owns one cursor. It loads a snapshot when it has no usable cursor,
// then long-polls POST /api/changes in a loop and hands every batch of events
// (truncated ones already resolved into full rows) to its owner:
//
//   onSnapshot(rows, cursor)  a whole new copy of the table (start or reset)
//   onEvents(events, cursor)  deltas, in commit order; cursor is the new position
//   onStatus(state)           'connecting' | 'live' | 'reconnecting' | 'resyncing'
//
// The cursor only moves after the owner has taken the batch, so a failure at
// any point replays events instead of losing them (applying them is idempotent).

import * as defaultApi from './api.js';

export const BACKOFF_BASE_MS = 250;
export const BACKOFF_CAP_MS = 10000;

/** Exponential backoff with jitter: attempt 1 → about 250 ms, doubling, capped at 10 s. */
export function backoffDelay(attempt, { base = BACKOFF_BASE_MS, cap = BACKOFF_CAP_MS, random = Math.random } = {}) {
  const d = Math.min(cap, base * 2 ** Math.max(0, attempt - 1));
  return Math.min(cap, Math.round(d * (0.5 + random())));
}

const isAbort = (err) => err?.name === 'AbortError';

export class Poller {
  constructor({ table, subscriptions, onSnapshot, onEvents, onStatus, api = defaultApi, pollTimeoutMs = 55000 }) {
    this.table = table;
    this.subscriptions = subscriptions ?? [{ table }];
    this.onSnapshot = onSnapshot;
    this.onEvents = onEvents;
    this.onStatus = onStatus ?? (() => {});
    this.api = api;
    this.pollTimeoutMs = pollTimeoutMs;
    this.cursor = null;
    this.state = 'connecting';
    this.running = false;
    this._controller = null;
    this._wake = null;
    this._onOnline = () => this._wake?.();
  }

  /**
   * Start. With `cursor` (a replica that is already current up to it, e.g. a
   * tab taking over from a leader) polling resumes from there; without one a
   * snapshot is loaded first.
   */
  start({ cursor = null } = {}) {
    if (this.running) return;
    this.running = true;
    this._controller = new AbortController();
    globalThis.addEventListener?.('online', this._onOnline);
    this._loop(cursor).catch((err) => {
      if (!isAbort(err)) console.error('poller stopped by an unexpected error', err);
    });
  }

  stop() {
    if (!this.running) return;
    this.running = false;
    globalThis.removeEventListener?.('online', this._onOnline);
    this._controller.abort();
    this._wake?.();
  }

  _setStatus(state) {
    if (this.state === state) return;
    this.state = state;
    this.onStatus(state);
  }

  /** Sleep that stop() and the browser's 'online' event cut short. */
  _sleep(ms) {
    return new Promise((resolve) => {
      const done = () => { clearTimeout(t); this._wake = null; resolve(); };
      const t = setTimeout(done, ms);
      this._wake = done;
    });
  }

  async _loop(startCursor) {
    const signal = this._controller.signal;
    let needSnapshot = startCursor == null;
    let needProbe = !needSnapshot;     // resuming: check the stream answers before saying "live"
    let failures = 0;                  // consecutive failures, for the backoff
    let resets = 0;                    // consecutive resets (a reset loop must back off too)
    this.cursor = startCursor;
    this._setStatus('connecting');

    while (this.running) {
      try {
        if (needSnapshot) {
          const { rows, cursor } = await this._snapshot(signal);
          if (!this.running) return;
          await this.onSnapshot(rows, cursor);
          this.cursor = cursor;
          needSnapshot = false;
          needProbe = false;
          this._setStatus('live');
        }
        if (needProbe) {
          // Without a cursor /api/changes answers at once: proves the stream is
          // up without waiting out a parked poll. Its cursor is not used.
          await this.api.pollChanges(null, this.subscriptions, { signal, timeoutMs: 15000 });
          needProbe = false;
          this._setStatus('live');
        }
        const res = await this.api.pollChanges(this.cursor, this.subscriptions, { signal, timeoutMs: this.pollTimeoutMs });
        const events = await this._resolve(res.events, signal);
        if (!this.running) return;
        await this.onEvents(events, res.cursor);
        this.cursor = res.cursor;
        failures = 0;
        resets = 0;
        this._setStatus('live');
      } catch (err) {
        if (!this.running || isAbort(err)) return;
        if (err?.status === 409) {
          // The cursor's epoch is gone or too old: reload, then go on from the
          // snapshot's cursor. The first reset reloads at once.
          resets += 1;
          needSnapshot = true;
          this._setStatus('resyncing');
          if (resets > 1) await this._sleep(backoffDelay(resets - 1));
        } else if (err?.transient !== false) {
          // Network failure, timeout, 5xx (or a bug: retried the same way).
          failures += 1;
          if (!needSnapshot) needProbe = true;
          this._setStatus('reconnecting');
          console.warn(`pbp: ${err?.message ?? err}; retry #${failures}`);
          await this._sleep(backoffDelay(failures));
        } else {
          // Another 4xx (e.g. a cursor the server cannot read): start over
          // from a fresh snapshot, still backing off in case it repeats.
          failures += 1;
          needSnapshot = true;
          this._setStatus('resyncing');
          console.warn(`pbp: ${err.status} ${err.code}: ${err.message}; reloading`);
          await this._sleep(backoffDelay(failures));
        }
      }
    }
  }

  _snapshot(signal) {
    return snapshotWithCursor(this.api, this.table, this.subscriptions, signal);
  }

  /**
   * Truncated events carry only the key: fetch the row now (404 → it is gone).
   * The fetched row may be newer than the event; later events still apply in
   * order and the replica ignores an older mtime, so the result converges.
   */
  async _resolve(events, signal) {
    const out = [];
    const fetched = new Map();
    for (const ev of events) {
      if (!ev || !ev.truncated || ev.table !== this.table) { out.push(ev); continue; }
      if (ev.op === 'delete') { out.push({ ...ev, truncated: false, resolved: true }); continue; }
      const k = String(ev.key);
      if (!fetched.has(k)) fetched.set(k, await this.api.getRow(this.table, ev.key, { signal }));
      const row = fetched.get(k);
      out.push(row
        ? { ...ev, new: row, truncated: false, resolved: true }
        : { ...ev, op: 'delete', new: null, truncated: false, resolved: true });
    }
    return out;
  }
}

/** The snapshot and a cursor taken before it was read (so nothing is missed). */
export async function snapshotWithCursor(api, table, subscriptions, signal) {
  const snap = await api.listRows(table, { signal });
  if (snap.cursor) return snap;
  // No PBP-Cursor header: take the newest cursor first, then read again.
  console.warn('pbp: snapshot without a PBP-Cursor header; taking the cursor first');
  const { cursor } = await api.pollChanges(null, subscriptions, { signal, timeoutMs: 15000 });
  const again = await api.listRows(table, { signal });
  return { rows: again.rows, cursor };
}

/**
 * A snapshot, retried with backoff until it succeeds or `signal` aborts.
 * onStatus('reconnecting') is called while it keeps failing.
 */
export async function fetchSnapshot({ table, subscriptions = [{ table }], api = defaultApi, signal, onStatus = () => {} }) {
  for (let failures = 1; ; failures += 1) {
    try {
      return await snapshotWithCursor(api, table, subscriptions, signal);
    } catch (err) {
      if (signal?.aborted || isAbort(err)) throw err;
      onStatus('reconnecting');
      console.warn(`pbp: snapshot failed: ${err?.message ?? err}; retry #${failures}`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, backoffDelay(failures));
        signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
      });
    }
  }
}
