// compare.mjs: a replica against the tables, row by row. The harness's own
// judgement, independent of the page: the truth is what PostgreSQL holds
// (row_to_json of every row, read by chaos.py), parsed with JSON.parse as the
// page parses the API's answers; a view's rows are those whose columns equal
// its `where` as text (the API's filter semantics); `mtime` is compared as an
// instant (a session's time zone may write it with another offset).

const KEY = 'id';   // the key column of the harness's tables

/** Microseconds since the epoch of a timestamptz as text; the text itself if unreadable. */
function instant(text) {
  if (typeof text !== 'string') return text;
  const ms = Date.parse(text.replace(' ', 'T'));
  if (Number.isNaN(ms)) return text;
  const fraction = `${/\.(\d+)/.exec(text)?.[1] ?? ''}000000`;
  return ms * 1000 + Number(fraction.slice(3, 6));
}

function canonicalJSON(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalJSON).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJSON(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const canonicalCache = new WeakMap();   // row object → its canonical text (rows are never mutated)

/** One row's identity for comparison: its columns in key order, mtime as an instant. */
export function rowText(row) {
  if (!row || typeof row !== 'object') return JSON.stringify(row);
  let text = canonicalCache.get(row);
  if (text === undefined) {
    text = canonicalJSON('mtime' in row ? { ...row, mtime: instant(row.mtime) } : row);
    canonicalCache.set(row, text);
  }
  return text;
}

const passes = (row, where) => Object.entries(where)
  .every(([column, value]) => row[column] !== null && row[column] !== undefined && String(row[column]) === String(value));

export class Truth {
  /** tables: {table: [row_to_json text, …]}. */
  constructor(tables, version) {
    this.version = version;
    this.tables = new Map();
    for (const [table, texts] of Object.entries(tables)) {
      const rows = new Map();
      for (const text of texts) {
        const row = JSON.parse(text);
        rows.set(String(row[KEY]), row);
      }
      this.tables.set(table, rows);
    }
    this._views = new Map();
  }

  /** The rows a view must hold: key → row; those its `where` selects that its identity's `rule` allows. */
  expected({ table, where, rule }) {
    const filter = where || rule ? { ...where, ...rule } : null;
    const id = `${table}\u0000${filter ? canonicalJSON(filter) : ''}`;
    if (!this._views.has(id)) {
      const rows = this.tables.get(table) ?? new Map();
      this._views.set(id, filter ? new Map([...rows].filter(([, row]) => passes(row, filter))) : rows);
    }
    return this._views.get(id);
  }
}

/** Rows that differ between a replica's `rows` (key → row) and the expected ones: {count, diffs}. */
export function diff(rows, expected, limit = 5) {
  let count = 0;
  const diffs = [];
  const note = (entry) => { count += 1; if (diffs.length < limit) diffs.push(entry); };
  for (const [key, want] of expected) {
    const have = rows.get(key);
    if (have === undefined) note({ key, problem: 'missing', table: want });
    else if (have !== want && rowText(have) !== rowText(want)) note({ key, problem: 'differs', replica: have, table: want });
  }
  for (const [key, have] of rows) if (!expected.has(key)) note({ key, problem: 'extra', replica: have });
  return { count, diffs };
}
