// registry.js: the members of every tab of the browser, as this tab knows
// them from 'join', 'leave' and 'batch' messages. Every tab keeps one, so any
// tab can take over as leader and poll from where the members are.
//
// An entry: {member, tab, subs, keys, keyField, cursor, at, seen}: the member's
// id and tab, its subscriptions (and their subscriptionKey()s), its table's
// key column, the cursor up to which its copy is current, when its snapshot
// was started and when this tab last heard of it.

import { compareCursors, laterCursor, subscriptionKey } from './cursors.js';

export class MemberRegistry {
  constructor() {
    this.entries = new Map();   // member id → entry
    this.resetAt = 0;           // when the stream was last reset (members loaded before must reload)
  }

  get size() { return this.entries.size; }
  get(memberId) { return this.entries.get(memberId); }
  values() { return this.entries.values(); }
  list() { return [...this.entries.values()]; }

  /**
   * A member's join (or re-join). True when the entry changed in a way that
   * may change the leader's poll (new member, other subscriptions, a cursor
   * that cannot be ordered against the one known).
   */
  register(msg, now = Date.now()) {
    if (!msg.member || !Array.isArray(msg.subs) || msg.at < this.resetAt) return false; // loaded before the last reset
    const keys = msg.subs.map(subscriptionKey);
    const e = this.entries.get(msg.member);
    if (!e || e.cursor == null || keys.join('\n') !== e.keys.join('\n') || compareCursors(e.cursor, msg.cursor) === null) {
      this.entries.set(msg.member, {
        member: msg.member, tab: msg.tab, subs: msg.subs, keys, keyField: msg.keyField, cursor: msg.cursor, at: msg.at, seen: now,
      });
      return true;
    }
    // A re-join of a member we follow already: its cursor here is at least as new.
    e.seen = now;
    e.tab = msg.tab;
    return false;
  }

  /** True if the member was known. */
  forget(memberId) { return this.entries.delete(memberId); }

  /** A batch the leader shared: the members it covered are current up to `cursor`. */
  advance(memberIds, cursor) {
    for (const id of memberIds) {
      const e = this.entries.get(id);
      if (e?.cursor != null) e.cursor = laterCursor(e.cursor, cursor);
    }
  }

  /** The stream was reset at `at`: members loaded before it are dropped until they re-join. */
  reset(at) {
    this.resetAt = Math.max(this.resetAt, at);
    for (const [id, e] of this.entries) if (e.at < at) this.entries.delete(id);
  }

  /** Drops the entries `gone(entry)` says belong to tabs that are gone. */
  prune(gone) {
    for (const [id, e] of this.entries) if (gone(e)) this.entries.delete(id);
  }
}
