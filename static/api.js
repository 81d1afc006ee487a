// api.js: the HTTP API of PBP, nothing else. No DOM; one piece of state, the
// token every call sends (`Authorization: Bearer …`, useToken()).
//
// Every failure is thrown as an ApiError: `status` is the HTTP status (0 for a
// network failure or a timeout), `code` the server's stable error code and
// `message` its human text (the JSON body's `message`).

export const API_ROOT = '/api';

export class ApiError extends Error {
  constructor(status, code, message, body = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.body = body;
  }

  /** A network failure, a timeout, or a server-side failure: worth retrying. */
  get transient() {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

let bearer = null;          // the token every call sends, or null (anonymous)
let onRefused = () => {};   // told of a 401: the token is refused, or signing in is needed
let refusal = null;         // the server's 401 invalid_token for this token: later calls fail at once

/**
 * The token every later call sends (null: none, anonymous). `onRefused(err)`
 * hears of each 401 (err.code 'invalid_token' or 'unauthorized'). Once the
 * server has refused the token as invalid (expired, wrongly signed…) every
 * later call fails at once with that error, without a request: retrying it
 * can only be refused again, and never falls back to anonymous.
 */
export function useToken(token, { onRefused: refused = () => {} } = {}) {
  bearer = token || null;
  onRefused = refused;
  refusal = null;
}

/**
 * One request. `body` (if any) is sent as JSON. `timeoutMs` aborts a request
 * that hangs; `signal` lets the caller abort it (an AbortError is rethrown
 * unchanged so callers can tell "I stopped it" from "it failed").
 * Resolves to {status, headers, data} where data is the parsed JSON or null.
 */
export async function request(method, path, { body, signal, timeoutMs = 15000 } = {}) {
  if (refusal) throw refusal;
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; controller.abort(); }, timeoutMs);
  const onAbort = () => controller.abort();
  if (signal) {
    if (signal.aborted) controller.abort();
    else signal.addEventListener('abort', onAbort, { once: true });
  }
  const init = {
    method,
    headers: { Accept: 'application/json' },
    signal: controller.signal,
    cache: 'no-store',
    credentials: 'same-origin',
  };
  const sentToken = bearer;
  if (sentToken) init.headers.Authorization = `Bearer ${sentToken}`;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  let text;
  try {
    response = await fetch(API_ROOT + path, init);
    text = await response.text();
  } catch (err) {
    if (signal?.aborted) throw err;                      // the caller stopped it
    if (timedOut) throw new ApiError(0, 'timeout', `No answer from the server (${method} ${API_ROOT}${path}).`);
    throw new ApiError(0, 'network', 'Cannot reach the server.');
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!response.ok) {
    const code = (data && typeof data.error === 'string') ? data.error : `http_${response.status}`;
    const message = (data && typeof data.message === 'string' && data.message)
      ? data.message
      : `${method} ${API_ROOT}${path} failed: ${response.status} ${response.statusText || ''}`.trim();
    const err = new ApiError(response.status, code, message, data);
    if (response.status === 401) {
      // Refused for the token it sent: a token set since then is not judged by it.
      if (code === 'invalid_token' && sentToken && sentToken === bearer) refusal = err;
      onRefused(err);
    }
    throw err;
  }
  if (text && data === null) {
    throw new ApiError(response.status, 'bad_response', `The server sent something that is not JSON (${method} ${API_ROOT}${path}).`);
  }
  return { status: response.status, headers: response.headers, data };
}

const seg = (v) => encodeURIComponent(String(v));

/**
 * The whole table, page after page in key order, the cursor of the first page
 * (taken before its query) and the table's key column (its PBP-Key header).
 * Later pages are read after it, so they are at least as new as that cursor,
 * and a row that moves in between arrives as an event after it: polling from
 * it misses nothing.
 */
