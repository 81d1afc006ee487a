// tabs.js: one long-poll per browser, shared by all its tabs.
//
// Each tab shows one view (the whole table, or one row) and that view is a
// *member*: its subscriptions (e.g. [{table: 'testtype', where: {id: 5}}]), its
// own snapshot, and the cursor up to which its copy is current. Every tab keeps
// a registry of all members of the browser, learned from 'join' messages.
//
// Exactly one tab, the leader, polls. Its one request carries the union of
// every member's subscriptions and starts from the oldest member cursor; each
// event comes back with `matches` (indexes into that list), which the leader
// turns into the ids of the members it concerns (`to`) before broadcasting
// the batch. A member joining with a subscription the poll lacks (or an older
// cursor) makes the leader abort the poll in flight and send it again with the
// same cursor (a subscription no member needs any more just stays in until
// the poll next ends). When the leader goes away another tab is elected and
// polls from the cursors every tab has seen the old leader share: nothing is
// missed, and a member drops an event at or before its own cursor, so nothing
// applies twice.
//
// One poll at a time, as the server sees it: the browser closes an aborted
// request's connection a few milliseconds after fetch() gives up on it, so a
// re-sent poll, and a new leader's first poll, wait RESEND_SETTLE_MS first
// (poller.js). Leaving the page, also into the back/forward cache where a
// frozen page would keep its poll open and its lock held, shuts the tab down:
// poll aborted, locks released, 'leave' sent; a page restored from it reloads.
//
// Election: Web Locks (`navigator.locks`: hand-over the moment a tab closes or
// crashes); without them a lease in localStorage. Messages: BroadcastChannel;
// without it localStorage 'storage' events. With neither, each tab polls alone.
// `?tabs=single` or `?tabs=storage` in the page URL forces a mode (for tests).
//
// Messages (all carry `from`, the sender's tab id):
//   {type:'hello'}                              a tab started: members re-join, the leader sends its status
//   {type:'leader'}                             a tab became leader: members re-join
//   {type:'join', member, tab, subs, cursor, at} a member, its subscriptions and cursor
//                                               (`at`: when its snapshot was started)
//   {type:'leave', member}                      a member went away
//   {type:'batch', cursor, covered, events}     a poll's answer: `covered` lists the members the
//                                               poll was made for (their cursor moves to `cursor`),
//                                               each event lists in `to` the members it matched
//   {type:'status', state}                      the leader's connection state
//   {type:'resync', at}                         the stream was reset: every member reloads its snapshot
//
// Cursors: the server documents them as `EPOCH:SEQ`; this file orders two
// cursors of the same epoch by SEQ (to poll from the oldest member's position
// and to drop replays). Cursors it cannot order are treated conservatively:
// events are delivered (applying them is idempotent) rather than skipped.

import { Poller, retrying, isAbort } from './poller.js';
import * as defaultApi from './api.js';
import { rowPasses } from './replica.js';

const CHANNEL_NAME = 'pbp';
const KEY_FIELD = 'id';           // the key column of PBP's tables
const LOCK_NAME = 'pbp-leader';
const TAB_LOCK_PREFIX = 'pbp-tab:';
const PRUNE_MS = 3000;            // how often the leader drops members of tabs that are gone
const HEARTBEAT_MS = 20000;       // without Web Locks: members re-join this often ...
const HEARTBEAT_LOST_MS = 150000; // ... and are dropped after this long without one

