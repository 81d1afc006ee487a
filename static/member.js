// member.js: one view as a member of the browser's TabSync: the state TabSync
// keeps on it, reading its snapshot (again, after a reset), the 'join' that
// announces it, and the events it is handed, each once and in order.
//
// A member is what watch.js makes, {subscriptions, keyField, load(signal),
// apply(events)}; TabSync adds to the same object its id, the subscriptions'
// keys, `cursor` (up to which its copy is current), `ready`, `at` (when its
// snapshot was started), `loading` (why it is loading, or null) and
// `received` (how many events it applied).

import { retrying } from './poller.js';
import { compareCursors, isAfter, laterCursor, subscriptionKey } from './cursors.js';
import { newId } from './ids.js';

/** Makes a view's member a fresh member (not loaded, not joined). */
export function enrol(member) {
  return Object.assign(member, {
    id: newId(),
    keys: member.subscriptions.map(subscriptionKey),
    cursor: null,
    ready: false,
    at: 0,
    loading: null,
    received: 0,
  });
}

/**
 * Reads the member's snapshot, retrying failures (`onFailure` after each), and
 * again if the stream was reset while it loaded (`resetAt()` moved past its
 * start): the snapshot may predate the reset. Resolves to {cursor, at}, or
 * null once `wanted()` says the member is no longer shown.
 */
export async function readSnapshot(member, { signal, resetAt, onFailure, wanted }) {
  let snap;
  let at;
  do {
    at = Date.now();
    snap = await retrying(() => member.load(signal), { signal, onFailure });
    if (!wanted() || signal.aborted) return null;
  } while (resetAt() > at);
  return { cursor: snap.cursor, at };
}

/** The message that announces (or re-announces) a loaded member to every tab. */
export function joinMessage(member, tabId) {
  return {
    type: 'join', member: member.id, tab: tabId, subs: member.subscriptions,
    keyField: member.keyField, cursor: member.cursor, at: member.at,
  };
}

/** Applies the events after the member's cursor, then moves the cursor to `cursor`. */
export function deliver(member, events, cursor) {
  const fresh = events.filter((ev) => isAfter(ev.cursor, member.cursor));
  member.received += fresh.length;
  if (fresh.length) member.apply(fresh);
  member.cursor = laterCursor(member.cursor, cursor);
}

/**
 * Whether a batch the leader shared shows that the member's copy is from a
 * stream that is gone: the poll left it out and answered with a cursor of
 * another epoch than the member's. The leader polls from its own member's
 * cursor and leaves out the cursors it cannot order against it, and the
 * server answered that poll, so that epoch is the live one: nobody will ever
 * poll for this member or tell it to reset. It must reload its snapshot.
 */
export function isStranded(member, batch) {
  if (!member?.ready || (batch.covered ?? []).includes(member.id)) return false;
  return compareCursors(member.cursor, batch.cursor) === null;
}
