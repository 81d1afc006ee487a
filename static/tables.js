// tables.js: the tables the API serves, as GET /api/_tables describes them:
// each one's name, key column and columns (type, nullable, default, writable,
// required, key). Both views are built from these, so nothing in the page
// assumes a table's name, its key column or its columns. Pure: the request is
// api.js's.

import { columnKind } from './columns.js';

/**
 * A described table; `columns` in table order, each with its `kind` (columns.js)
 * and `updatable` (an edit may change it: writable, and not the key).
 */
export class TableDescription {
  constructor({ name, key, columns }) {
    this.name = name;
    this.key = key;
    this.columns = columns.map((c) => Object.freeze({ ...c, ...columnKind(c), updatable: c.writable && !c.key }));
    Object.freeze(this.columns);
    this.keyColumn = this.columns.find((c) => c.name === key) ?? null;
  }

  column(name) { return this.columns.find((c) => c.name === name) ?? null; }

  /** The columns a new row may be given (POST). */
  get writableColumns() { return this.columns.filter((c) => c.writable); }

  /** The columns an edit may change (PATCH): writable, and not the key (the URL names the row). */
  get updatableColumns() { return this.columns.filter((c) => c.writable && !c.key); }
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * The answer of GET /api/_tables as a Map name → TableDescription, sorted by
 * name. Throws a TypeError naming what is wrong with an answer of another shape.
 */
export function readTables(data) {
  if (!isObject(data) || !Array.isArray(data.tables)) throw new TypeError('GET /api/_tables: no "tables" list');
  const out = new Map();
  for (const t of data.tables) {
    if (!isObject(t) || typeof t.name !== 'string' || typeof t.key !== 'string' || !Array.isArray(t.columns)) {
      throw new TypeError(`GET /api/_tables: a table without name, key or columns: ${JSON.stringify(t)}`);
    }
    for (const c of t.columns) {
      if (!isObject(c) || typeof c.name !== 'string' || typeof c.type !== 'string') {
        throw new TypeError(`GET /api/_tables: a column of ${t.name} without name or type: ${JSON.stringify(c)}`);
      }
    }
    if (!t.columns.some((c) => c.name === t.key)) throw new TypeError(`GET /api/_tables: ${t.name}'s key ${t.key} is not among its columns`);
    out.set(t.name, new TableDescription({
      name: t.name,
      key: t.key,
      columns: t.columns.map((c) => ({
        name: c.name,
        type: c.type,
        nullable: c.nullable === true,
        default: c.default ?? null,
        writable: c.writable === true,
        required: c.required === true,
        key: c.name === t.key,
      })),
    }));
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
