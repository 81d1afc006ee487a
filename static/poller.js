// poller.js: the long-poll loop of the leader tab. No DOM, no replica.
//
// A Poller sends one POST /api/changes at a time. What it sends comes from its
// owner's `plan()`, asked afresh before every request:
//
//   plan() → { cursor, subscriptions, ... } | null   (null: nothing to poll for yet)
//
// and every answer goes back to the owner:
//
//   onBatch({ plan, cursor, events })  events in commit order, `truncated` ones
//                                      already resolved into full rows
//   onReset(body)                      409: the cursor is gone; the owner reloads
//                                      snapshots and re-plans
//   onStatus(state)                    'connecting' | 'live' | 'reconnecting' | 'resyncing'
//
// `replan()` tells the poller the plan changed: a request in flight is aborted
// and re-sent at once with the new plan (same cursor unless the plan moved it),
// after a short settle (RESEND_SETTLE_MS) instead of a backoff. Failures back
// off exponentially with jitter.

import * as defaultApi from './api.js';

export const BACKOFF_BASE_MS = 250;
/**
 * After aborting a poll to re-send it, wait this long first. fetch() rejects
 * at once on abort, but the browser closes the connection a few milliseconds
 * later (up to 6 ms measured with Chromium and nginx): sending at once would
 * let the server hold two polls from this browser for that moment.
 */
export const RESEND_SETTLE_MS = 50;
export const BACKOFF_CAP_MS = 10000;

/** Exponential backoff with jitter: attempt 1 → about 250 ms, doubling, capped at 10 s. */
export function backoffDelay(attempt, { base = BACKOFF_BASE_MS, cap = BACKOFF_CAP_MS, random = Math.random } = {}) {
  const d = Math.min(cap, base * 2 ** Math.max(0, attempt - 1));
  return Math.min(cap, Math.round(d * (0.5 + random())));
}

export const isAbort = (err) => err?.name === 'AbortError';

