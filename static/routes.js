// routes.js: the page's addresses. `/` or `#/testtype` show a table;
// `#/testtype/5` or `/?id=5` (`/?table=testtype&id=5`) show row 5 alone, by
// the value of the table's key column (whatever the server names it).

const DEFAULT_TABLE = 'testtype';

const decode = (s) => { try { return decodeURIComponent(s); } catch { return s; } };

/**
 * {table, key} from the address; `key` (the value of the row's key column, as
 * text; `?id=` in a query string) is null for the whole table.
 */
export function parseRoute(loc = location) {
  let m = /^#\/([^/]+)\/(.+)$/.exec(loc.hash);
  if (m) return { table: decode(m[1]), key: decode(m[2]) };
  m = /^#\/([^/]*)\/?$/.exec(loc.hash);
  if (m) return { table: decode(m[1]) || DEFAULT_TABLE, key: null };
  const q = new URLSearchParams(loc.search);
  const key = q.get('id');
  return { table: q.get('table') || DEFAULT_TABLE, key: key === null || key === '' ? null : key };
}

/** A key as the subscription's filter value: a number when it is one. */
export const keyValue = (key) => (/^-?\d+$/.test(key) && Number.isSafeInteger(Number(key)) ? Number(key) : key);

/** The address of one row's own view. */
export const rowHref = (table, key) => `#/${encodeURIComponent(table)}/${encodeURIComponent(key)}`;
export const tableHref = (table) => `#/${encodeURIComponent(table)}`;
