// tabs.js: one long-poll per browser, shared by all its tabs.
//
// Every tab keeps its own Replica. Exactly one tab, the leader, runs a Poller
// and broadcasts what it receives; the others (followers) apply those
// broadcasts. When the leader goes away another tab is elected and resumes
// polling from the last cursor the leader shared, so nothing is lost (events
// may be replayed, which the replica tolerates).
//
// Election: Web Locks (`navigator.locks`, instant hand-over when a tab closes
// or crashes); without them a lease in localStorage. Messages: BroadcastChannel;
// without it localStorage 'storage' events. With neither, each tab polls alone.
// `?tabs=single` or `?tabs=storage` in the page URL forces a mode (for tests).
//
// Messages on the channel (all carry `from`, the sender's tab id):
//   {type:'hello'}                       a tab joined; the leader answers with its status
//   {type:'status', state}               the leader's connection state
//   {type:'events', events, cursor}      a batch of (resolved) events
//   {type:'snapshot', rows, cursor}      the leader reloaded the table (after a reset)

import { Poller, fetchSnapshot } from './poller.js';
import * as defaultApi from './api.js';

const CHANNEL_NAME = 'pbp';
const LOCK_NAME = 'pbp-leader';

const newId = () => (globalThis.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`);

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

// ---- transports ------------------------------------------------------------

class BroadcastTransport {
  constructor(name) {
    this.kind = 'broadcastchannel';
    this.channel = new BroadcastChannel(name);
    this.channel.onmessage = (e) => this.onmessage?.(e.data);
  }
  post(msg) { this.channel.postMessage(msg); }
  close() { this.channel.close(); }
}

class StorageTransport {
  constructor(name) {
    this.kind = 'localstorage';
    this.key = `${name}:msg`;
    this._onStorage = (e) => {
      if (e.key !== this.key || !e.newValue) return;
      try { this.onmessage?.(JSON.parse(e.newValue).msg); } catch { /* not ours */ }
    };
    addEventListener('storage', this._onStorage);
  }
  post(msg) {
    // A fresh nonce makes every write a change, so every write is an event.
    try { localStorage.setItem(this.key, JSON.stringify({ nonce: newId(), msg })); } catch (err) {
      console.warn('pbp: cannot share a message through localStorage', err);
    }
  }
  close() { removeEventListener('storage', this._onStorage); }
}

// ---- elections -------------------------------------------------------------
// elect({onLead, onFollow, onDemote}): onFollow() when another tab leads at
// start, onLead() when this tab becomes leader, onDemote() if it loses the role.

class LockElection {
  constructor(name) { this.kind = 'weblocks'; this.name = name; }
  elect({ onLead, onFollow }) {
    const hold = () => { onLead(); return new Promise(() => {}); }; // held until the page goes away
    navigator.locks.request(this.name, { ifAvailable: true }, (lock) => {
      if (lock) return hold();
      onFollow();
      navigator.locks.request(this.name, hold).catch((err) => console.error('pbp: lock request failed', err));
      return undefined;
    }).catch((err) => console.error('pbp: lock request failed', err));
  }
}

class StorageElection {
  constructor(name, id, { leaseMs = 2500, beatMs = 500 } = {}) {
    this.kind = 'localstorage';
    this.key = `${name}:lease`;
    this.id = id;
    this.leaseMs = leaseMs;
    this.beatMs = beatMs;
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
    let first = true;
    const tick = () => {
      const lease = this._read();
      const now = Date.now();
      const heldByOther = lease && lease.id !== this.id && lease.exp > now;
      if (this.leading) {
        if (heldByOther) { this.leading = false; onDemote(); } else this._write();
      } else if (!heldByOther && !this._claiming) {
        this._claiming = true;
        this._write();
        // Two tabs may claim together: the later write wins, the other backs off.
        setTimeout(() => {
          this._claiming = false;
          if (this._read()?.id === this.id) { this.leading = true; this._write(); onLead(); } else if (first) onFollow();
          first = false;
        }, 60 + Math.random() * 90);
        return;
      }
      if (first) { first = false; if (!this.leading) onFollow(); }
    };
    setInterval(tick, this.beatMs);
    addEventListener('storage', (e) => { if (e.key === this.key && !e.newValue) tick(); });
    addEventListener('pagehide', () => {
      if (this.leading && this._read()?.id === this.id) {
        try { localStorage.removeItem(this.key); } catch { /* ignore */ }
      }
    });
    tick();
  }
}

// ---- the coordinator ---------------------------------------------------------

export class TabSync {
  /**
   * replica: the Replica to keep current; onStatus(state) and onRole(role)
   * report to the view. `mode`: 'auto' (default), 'single' or 'storage'.
   */
  constructor({ replica, subscriptions, onStatus = () => {}, onRole = () => {}, api = defaultApi, mode = 'auto' }) {
    this.replica = replica;
    this.table = replica.table;
    this.subscriptions = subscriptions ?? [{ table: this.table }];
    this.onStatus = onStatus;
    this.onRole = onRole;
    this.api = api;
    this.mode = mode;
    this.id = newId();
    this.role = null;
    this.state = 'connecting';
    this.cursor = null;       // the position the replica is current up to
    this.poller = null;
    this.transport = null;
    this.election = null;
    this._ready = false;      // own snapshot loaded
    this._buffer = [];        // messages received before that
  }

  _setStatus(state) {
    this.state = state;
    this.onStatus(state);
  }

  _setRole(role) {
    this.role = role;
    this.onRole(role);
  }

  _post(msg) {
    this.transport?.post({ ...msg, from: this.id });
  }

  start() {
    const canStorage = storageUsable();
    const mode = this.mode;
    if (mode !== 'single') {
      if (mode !== 'storage' && typeof BroadcastChannel === 'function') this.transport = new BroadcastTransport(CHANNEL_NAME);
      else if (canStorage) this.transport = new StorageTransport(CHANNEL_NAME);
      if (mode !== 'storage' && globalThis.navigator?.locks?.request) this.election = new LockElection(LOCK_NAME);
      else if (canStorage) this.election = new StorageElection(LOCK_NAME, this.id);
    }
    if (!this.transport || !this.election) {
      // Alone: this tab polls for itself.
      this.transport = null;
      this._setStatus('connecting');
      this._setRole('leader');
      this._startPoller(null);
      return;
    }
    this.transport.onmessage = (msg) => this._onMessage(msg);
    this._setStatus('connecting');
    this._init().catch((err) => console.error('pbp: start failed', err));
  }

  async _init() {
    // Listen first, then read: whatever the leader broadcast before we
    // listened was committed before our snapshot, so the snapshot has it.
    const snap = await fetchSnapshot({
      table: this.table, subscriptions: this.subscriptions, api: this.api,
      onStatus: (s) => { if (!this._ready) this._setStatus(s); },
    });
    this.replica.replaceAll(snap.rows);
    this.cursor = snap.cursor;
    this._ready = true;
    for (const msg of this._buffer.splice(0)) this._apply(msg);
    this.election.elect({
      onFollow: () => {
        this._setRole('follower');
        this._post({ type: 'hello' });
      },
      onLead: () => {
        this._setRole('leader');
        this._startPoller(this.cursor);
      },
      onDemote: () => {
        this.poller?.stop();
        this.poller = null;
        this._setRole('follower');
        this._post({ type: 'hello' });
      },
    });
  }

  _startPoller(cursor) {
    this.poller = new Poller({
      table: this.table,
      subscriptions: this.subscriptions,
      api: this.api,
      onSnapshot: (rows, c) => {
        this.replica.replaceAll(rows);
        this.cursor = c;
        this._post({ type: 'snapshot', rows, cursor: c });
      },
      onEvents: (events, c) => {
        this.replica.applyEvents(events);
        this.cursor = c;
        this._post({ type: 'events', events, cursor: c });
      },
      onStatus: (state) => {
        this._setStatus(state);
        this._post({ type: 'status', state });
      },
    });
    this.poller.start({ cursor });
  }

  _onMessage(msg) {
    if (!msg || typeof msg !== 'object' || msg.from === this.id) return;
    if (msg.type === 'hello') {
      if (this.poller) this._post({ type: 'status', state: this.poller.state });
      return;
    }
    if (!this._ready) { this._buffer.push(msg); return; }
    this._apply(msg);
  }

  _apply(msg) {
    const leading = Boolean(this.poller);
    switch (msg.type) {
      case 'events':
        this.replica.applyEvents(msg.events ?? []);
        if (!leading) this.cursor = msg.cursor;
        break;
      case 'snapshot':
        this.replica.replaceAll(msg.rows ?? []);
        if (!leading) this.cursor = msg.cursor;
        break;
      case 'status':
        if (!leading) this._setStatus(msg.state);
        break;
      default:
        break;
    }
  }
}