/** Sleep for `ms`, cut short when `signal` aborts (resolves either way). */
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal?.aborted) { resolve(); return; }
    const done = () => { clearTimeout(t); signal?.removeEventListener('abort', done); resolve(); };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export class Poller {
  constructor({ plan, onBatch, onReset, onStatus, api = defaultApi, pollTimeoutMs = 55000, initialState = 'connecting', settleMs = RESEND_SETTLE_MS }) {
    this.plan = plan;
    this.onBatch = onBatch;
    this.onReset = onReset ?? (() => {});
    this.onStatus = onStatus ?? (() => {});
    this.api = api;
    this.pollTimeoutMs = pollTimeoutMs;
    this.settleMs = settleMs;
    this.state = initialState;
    this.running = false;
    this.current = null;          // the plan of the request in flight
    this.sent = [];               // the last polls sent: {cursor, subscriptions, at, end: null (in flight) | 'done' | 'resent' | 'stopped'}
    this._stop = null;            // AbortController of the whole loop
    this._request = null;         // AbortController of the request in flight
    this._idle = null;            // AbortController of a wait (backoff or "no plan")
    this._replanned = false;
    this._onOnline = () => this._idle?.abort();
  }

  /**
   * Start polling. `settle`: wait RESEND_SETTLE_MS first (a tab taking over
   * from a leader that just went away, whose poll may not be closed yet).
   */
  start({ settle = false } = {}) {
    if (this.running) return;
    this.running = true;
    this._stop = new AbortController();
    globalThis.addEventListener?.('online', this._onOnline);
    this._loop({ settle }).catch((err) => {
      if (!isAbort(err)) console.error('pbp: the poller stopped on an unexpected error', err);
    });
  }

  stop() {
    if (!this.running) return;
    this.running = false;
    globalThis.removeEventListener?.('online', this._onOnline);
    this._stop.abort();
    this._request?.abort();
    this._idle?.abort();
  }

  /** The plan changed: re-send the poll in flight with it (or wake up if idle). */
  replan() {
    if (!this.running) return;
    this._replanned = true;
    this._request?.abort();
    this._idle?.abort();
  }

  _setStatus(state) {
    if (this.state === state) return;
    this.state = state;
    this.onStatus(state);
  }

  /** Wait until replan(), stop(), 'online', or `ms` (forever if omitted). */
  async _wait(ms) {
    this._idle = new AbortController();
    const signal = this._idle.signal;
    await (ms == null ? new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true })) : sleep(ms, signal));
    this._idle = null;
  }

  async _loop({ settle }) {
    let failures = 0;     // consecutive failures, for the backoff
    let resets = 0;       // consecutive resets (a reset loop backs off too)
    let needProbe = false;
    if (settle) await sleep(this.settleMs, this._stop.signal);
    while (this.running) {
      this._replanned = false;
      const plan = this.plan();
      if (!plan) { this.current = null; await this._wait(); continue; }
      this._request = new AbortController();
      const signal = this._request.signal;
      try {
        if (needProbe) {
          // Without a cursor /api/changes answers at once: proves the stream is
          // up again without waiting out a parked poll.
          await this.api.pollChanges(null, plan.subscriptions, { signal, timeoutMs: 15000 });
          needProbe = false;
          this._setStatus('live');
        }
        this.current = plan;
        if (this.state !== 'reconnecting') this._setStatus('live');
        const record = { cursor: plan.cursor, subscriptions: plan.subscriptions, at: Date.now(), end: null };
        this.sent.push(record);
        if (this.sent.length > 50) this.sent.shift();
        const res = await this.api.pollChanges(plan.cursor, plan.subscriptions, { signal, timeoutMs: this.pollTimeoutMs })
          .finally(() => { record.end = signal.aborted ? (this._replanned ? 'resent' : 'stopped') : 'done'; });
        const events = await this._resolve(res.events, signal);
        if (!this.running) return;
        this._request = null;
        await this.onBatch({ plan, cursor: res.cursor, events });
        failures = 0;
        resets = 0;
        this._setStatus('live');
      } catch (err) {
        this._request = null;
        this.current = null;
        if (!this.running) return;
        if (isAbort(err) && this._replanned) {             // replan(): send again, once the old one is closed
          await sleep(this.settleMs, this._stop.signal);
          continue;
        }
        if (err?.status === 409) {
          // The cursor's epoch is gone or it is older than the ring: every tab
          // reloads its snapshot; the plan is empty until they have.
          resets += 1;
          this._setStatus('resyncing');
          this.onReset(err.body);
          if (resets > 1) await this._wait(backoffDelay(resets - 1));
        } else if (err?.transient !== false) {
          // Network failure, timeout, 5xx: keep the cursor and retry.
          failures += 1;
          needProbe = true;
          this._setStatus('reconnecting');
          console.warn(`pbp: ${err?.message ?? err}; retry #${failures}`);
          await this._wait(backoffDelay(failures));
        } else {
          // Another 4xx (a cursor or subscription the server refuses): reload
          // everything, backing off in case it repeats.
          failures += 1;
          this._setStatus('resyncing');
          console.warn(`pbp: ${err.status} ${err.code}: ${err.message}; reloading`);
          this.onReset(err.body);
          await this._wait(backoffDelay(failures));
        }
      }
    }
  }

  /**
   * Truncated events carry only the key: fetch the row now (404 → it is gone).
   * The fetched row may be newer than the event and than events after it:
   * marked `resolved`, it is a floor for its row in the replica (replica.js),
   * which skips the older events behind it as replays; later ones apply in order.
   */
  async _resolve(events, signal) {
    const out = [];
    const fetched = new Map();
    for (const ev of events) {
      if (!ev || !ev.truncated) { out.push(ev); continue; }
      if (ev.op === 'delete') { out.push({ ...ev, truncated: false, resolved: true }); continue; }
      const k = `${ev.table}\u0000${ev.key}`;
      if (!fetched.has(k)) fetched.set(k, await this.api.getRow(ev.table, ev.key, { signal }));
      const row = fetched.get(k);
      out.push(row
        ? { ...ev, new: row, truncated: false, resolved: true }
        : { ...ev, op: 'delete', new: null, truncated: false, resolved: true });
    }
    return out;
  }
}

/**
 * Run `load()` until it succeeds or `signal` aborts, backing off with jitter;
 * onFailure(err, attempt) is called after each failure.
 */
export async function retrying(load, { signal, onFailure = () => {} } = {}) {
  for (let failures = 1; ; failures += 1) {
    try {
      return await load();
    } catch (err) {
      if (signal?.aborted || isAbort(err)) throw err;
      onFailure(err, failures);
      console.warn(`pbp: snapshot failed: ${err?.message ?? err}; retry #${failures}`);
      await sleep(backoffDelay(failures), signal);
      if (signal?.aborted) throw new DOMException('stopped', 'AbortError');
    }
  }
}
