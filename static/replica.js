// replica.js: the local copy of one table, or of the rows of a table that
// pass a filter (a row view: `where: {id: 5}`). No network, no DOM.
//
// Rows live in a Map keyed by String(row[keyField]). Changes arrive as a whole
// snapshot (replaceAll) or as change-stream events (applyEvents); listeners are
// told once per batch which keys changed, so a view can update just those.
//
// Events apply in stream order, which is commit order: the later event wins,
// whatever its mtime says (a clock that stepped back makes mtimes lie).
// Only where a copy from outside the stream meets it is mtime compared: the
// stream may replay events that a snapshot, this tab's write answer or a
// row fetched for a truncated event already shows. Such a row is a *floor*
// for its key: events older than it are those replays and are skipped,
// until one reaches it; from then on the stream alone decides again. A row
// this tab just deleted is not brought back by an event from before the delete.

/** Map key for a row key (ids may arrive as numbers or strings). */
export const keyOf = (k) => String(k);

const MTIME_RE = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * An mtime as a number of microseconds since the epoch, or null if it cannot
 * be read. Keeps the microseconds PostgreSQL sends (Date keeps only millis).
 */
export function mtimeMicros(s) {
  if (typeof s !== 'string') return null;
  const m = MTIME_RE.exec(s.trim());
  if (!m) return null;
  let zone = m[4] || 'Z';
  if (/^[+-]\d{2}$/.test(zone)) zone += ':00';
  else if (/^[+-]\d{4}$/.test(zone)) zone = `${zone.slice(0, 3)}:${zone.slice(3)}`;
  const ms = Date.parse(`${m[1]}T${m[2]}${zone.toUpperCase()}`);
  if (Number.isNaN(ms)) return null;
  const micros = Number(((m[3] || '') + '000000').slice(0, 6));
  return ms * 1000 + micros;
}

function sameValue(a, b) {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

function sameRow(a, b) {
  if (a === b) return true;
  if (!a || !b) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && sameValue(a[k], b[k]));
}

/**
 * Whether `row` passes a subscription's `where` (column → value). Values are
 * compared as text, as the server does (a query string has no types).
 */
export function rowPasses(row, where) {
  if (!where) return true;
  if (!row || typeof row !== 'object') return false;
  return Object.entries(where).every(([col, v]) => row[col] != null && String(row[col]) === String(v));
}

const DELETED_MEMORY = 200;   // how many deletions a replica remembers (for "deleted at …")

export class Replica {
  /**
   * `keyField`: the table's key column, as the server names it (PBP-Key).
   * `where`: keep only rows with these column values (a row subscription).
   */
  constructor(table, { keyField, where = null } = {}) {
    if (!keyField) throw new TypeError(`Replica(${table}) needs the table's key column`);
    this.table = table;
    this.keyField = keyField;
    this.where = where;
    this.rows = new Map();
    this.loaded = false;
    this.deleted = new Map();       // key → {mtime, here, truncate} of rows deleted since the snapshot
    this._floors = new Map();      // key → mtime (µs) of a row from outside the stream that events have not reached yet
    this._deletedHere = new Set(); // keys deleted by this tab whose delete event has not arrived yet
    this._listeners = new Set();
  }

  get size() { return this.rows.size; }
  get(key) { return this.rows.get(keyOf(key)); }

  /** Rows ordered by key (numerically when both keys are numbers). */
  sortedRows() {
    const kf = this.keyField;
    return [...this.rows.values()].sort((a, b) => compareKeys(a[kf], b[kf]));
  }

  /** listener({reset, keys}) after every change; returns an unsubscribe function. */
  subscribe(listener) {
    this._listeners.add(listener);
    return () => this._listeners.delete(listener);
  }

  _notify(keys, reset = false) {
    if (!reset && keys.size === 0) return;
    for (const fn of this._listeners) {
      try { fn({ reset, keys }); } catch (err) { console.error('replica listener failed', err); }
    }
  }

  /** Replace everything with a snapshot: build the new map, then notify once. */
  replaceAll(rows) {
    const next = new Map();
    for (const row of rows) {
      if (row && row[this.keyField] != null && rowPasses(row, this.where)) next.set(keyOf(row[this.keyField]), row);
    }
    const changed = new Set();
    for (const [k, row] of next) if (!sameRow(this.rows.get(k), row)) changed.add(k);
    for (const k of this.rows.keys()) if (!next.has(k)) changed.add(k);
    this.rows = next;
    this._floors.clear();
    for (const [k, row] of next) this._raiseFloor(k, row);
    this.deleted.clear();
    this._deletedHere.clear();
    this.loaded = true;
    this._notify(changed, true);
    return changed;
  }

