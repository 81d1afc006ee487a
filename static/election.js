// election.js: which tab of a browser is the leader (the one that polls).
//
// Web Locks (`navigator.locks`): the lock passes to a waiting tab the moment
// its holder closes or crashes. Without them, a lease in localStorage.
//
// Both have elect({onLead, onFollow, onDemote}): onFollow() when another tab
// leads at start, onLead() when this tab becomes leader, onDemote() if it
// loses the role; and release(), to step out for good.

import { isAbort } from './poller.js';
import { storageUsable } from './transports.js';

/** The election `mode` ('auto', 'storage' or 'single') allows here; null for none. */
export function openElection(mode, name, tabId) {
  if (mode === 'single') return null;
  if (mode !== 'storage' && globalThis.navigator?.locks?.request) return new LockElection(name);
  return storageUsable() ? new StorageElection(name, tabId) : null;
}

export class LockElection {
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
export class StorageElection {
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