const newId = () => (globalThis.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`);

// ---- cursors and subscriptions -------------------------------------------------

const CURSOR_RE = /^([0-9a-f]{16}):(0|[1-9]\d*)$/;

/** -1, 0 or 1; null when the two cannot be ordered (other epochs, unknown form). */
export function compareCursors(a, b) {
  if (a == null || b == null) return null;
  if (a === b) return 0;
  const ma = CURSOR_RE.exec(a);
  const mb = CURSOR_RE.exec(b);
  if (!ma || !mb || ma[1] !== mb[1]) return null;
  const sa = BigInt(ma[2]);
  const sb = BigInt(mb[2]);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/** The later of two cursors; `b` (the newer message) when they cannot be ordered. */
function laterCursor(a, b) {
  const c = compareCursors(a, b);
  return c === 1 ? a : b;
}

function canonical(value) {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical(value[k])]));
  }
  return value;
}

/** One string per distinct subscription (key order does not matter). */
export const subscriptionKey = (sub) => JSON.stringify(canonical(sub));

// ---- transports ------------------------------------------------------------

class BroadcastTransport {
  constructor(name) {
    this.kind = 'broadcastchannel';
    this.channel = new BroadcastChannel(name);
    this.channel.onmessage = (e) => this.onmessage?.(e.data);
  }
  post(msg) { this.channel.postMessage(msg); }
}

class StorageTransport {
  constructor(name) {
    this.kind = 'localstorage';
    this.key = `${name}:msg`;
    addEventListener('storage', (e) => {
      if (e.key !== this.key || !e.newValue) return;
      let msg;
      try { msg = JSON.parse(e.newValue).msg; } catch { return; }
      this.onmessage?.(msg);
    });
  }
  post(msg) {
    // A fresh nonce makes every write a change, so every write is an event.
    try { localStorage.setItem(this.key, JSON.stringify({ nonce: newId(), msg })); } catch (err) {
      console.warn('pbp: cannot share a message through localStorage', err);
    }
  }
}

function storageUsable() {
  try {
    const k = '__pbp_probe__';
    localStorage.setItem(k, k);
    localStorage.removeItem(k);
    return true;
  } catch {
    return false;
  }
}

// ---- elections -------------------------------------------------------------
// elect({onLead, onFollow, onDemote}): onFollow() when another tab leads at
// start, onLead() when this tab becomes leader, onDemote() if it loses the role.

class LockElection {
  constructor(name) {
    this.kind = 'weblocks';
    this.name = name;
    this._abort = new AbortController();   // cancels a waiting request
    this._release = () => {};              // lets go of a held lock
  }
  elect({ onLead, onFollow }) {
    const fail = (err) => { if (!isAbort(err)) console.error('pbp: lock request failed', err); };
    // Held until release() (the page is going away).
    const hold = () => new Promise((resolve) => {
      this._release = resolve;
      if (this._abort.signal.aborted) { resolve(); return; }
      onLead();
    });
    navigator.locks.request(this.name, { ifAvailable: true }, (lock) => {
      if (lock) return hold();
      onFollow();
      navigator.locks.request(this.name, { signal: this._abort.signal }, hold).catch(fail);
      return undefined;
    }).catch(fail);
  }
  /** Step out for good: drop the lock, or stop waiting for it. */
  release() {
    this._abort.abort();
    this._release();
  }
}

/**
 * A lease in localStorage: {id, exp}. The leader renews it every `beatMs`. A
 * tab claims a free or expired lease by writing it, waiting `settleMs` (longer
 * than a write takes to reach the other tabs) and reading it back: of tabs
 * that claim together only the last writer sees its own id. A leader that
 * ever reads another tab's live lease steps down at once, so two leaders
 * cannot last longer than one beat.
 */
class StorageElection {
  constructor(name, id, { leaseMs = 2500, beatMs = 400, settleMs = 150 } = {}) {
    this.kind = 'localstorage';
    this.key = `${name}:lease`;
    this.id = id;
    this.leaseMs = leaseMs;
    this.beatMs = beatMs;
    this.settleMs = settleMs;
    this.leading = false;
    this._claiming = false;
  }
  _read() {
    try { return JSON.parse(localStorage.getItem(this.key) || 'null'); } catch { return null; }
  }
  _write() {
    try { localStorage.setItem(this.key, JSON.stringify({ id: this.id, exp: Date.now() + this.leaseMs })); } catch { /* full */ }
  }
  elect({ onLead, onFollow, onDemote }) {
    let decided = false;
    const follow = () => { if (!decided) { decided = true; onFollow(); } };
    const tick = () => {
      if (this._claiming) return;
      const lease = this._read();
      const heldByOther = lease && lease.id !== this.id && lease.exp > Date.now();
      if (this.leading) {
        if (heldByOther) demote(); else this._write();
        return;
      }
      if (heldByOther) { follow(); return; }
      this._claiming = true;
      this._write();
      setTimeout(() => {
        this._claiming = false;
        if (this._read()?.id === this.id) {
          this.leading = true;
          decided = true;
          this._write();
          onLead();
        } else {
          follow();
        }
      }, this.settleMs * (0.8 + 0.6 * Math.random()));
    };
    const demote = () => { this.leading = false; onDemote(); };
    this._timer = setInterval(tick, this.beatMs);
    addEventListener('storage', (e) => {
      if (e.key !== this.key) return;
      if (!e.newValue) { tick(); return; }     // the leader left: claim at once
      // Another tab wrote the lease: a leader steps down now rather than at its
      // next beat (timers of background tabs run late). It reads the lease
      // again, as its own later write may have replaced that one.
      const lease = this._read();
      if (this.leading && lease && lease.id !== this.id && lease.exp > Date.now()) demote();
    });
    tick();
  }
  /** Step out for good: stop claiming, and free the lease if it is ours. */
  release() {
    clearInterval(this._timer);
    this._claiming = true;   // no claim from a late 'storage' event either
    if (this.leading && this._read()?.id === this.id) {
      try { localStorage.removeItem(this.key); } catch { /* ignore */ }
    }
    this.leading = false;
  }
}

// ---- the coordinator ---------------------------------------------------------

export class TabSync {
  /**
   * onStatus(state) and onRole(role) report to the page. `mode`: 'auto'
   * (default), 'single' or 'storage'. The view is given with setMember().
   */
  constructor({ onStatus = () => {}, onRole = () => {}, api = defaultApi, mode = 'auto' } = {}) {
    this.onStatus = onStatus;
    this.onRole = onRole;
    this.api = api;
    this.mode = mode;
    this.id = newId();
    this.role = null;
    this.roleHistory = [];       // [{role, at}] (for the curious and the tests)
    this.leaderState = 'connecting';
    this.member = null;          // this tab's member
    this.registry = new Map();   // member id → {member, tab, subs, keys, cursor, at, seen}
    this.resetAt = 0;            // when the stream was last reset (members loaded before must reload)
    this.poller = null;
    this.transport = null;
    this.election = null;
    this.liveness = 'none';
    this._electing = false;
    this._timers = [];
  }

  // ---- the page's side ------------------------------------------------------

  /**
   * Show a view: `member` is {subscriptions, load(signal) → {cursor},
   * apply(events)}. load() reads the snapshot into the view's replica and
   * resolves to the cursor taken before it; apply() gets the events that
   * matched the member's subscriptions, in order, each at most once.
   */
  setMember(member) {
    const old = this.member;
    if (old) this._leave(old);
    Object.assign(member, {
      id: newId(),
      keys: member.subscriptions.map(subscriptionKey),
      cursor: null,
      ready: false,
      at: 0,
      loading: null,
      received: 0,
    });
    this.member = member;
    if (this.started) this._load(member, 'connecting');
    return member;
  }

  start() {
    this.started = true;
    const canStorage = storageUsable();
    const mode = this.mode;
    const hasLocks = Boolean(globalThis.navigator?.locks?.request);
    if (mode !== 'single') {
      if (mode !== 'storage' && typeof BroadcastChannel === 'function') this.transport = new BroadcastTransport(CHANNEL_NAME);
      else if (canStorage) this.transport = new StorageTransport(CHANNEL_NAME);
      if (mode !== 'storage' && hasLocks) this.election = new LockElection(LOCK_NAME);
      else if (canStorage) this.election = new StorageElection(LOCK_NAME, this.id);
    }
    if (!this.transport || !this.election) {
      this.transport = null;   // alone: this tab polls for itself
      this.election = null;
    } else {
      this.transport.onmessage = (msg) => this._onMessage(msg);
      if (this.election.kind === 'weblocks') {
        // Held while this tab lives: the leader drops the members of tabs whose lock is gone.
        this.liveness = 'locks';
        navigator.locks.request(TAB_LOCK_PREFIX + this.id, () => new Promise((resolve) => { this._releaseTabLock = resolve; }))
          .catch((err) => console.error('pbp: tab lock failed', err));
      } else {
        this.liveness = 'heartbeat';
        this._timers.push(setInterval(() => this._heartbeat(), HEARTBEAT_MS));
      }
      this._post({ type: 'hello' });
    }
    // Leaving the page, also into the back/forward cache, where a frozen page
    // would keep its poll open and its lock held: step out for good. A page
    // restored from that cache starts afresh.
    addEventListener('pagehide', () => this.shutdown());
    addEventListener('pageshow', (e) => { if (e.persisted) location.reload(); });
    this._showStatus();
    if (this.member) this._load(this.member, 'connecting');
  }

  /** Stop: leave, stop polling, give up the leadership and the locks. */
  shutdown() {
    if (this.down) return;
    this.down = true;
    if (this.member) {
      this.member.abort?.abort();
      this._post({ type: 'leave', member: this.member.id });
    }
    this.poller?.stop();
    this.poller = null;
    this._stopPruning();
    this.election?.release();
    this._releaseTabLock?.();
    for (const t of this._timers) clearInterval(t);
  }

  /** A copy of what a person or a test may want to see. */
  debugState() {
    return {
      id: this.id,
      role: this.role,
      leaderState: this.leaderState,
      transport: this.transport?.kind ?? 'none',
      election: this.election?.kind ?? 'none',
      member: this.member && { id: this.member.id, subscriptions: this.member.subscriptions, cursor: this.member.cursor, ready: this.member.ready, received: this.member.received },
      registry: [...this.registry.values()].map(({ member, tab, subs, cursor }) => ({ member, tab, subs, cursor })),
      poll: this.poller?.current ? { cursor: this.poller.current.cursor, subscriptions: this.poller.current.subscriptions } : null,
      sent: this.poller?.sent ?? [],
      claiming: Boolean(this.election?._claiming),
    };
  }

  // ---- this tab's member ------------------------------------------------------

  _showStatus() {
    this.onStatus(this.member?.loading ?? (this.member?.ready ? this.leaderState : 'connecting'));
  }

  _setRole(role) {
    this.role = role;
    this.roleHistory.push({ role, at: Date.now() });
    this.onRole(role);
  }

  _post(msg) {
    this.transport?.post({ ...msg, from: this.id });
  }

  /** Load (or reload, after a reset) the member's snapshot, then join. */
  async _load(member, reason) {
    member.abort?.abort();
    const controller = new AbortController();
    member.abort = controller;
    member.ready = false;
    member.loading = reason;
    this._forget(member.id);
    this._showStatus();
    let snap;
    let at;
    try {
      do {
        at = Date.now();
        snap = await retrying(() => member.load(controller.signal), {
          signal: controller.signal,
          onFailure: () => { member.loading = 'reconnecting'; this._showStatus(); },
        });
        if (this.member !== member || controller.signal.aborted) return;
      } while (this.resetAt > at);   // reset while loading: the snapshot may predate it
    } catch (err) {
      if (!isAbort(err)) console.error('pbp: loading the snapshot failed', err);
      return;
    }
    if (this.down) return;
    member.cursor = snap.cursor;
    member.at = at;
    member.ready = true;
    member.loading = null;
    this._join(member);
    this._showStatus();
    if (!this._electing) this._elect();
  }

  _joinMessage(member) {
    return { type: 'join', member: member.id, tab: this.id, subs: member.subscriptions, cursor: member.cursor, at: member.at };
  }

  _join(member) {
    const msg = this._joinMessage(member);
    this._register(msg);
    this._post(msg);
  }

  _rejoin() {
    const m = this.member;
    if (m?.ready) this._post(this._joinMessage(m));
  }

  _heartbeat() { this._rejoin(); }

  _leave(member) {
    member.abort?.abort();
    member.ready = false;
    this._forget(member.id);
    this._post({ type: 'leave', member: member.id });
  }

  _forget(memberId) {
    if (this.registry.delete(memberId)) this._replanIfNeeded();
  }

  /** Apply a batch's events for our member (those after its cursor), then move the cursor. */
  _deliver(events, cursor) {
    const m = this.member;
    const fresh = events.filter((ev) => compareCursors(ev.cursor, m.cursor) !== -1 && compareCursors(ev.cursor, m.cursor) !== 0);
    m.received += fresh.length;
    if (fresh.length) m.apply(fresh);
    m.cursor = laterCursor(m.cursor, cursor);
  }

  // ---- messages -----------------------------------------------------------------

  _onMessage(msg) {
    if (this.down || !msg || typeof msg !== 'object' || msg.from === this.id) return;
    switch (msg.type) {
      case 'hello':
        this._rejoin();
        if (this.poller) this._post({ type: 'status', state: this.leaderState });
        break;
      case 'leader':
        this._rejoin();
        break;
      case 'join':
        this._register(msg);
        break;
      case 'leave':
        this._forget(msg.member);
        break;
      case 'batch':
        this._onBatchMessage(msg);
        break;
      case 'status':
        if (!this.poller) { this.leaderState = msg.state; this._showStatus(); }
        break;
      case 'resync':
        this._onResync(msg.at);
        break;
      default:
        break;
    }
  }

  /** A member's join (or re-join): every tab keeps the registry, so any can take over. */
  _register(msg) {
    if (!msg.member || !Array.isArray(msg.subs) || msg.at < this.resetAt) return; // loaded before the last reset
    const keys = msg.subs.map(subscriptionKey);
    const e = this.registry.get(msg.member);
    if (!e || e.cursor == null || keys.join('\n') !== e.keys.join('\n') || compareCursors(e.cursor, msg.cursor) === null) {
      this.registry.set(msg.member, { member: msg.member, tab: msg.tab, subs: msg.subs, keys, cursor: msg.cursor, at: msg.at, seen: Date.now() });
      this._replanIfNeeded();
    } else {
      // A re-join of a member we follow already: its cursor here is at least as new.
      e.seen = Date.now();
      e.tab = msg.tab;
    }
  }

  _onBatchMessage(msg) {
    const covered = new Set(msg.covered ?? []);
    for (const id of covered) {
      const e = this.registry.get(id);
      if (e?.cursor != null) e.cursor = laterCursor(e.cursor, msg.cursor);
    }
    const m = this.member;
    if (!m?.ready) return;
    if (covered.has(m.id)) {
      this._deliver((msg.events ?? []).filter((ev) => ev.to?.includes(m.id)), msg.cursor);
    } else if (Date.now() - (m.rejoinedAt ?? 0) > 1000) {
      // The leader polled without us (it started after we joined, or dropped us): join again.
      m.rejoinedAt = Date.now();
      this._rejoin();
    }
  }

  _onResync(at) {
    this.resetAt = Math.max(this.resetAt, at);
    for (const [id, e] of this.registry) if (e.at < at) this.registry.delete(id);
    const m = this.member;
    if (m && (m.ready ? m.at < at : !m.loading)) this._load(m, 'resyncing');
    // A member loading already notices resetAt and loads again.
  }

  // ---- leading ------------------------------------------------------------------

  _elect() {
    this._electing = true;
    if (!this.election) { this._lead(); return; }
    this.election.elect({
      onFollow: () => this._setRole('follower'),
      onLead: () => this._lead(),
      onDemote: () => {
        this.poller?.stop();
        this.poller = null;
        this._stopPruning();
        this._setRole('follower');
        this._post({ type: 'hello' });
      },
    });
  }

  _lead() {
    if (this.down) return;
    const takingOver = this.role === 'follower';
    this._setRole('leader');
    this._post({ type: 'leader' });
    // Taking over a live stream: stay 'live' unless the poll fails.
    const initial = this.leaderState === 'live' ? 'live' : 'connecting';
    this.leaderState = initial;
    this.poller = new Poller({
      api: this.api,
      initialState: initial,
      plan: () => this._plan(),
      onBatch: (batch) => this._onBatch(batch),
      onReset: () => this._reset(),
      onStatus: (state) => {
        this.leaderState = state;
        this._showStatus();
        this._post({ type: 'status', state });
      },
    });
    this.poller.start({ settle: takingOver });
    this._post({ type: 'status', state: initial });
    this._startPruning();
  }

  /**
   * What to poll for: the union of the members' subscriptions (each distinct
   * one once), from the oldest member cursor. Members whose cursor cannot be
   * ordered against it (another epoch) wait for the reset that will follow.
   */
  _plan() {
    const entries = [...this.registry.values()].filter((e) => e.cursor != null && e.at >= this.resetAt);
    if (!entries.length) return null;
    const own = this.member && this.registry.get(this.member.id);
    const pivot = own ?? entries[entries.length - 1];
    let cursor = pivot.cursor;
    const members = [];
    for (const e of entries) {
      const c = compareCursors(e.cursor, cursor);
      if (c === null) continue;
      if (c < 0) cursor = e.cursor;
      members.push(e);
    }
    const keys = [...new Set(members.flatMap((e) => e.keys))].sort();
    const subscriptions = keys.map((k) => JSON.parse(k));
    return { cursor, subscriptions, keys };
  }

  /** Re-send the poll in flight if it lacks a subscription or starts too late. */
  _replanIfNeeded() {
    if (!this.poller) return;
    const current = this.poller.current;
    const next = this._plan();
    if (!next) return;
    if (!current) { this.poller.replan(); return; }
    const have = new Set(current.keys);
    const missing = next.keys.some((k) => !have.has(k));
    const order = compareCursors(next.cursor, current.cursor);
    // A subscription no member needs any more is left in until the next poll.
    if (missing || order === -1 || order === null) this.poller.replan();
  }

  /** The leader's poll answered: work out who gets what, share it, apply ours. */
  _onBatch({ plan, cursor, events }) {
    const index = new Map(plan.keys.map((k, i) => [k, i]));
    const covered = [];
    for (const e of this.registry.values()) {
      if (e.cursor == null || e.at < this.resetAt) continue;
      const order = compareCursors(e.cursor, plan.cursor);
      if (order === null || order < 0) continue;          // the poll started after its position
      if (!e.keys.every((k) => index.has(k))) continue;   // the poll lacked one of its subscriptions
      covered.push({ e, idx: e.keys.map((k) => index.get(k)) });
    }
    const out = [];
    for (const ev of events) {
      let matches = Array.isArray(ev.matches) ? ev.matches : [];
      if (ev.resolved) {
        // The server sends a truncated event to every subscription on its
        // table. A filter on the key tells from the key alone; any other
        // filter is left to the member's replica (the row may have left it).
        matches = matches.filter((i) => {
          const where = plan.subscriptions[i]?.where;
          return !where || !(KEY_FIELD in where) || rowPasses({ [KEY_FIELD]: ev.key }, { [KEY_FIELD]: where[KEY_FIELD] });
        });
      }
      const to = covered
        .filter(({ e, idx }) => idx.some((i) => matches.includes(i)) && compareCursors(ev.cursor, e.cursor) !== -1 && compareCursors(ev.cursor, e.cursor) !== 0)
        .map(({ e }) => e.member);
      if (to.length) out.push({ ...ev, to });
    }
    for (const { e } of covered) e.cursor = laterCursor(e.cursor, cursor);
    const ids = covered.map(({ e }) => e.member);
    this._post({ type: 'batch', cursor, covered: ids, events: out });
    const m = this.member;
    if (m?.ready && ids.includes(m.id)) this._deliver(out.filter((ev) => ev.to.includes(m.id)), cursor);
  }

  _reset() {
    const at = Date.now();
    this._post({ type: 'resync', at });
    this._onResync(at);
  }

  _startPruning() {
    this._stopPruning();
    this._pruneTimer = setInterval(() => this._prune(), PRUNE_MS);
    this._prune();
  }

  _stopPruning() {
    clearInterval(this._pruneTimer);
  }

  /** Drop the members of tabs that are gone (a crash sends no 'leave'). */
  async _prune() {
    let alive;
    if (this.liveness === 'locks') {
      try {
        const { held = [], pending = [] } = await navigator.locks.query();
        alive = new Set([...held, ...pending].map((l) => l.name));
      } catch {
        return;
      }
    }
    const now = Date.now();
    for (const [id, e] of this.registry) {
      if (e.tab === this.id) continue;
      const gone = alive ? !alive.has(TAB_LOCK_PREFIX + e.tab) : now - e.seen > HEARTBEAT_LOST_MS;
      if (gone) this.registry.delete(id);
    }
  }
}
