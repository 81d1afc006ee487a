// routes.js: the page's addresses. `/` or `#/` show the list of tables the API
// serves; `#/todo` a table; `#/todo/5` (or `/?table=todo&id=5`) one row alone,
// by the value of the table's key column, as text (whatever the server names
// that column). No table is assumed: the list comes from /api/_tables.

export const HOME_HREF = '#/';

const decode = (s) => { try { return decodeURIComponent(s); } catch { return s; } };

/**
 * {table, key} from the address: `table` null for the list of tables, `key`
 * (the value of the row's key column, as text) null for the whole table.
 */
export function parseRoute(loc = location) {
  let m = /^#\/([^/]+)\/(.+)$/.exec(loc.hash);
  if (m) return { table: decode(m[1]), key: decode(m[2]) };
  m = /^#\/([^/]*)\/?$/.exec(loc.hash);
  if (m) return { table: decode(m[1]) || null, key: null };
  const q = new URLSearchParams(loc.search);
  const table = q.get('table') || null;
  const key = q.get('id');
  return { table, key: table === null || key === null || key === '' ? null : key };
}

/**
 * A key from the address as the value of a subscription's filter on the key
 * column (`column`: its description, with its kind, columns.js): a number for
 * an integer column when the text is one exactly; the text itself otherwise
 * (a text key '007' is not 7).
 */
export function keyValue(key, column = null) {
  if (column?.kind !== 'integer' || !/^[+-]?\d+$/.test(key)) return key;
  const n = Number(key);
  return Number.isSafeInteger(n) ? n : key;
}

/** The address of one row's own view. */
export const rowHref = (table, key) => `#/${encodeURIComponent(table)}/${encodeURIComponent(key)}`;
export const tableHref = (table) => `#/${encodeURIComponent(table)}`;