  /**
   * Apply change-stream events (already resolved: no `truncated` ones) for
   * this table, in order. Returns the set of keys whose row changed.
   */
  applyEvents(events) {
    const changed = new Set();
    for (const ev of events) {
      if (!ev || ev.table !== this.table) continue;
      if (ev.truncated) {
        console.warn('replica: unresolved truncated event ignored', ev);
        continue;
      }
      if (ev.op === 'truncate') {
        // TRUNCATE: the table is empty now.
        for (const k of [...this.rows.keys()]) if (this._remove(k, { mtime: ev.mtime, truncate: true })) changed.add(k);
        this._deletedHere.clear();
      } else if (ev.op === 'delete') {
        const key = ev.key ?? ev.old?.[this.keyField];
        if (key == null) continue;
        this._deletedHere.delete(keyOf(key));
        if (this._remove(key, { mtime: ev.mtime })) changed.add(keyOf(key));
      } else if (ev.op === 'insert' || ev.op === 'update') {
        if (!ev.new) continue;
        const oldKey = ev.old?.[this.keyField];
        const newKey = ev.new[this.keyField];
        // An update that changed the key moves the row.
        if (oldKey != null && keyOf(oldKey) !== keyOf(newKey) && this._remove(oldKey, { mtime: ev.mtime })) changed.add(keyOf(oldKey));
        if (!rowPasses(ev.new, this.where)) {
          // The row left this replica's filter: it is no longer ours to show.
          if (this._remove(newKey, { mtime: ev.mtime })) changed.add(keyOf(newKey));
        } else if (this._applyRow(ev.new, { fetched: ev.resolved === true })) {
          changed.add(keyOf(newKey));
        }
      }
    }
    this._notify(changed);
    return changed;
  }

  /**
   * A row the API just returned (after POST / PUT). Not from the stream: an
   * event already applied may be newer (mtimes of one row only grow), and
   * the row's own event, still to come, may be preceded by older ones.
   */
  upsertLocal(row) {
    const changed = new Set();
    if (row && rowPasses(row, this.where) && this._upsertAnswer(row)) changed.add(keyOf(row[this.keyField]));
    this._notify(changed);
  }

  /** A row this tab just deleted through the API. */
  removeLocal(key) {
    const k = keyOf(key);
    const changed = new Set([k]);
    if (this._remove(key, { here: true })) {
      // Until its delete event arrives, no older event may bring the row back.
      this._deletedHere.add(k);
    } else if (this.deleted.has(k)) {
      // The delete event came first: it was still this tab's delete.
      this.deleted.get(k).here = true;
    } else {
      changed.clear();
    }
    this._notify(changed);
  }

  /** A row from an event; `fetched`: read just now for a truncated event. */
  _applyRow(row, { fetched }) {
    const raw = row[this.keyField];
    if (raw == null) return false;
    const k = keyOf(raw);
    if (this._deletedHere.has(k)) return false;
    const floor = this._floors.get(k);
    const at = mtimeMicros(row.mtime);
    if (floor !== undefined && at !== null && at < floor) return false; // a replay of what the floor shows
    this._floors.delete(k);
    if (fetched) this._raiseFloor(k, row);
    return this._put(k, row);
  }

  _upsertAnswer(row) {
    const raw = row[this.keyField];
    if (raw == null) return false;
    const k = keyOf(raw);
    if (this._deletedHere.has(k)) return false;
    const old = this.rows.get(k);
    if (old) {
      const a = mtimeMicros(old.mtime);
      const b = mtimeMicros(row.mtime);
      if (a !== null && b !== null && b < a) return false; // an event newer than this answer came first
    }
    this._raiseFloor(k, row);
    return this._put(k, row);
  }

  _raiseFloor(k, row) {
    const at = mtimeMicros(row.mtime);
    if (at !== null && !(this._floors.get(k) > at)) this._floors.set(k, at);
  }

  _put(k, row) {
    if (sameRow(this.rows.get(k), row)) return false;
    this.rows.set(k, row);
    this.deleted.delete(k);
    return true;
  }

  _remove(key, { mtime = null, here = false, truncate = false } = {}) {
    const k = keyOf(key);
    this._floors.delete(k);
    if (!this.rows.delete(k)) return false;
    this.deleted.delete(k);
    this.deleted.set(k, { mtime: mtime ?? new Date().toISOString(), here, truncate });
    if (this.deleted.size > DELETED_MEMORY) this.deleted.delete(this.deleted.keys().next().value);
    return true;
  }
}

export function compareKeys(a, b) {
  const na = typeof a === 'number' || /^-?\d+$/.test(String(a));
  const nb = typeof b === 'number' || /^-?\d+$/.test(String(b));
  if (na && nb) return Number(a) - Number(b);
  if (na !== nb) return na ? -1 : 1;
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}
