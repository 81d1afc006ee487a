// static/row-edits.js: the POST and PATCH bodies from the editors' readings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBody, patchBody, refusalText } from '../../static/row-edits.js';
import { readTables } from '../../static/tables.js';
import { TABLES } from './tables.test.mjs';

const todo = readTables(TABLES).get('todo');
const keyed = readTables(TABLES).get('keyed');
const set = (value) => ({ ok: true, value });
const bad = (error) => ({ ok: false, error });
const unset = { unset: true };
const readings = (o) => new Map(Object.entries(o));

test('a create sends the columns that were set, and leaves the others to their defaults', () => {
  const r = createBody(todo, readings({ title: set('buy milk'), done: unset, due: set('2026-12-01'), tags: set(['a']), meta: unset }));
  assert.deepEqual(r, { ok: true, body: { title: 'buy milk', due: '2026-12-01', tags: ['a'] } });
});

test('a create may set a nullable column to NULL, and a writable key', () => {
  assert.deepEqual(createBody(todo, readings({ title: set(''), meta: set(null) })), { ok: true, body: { title: '', meta: null } });
  assert.deepEqual(createBody(keyed, readings({ code: set('007'), val: set('x') })), { ok: true, body: { code: '007', val: 'x' } });
});

test('a create without a required column, with NULL where none may be, or with a bad value is refused whole', () => {
  const r = createBody(todo, readings({ title: unset, done: set(null), meta: bad('not valid JSON (line 1, column 3)') }));
  assert.equal(r.ok, false);
  assert.deepEqual(r.errors.map((e) => e.column), ['title', 'done', 'meta']);
  assert.equal(refusalText(r.errors), 'title: is required; done: cannot be NULL; meta: not valid JSON (line 1, column 3)');
});

const row = { todo_id: 5, title: 'a', done: false, due: null, tags: ['x', 'y'], meta: { n: 1 }, mtime: '2026-12-01T00:00:00Z' };

test('an edit sends only what changed', () => {
  const r = patchBody(todo, row, readings({
    title: set('a'), done: set(true), due: set(null), tags: set(['x', 'y']), meta: set({ n: 2 }),
  }));
  assert.deepEqual(r, { ok: true, body: { done: true, meta: { n: 2 } } });
});

test('an edit may set a nullable column to NULL; one that changes nothing has an empty body', () => {
  assert.deepEqual(patchBody(todo, row, readings({ tags: set(null) })), { ok: true, body: { tags: null } });
  assert.deepEqual(patchBody(todo, row, readings({ title: set('a'), tags: unset })), { ok: true, body: {} });
});

test('an edit never sends the key or a column that is not writable', () => {
  const r = patchBody(keyed, { code: 'k', val: 'v' }, readings({ code: set('other'), val: set('w') }));
  assert.deepEqual(r, { ok: true, body: { val: 'w' } });
  assert.deepEqual(patchBody(todo, row, readings({ todo_id: set(9), mtime: set('now') })), { ok: true, body: {} });
});

test('an edit with a value that cannot be read, or NULL where none may be, sends nothing', () => {
  const r = patchBody(todo, row, readings({ title: set(null), meta: bad('not valid JSON'), done: set(true) }));
  assert.equal(r.ok, false);
  assert.deepEqual(r.errors.map((e) => e.column), ['title', 'meta']);
});