export async function listRows(table, { signal, pageSize = 1000 } = {}) {
  const readPage = async (after) => {
    const query = `?limit=${pageSize}` + (after === undefined ? '' : `&after=${seg(after)}`);
    const { data, headers } = await request('GET', `/${seg(table)}${query}`, { signal, timeoutMs: 20000 });
    if (!Array.isArray(data)) throw new ApiError(200, 'bad_response', `GET /api/${table} did not return an array.`);
    return { data, headers };
  };
  const first = await readPage(undefined);
  const key = keyHeader(first.headers, table);
  const rows = [...first.data];
  let page = first;
  // A full page may have more after it; so may a shorter one that the
  // server cut at its byte budget, which it says with Link: <…>; rel="next".
  const more = ({ data, headers }) => data.length === pageSize || /;\s*rel="next"/.test(headers.get('link') ?? '');
  while (more(page)) {
    const last = page.data[page.data.length - 1]?.[key];
    if (last === undefined || last === null) throw new ApiError(200, 'bad_response', `GET /api/${table} sent a row without its ${key}.`);
    page = await readPage(last);
    rows.push(...page.data);
  }
  return { rows, cursor: cursorHeader(first.headers, table), key };
}

/**
 * One row (null if it does not exist) and a cursor taken before it was read:
 * the cursor comes from a one-row read of the collection made first, so that
 * polling from it misses nothing that happens to the row afterwards.
 */
export async function rowWithCursor(table, key, { signal } = {}) {
  const { headers } = await request('GET', `/${seg(table)}?limit=1`, { signal });
  const cursor = cursorHeader(headers, table);
  const row = await getRow(table, key, { signal });
  return { row, cursor };
}

/** GET /api/_tables: the tables the API serves and their columns (tables.js reads it). */
export async function listTables({ signal } = {}) {
  return (await request('GET', '/_tables', { signal })).data;
}

const keyColumns = new Map();   // table → Promise of its key column's name

/**
 * The name of the table's key column, as the server names it (PBP-Key), asked
 * once per table: a view needs it before its first snapshot, to say which row
 * it watches.
 */
export function tableKey(table, { signal } = {}) {
  if (!keyColumns.has(table)) {
    const asked = request('HEAD', `/${seg(table)}?limit=1`, { signal }).then(({ headers }) => keyHeader(headers, table));
    asked.catch(() => keyColumns.delete(table));   // a failure is asked again next time
    keyColumns.set(table, asked);
  }
  return keyColumns.get(table);
}

function cursorHeader(headers, table) {
  const cursor = headers.get('PBP-Cursor');
  if (!cursor) throw new ApiError(200, 'bad_response', `GET /api/${table} sent no PBP-Cursor header.`);
  return cursor;
}

function keyHeader(headers, table) {
  const key = headers.get('PBP-Key');
  if (!key) throw new ApiError(200, 'bad_response', `GET /api/${table} sent no PBP-Key header.`);
  return key;
}

/** One row, or null if it does not exist (404). */
export async function getRow(table, key, { signal } = {}) {
  try {
    return (await request('GET', `/${seg(table)}/${seg(key)}`, { signal })).data;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

export async function createRow(table, fields) {
  return (await request('POST', `/${seg(table)}`, { body: fields })).data;
}

/** Changes only the columns in `fields` (PATCH); the answer is the whole row. */
export async function patchRow(table, key, fields) {
  return (await request('PATCH', `/${seg(table)}/${seg(key)}`, { body: fields })).data;
}

export async function deleteRow(table, key) {
  await request('DELETE', `/${seg(table)}/${seg(key)}`);
}

/**
 * One long-poll. With a null cursor the server answers at once with the
 * newest cursor (used as a cheap "is the stream up?" probe).
 * Resolves to {cursor, events}; a reset is an ApiError with status 409.
 */
export async function pollChanges(cursor, subscriptions, { signal, timeoutMs = 45000 } = {}) {
  const body = { subscriptions };
  if (cursor != null) body.cursor = cursor;
  const { data } = await request('POST', '/changes', { body, signal, timeoutMs });
  if (!data || data.cursor == null || !Array.isArray(data.events)) {
    throw new ApiError(200, 'bad_response', 'POST /api/changes answered something unexpected.');
  }
  return data;
}
