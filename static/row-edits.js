// row-edits.js: the body of a create (POST) or an edit (PATCH) from what the
// person put in the editors. Pure: the editors' readings come in, a body or
// the reasons to refuse it go out, before anything is sent.
//
// A reading is what an editor holds (field-editors.js): {unset: true} (left
// as it was: the column's default on create, the row's value on edit),
// {ok: true, value} (null for NULL) or {ok: false, error}.

/** Same JSON value (a number, text, array or object). */
export function sameValue(a, b) {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The POST body for `table` (tables.js) from `readings` (Map column name →
 * reading): every writable column that was set; a required one not set, or
 * one that cannot be read, refuses the whole.
 * {ok: true, body} | {ok: false, errors: [{column, error}]}.
 */
export function createBody(table, readings) {
  const body = {};
  const errors = [];
  for (const c of table.writableColumns) {
    const r = readings.get(c.name);
    if (!r || r.unset) {
      if (c.required) errors.push({ column: c.name, error: 'is required' });
      continue;
    }
    if (!r.ok) errors.push({ column: c.name, error: r.error });
    else if (r.value === null && !c.nullable) errors.push({ column: c.name, error: 'cannot be NULL' });
    else body[c.name] = r.value;
  }
  return errors.length ? { ok: false, errors } : { ok: true, body };
}

/**
 * The PATCH body for `row` of `table` from `readings`: only the updatable
 * columns whose value differs from the row's. An empty body means nothing
 * changed (no request is worth sending).
 */
export function patchBody(table, row, readings) {
  const body = {};
  const errors = [];
  for (const c of table.updatableColumns) {
    const r = readings.get(c.name);
    if (!r || r.unset) continue;
    if (!r.ok) errors.push({ column: c.name, error: r.error });
    else if (r.value === null && !c.nullable) errors.push({ column: c.name, error: 'cannot be NULL' });
    else if (!sameValue(row?.[c.name] ?? null, r.value)) body[c.name] = r.value;
  }
  return errors.length ? { ok: false, errors } : { ok: true, body };
}

/** The refusals as one sentence for a person. */
export const refusalText = (errors) => errors.map(({ column, error }) => `${column}: ${error}`).join('; ');
