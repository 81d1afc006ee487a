// columns.js: what a column's PostgreSQL type (format_type, as /api/_tables
// names it) means for the page: which editor fits it, how its value reads as
// text, and how what a person typed becomes the JSON value the API takes.
// Pure: no DOM, no network (field-editors.js builds the inputs from this).
//
// Values are as row_to_json writes them: date "2026-12-01", arrays as JSON
// arrays, json/jsonb as JSON, boolean true/false, numbers as JSON numbers.

const INTEGER = /^(smallint|integer|bigint|int[248]?|smallserial|serial|bigserial)$/;
const DECIMAL = /^(numeric|decimal)(\(\d+(,\s*-?\d+)?\))?$|^(real|double precision|float[48]?)$/;
const TIMESTAMP = /^(timestamp|time)(\(\d\))?( with(out)? time zone)?$/;

/**
 * The kind of editor and text a type calls for: 'boolean', 'integer',
 * 'decimal', 'date', 'timestamp', 'json', 'array' (with `element`, the kind of
 * its items) or 'text' (anything else: text, varchar, uuid, enums…).
 */
export function typeKind(type) {
  const t = String(type ?? '').trim().toLowerCase();
  if (t.endsWith('[]')) {
    const inner = t.slice(0, -2);
    // An array of arrays has no list editor: it is edited as JSON.
    if (inner.endsWith('[]')) return { kind: 'json' };
    return { kind: 'array', element: typeKind(inner).kind };
  }
  if (t === 'boolean' || t === 'bool') return { kind: 'boolean' };
  if (INTEGER.test(t)) return { kind: 'integer' };
  if (DECIMAL.test(t)) return { kind: 'decimal' };
  if (t === 'date') return { kind: 'date' };
  if (TIMESTAMP.test(t)) return { kind: 'timestamp' };
  if (t === 'json' || t === 'jsonb') return { kind: 'json' };
  return { kind: 'text' };
}

/** A column's kind (see typeKind). */
export const columnKind = (column) => typeKind(column?.type);

/** Whether values of this kind are long enough text to be clamped in a table. */
export const isTextual = (kind) => kind === 'text';

/**
 * A value as text for a person: null for SQL NULL (the views show that as
 * NULL, apart from an empty string), arrays and JSON as JSON.
 */
export function displayText(value, { kind }) {
  if (value === null || value === undefined) return null;
  if (kind === 'json' || kind === 'array' || typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** The text an input of this kind starts from, for a value (not NULL). */
export function editorText(value, { kind }) {
  if (value === null || value === undefined) return '';
  if (kind === 'json') return JSON.stringify(value, null, 2);
  if (kind === 'date') return String(value).slice(0, 10);
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

const ok = (value) => ({ ok: true, value });
const refused = (error) => ({ ok: false, error });

/** Where a JSON text fails to parse, for a person. */
function jsonError(raw, err) {
  // V8 quotes the whole text back ('…, "{"a": }" is not valid JSON'): the person has it in front of them.
  const message = String(err?.message ?? 'cannot be read').replace(/, ".*" is not valid JSON$/s, '');
  const at = /position (\d+)/.exec(message);
  if (!at) return `not valid JSON: ${message}`;
  const pos = Number(at[1]);
  const before = raw.slice(0, pos);
  const line = before.split('\n').length;
  const col = pos - before.lastIndexOf('\n');
  return `not valid JSON (line ${line}, column ${col})`;
}

/**
 * What a person typed (`raw`: the input's text; for 'boolean' true/false; for
 * 'array' the list of item texts) as the JSON value to send, or why not.
 * {ok: true, value} | {ok: false, error}. NULL is chosen apart (the NULL
 * toggle), never guessed from an empty input.
 */
export function parseInput(raw, { kind, element = 'text' }) {
  switch (kind) {
    case 'boolean':
      return typeof raw === 'boolean' ? ok(raw) : refused('true or false');
    case 'integer': {
      const s = String(raw).trim();
      if (!/^[+-]?\d+$/.test(s)) return refused(s === '' ? 'a whole number is needed' : `“${s}” is not a whole number`);
      const n = Number(s);
      if (!Number.isSafeInteger(n)) return refused(`${s} is too large for this page to send exactly`);
      return ok(n);
    }
    case 'decimal': {
      const s = String(raw).trim();
      const n = Number(s);
      if (s === '' || !Number.isFinite(n)) return refused(s === '' ? 'a number is needed' : `“${s}” is not a number`);
      return ok(n);
    }
    case 'date': {
      const s = String(raw).trim();
      if (!/^\d{4}-\d{2}-\d{2}$/.test(s) || Number.isNaN(Date.parse(`${s}T00:00:00Z`))) {
        return refused(s === '' ? 'a date is needed' : `“${s}” is not a date (YYYY-MM-DD)`);
      }
      return ok(s);
    }
    case 'timestamp': {
      const s = String(raw).trim();
      return s === '' ? refused('a time is needed') : ok(s);
    }
    case 'json': {
      const s = String(raw);
      if (s.trim() === '') return refused('JSON is needed (e.g. {} or null)');
      try {
        return ok(JSON.parse(s));
      } catch (err) {
        return refused(jsonError(s, err));
      }
    }
    case 'array': {
      if (!Array.isArray(raw)) return refused('a list is needed');
      const items = [];
      for (const [i, item] of raw.entries()) {
        const one = parseInput(item, { kind: element });
        if (!one.ok) return refused(`item ${i + 1}: ${one.error}`);
        items.push(one.value);
      }
      return ok(items);
    }
    default:
      return ok(String(raw));
  }
}

/** The item texts a list editor starts from, for an array value. */
export function listItems(value, { element = 'text' } = {}) {
  if (!Array.isArray(value)) return [];
  return value.map((v) => (element === 'boolean' ? v === true : editorText(v, { kind: element })));
}
