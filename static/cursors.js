// cursors.js: ordering the change stream's cursors, and naming subscriptions.
//
// The server documents cursors as `EPOCH:SEQ`; two cursors of the same epoch
// are ordered by SEQ (to poll from the oldest member's position and to drop
// replays). Cursors that cannot be ordered are treated conservatively by the
// callers: events are delivered (applying them is idempotent) rather than
// skipped.

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
export function laterCursor(a, b) {
  const c = compareCursors(a, b);
  return c === 1 ? a : b;
}

/** Whether an event at `eventCursor` is news to a copy current up to `cursor`. */
export function isAfter(eventCursor, cursor) {
  const c = compareCursors(eventCursor, cursor);
  return c !== -1 && c !== 0;
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
