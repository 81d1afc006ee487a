// plan.js: the leader's decisions, without I/O. What one poll asks for (the
// union of the members' subscriptions, from the oldest member cursor), when
// the poll in flight must be sent again, and which members each event of its
// answer goes to.
//
// `entries` are registry entries: {member, subs, keys, keyField, cursor, at},
// `keys` being subscriptionKey() of each of `subs`, `keyField` the key column
// of the member's table (from its 'join'). `resetAt`: members whose snapshot
// was started before the last reset are left out until they reload.

import { compareCursors, isAfter, laterCursor } from './cursors.js';
import { rowPasses } from './replica.js';

const current = (e, resetAt) => e.cursor != null && e.at >= resetAt;

/**
 * {cursor, subscriptions, keys} for the next poll, or null with no member to
 * poll for. Members whose cursor cannot be ordered against the others' (another
 * epoch) wait for the reset that will follow. `own`: this tab's entry, if any.
 */
export function planPoll(entries, { own = null, resetAt = 0 } = {}) {
  const live = entries.filter((e) => current(e, resetAt));
  if (!live.length) return null;
  const pivot = own ?? live[live.length - 1];
  let cursor = pivot.cursor;
  const members = [];
  for (const e of live) {
    const c = compareCursors(e.cursor, cursor);
    if (c === null) continue;
    if (c < 0) cursor = e.cursor;
    members.push(e);
  }
  const keys = [...new Set(members.flatMap((e) => e.keys))].sort();
  const subscriptions = keys.map((k) => JSON.parse(k));
  return { cursor, subscriptions, keys };
}

/**
 * Whether the poll in flight (`current`) must be sent again as `next`: it
 * lacks a subscription or starts too late. A subscription no member needs any
 * more is left in until the poll next ends.
 */
export function needsReplan(current, next) {
  if (!next) return false;
  if (!current) return true;
  const have = new Set(current.keys);
  const order = compareCursors(next.cursor, current.cursor);
  return next.keys.some((k) => !have.has(k)) || order === -1 || order === null;
}

/**
 * A truncated event that was resolved (its row fetched by key) comes to every
 * subscription on its table. A filter on the key column tells from the key
 * alone; any other filter is left to the member's replica (the row may have
 * left it). Without a known key column the event is delivered.
 */
function mayConcern(sub, ev, keyField) {
  if (!ev.resolved) return true;
  const where = sub?.where;
  if (!where || !keyField || !(keyField in where)) return true;
  return rowPasses({ [keyField]: ev.key }, { [keyField]: where[keyField] });
}

/**
 * The answer to poll `plan`: `covered`, the entries it was made for (their
 * cursor may move to the poll's new cursor), and `events`, each with `to`, the
 * ids of the members it concerns (only those it is news to). Events that
 * concern no member are left out.
 */
export function routeBatch(entries, plan, events, { resetAt = 0 } = {}) {
  const index = new Map(plan.keys.map((k, i) => [k, i]));
  const covered = [];
  for (const e of entries) {
    if (!current(e, resetAt)) continue;
    const order = compareCursors(e.cursor, plan.cursor);
    if (order === null || order < 0) continue;          // the poll started after its position
    if (!e.keys.every((k) => index.has(k))) continue;   // the poll lacked one of its subscriptions
    covered.push({ e, idx: e.keys.map((k) => index.get(k)) });
  }
  const out = [];
  for (const ev of events) {
    const matches = Array.isArray(ev.matches) ? ev.matches : [];
    const to = covered
      .filter(({ e, idx }) => isAfter(ev.cursor, e.cursor)
        && idx.some((i, j) => matches.includes(i) && mayConcern(e.subs[j], ev, e.keyField)))
      .map(({ e }) => e.member);
    if (to.length) out.push({ ...ev, to });
  }
  return { covered: covered.map(({ e }) => e), events: out };
}

/** Moves the covered entries' cursors to the poll's new one. */
export function advance(covered, cursor) {
  for (const e of covered) e.cursor = laterCursor(e.cursor, cursor);
}
