// static/routes.js: the page's addresses. Node has no `location`: importing
// the module must not touch it (parseRoute reads it only when called without one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRoute, keyValue, rowHref, tableHref, HOME_HREF } from '../../static/routes.js';

const at = (hash = '', search = '') => parseRoute({ hash, search });
const home = { table: null, key: null };

test('no address shows the list of tables: no table is assumed', () => {
  assert.deepEqual(at(), home);
  assert.deepEqual(at('#/'), home);
  assert.deepEqual(at(HOME_HREF), home);
  assert.deepEqual(at('', '?id=5'), home);
});

test('#/table shows the whole table', () => {
  assert.deepEqual(at('#/todo'), { table: 'todo', key: null });
  assert.deepEqual(at('#/other/'), { table: 'other', key: null });
});

test('#/table/key shows one row, the key as text (it may hold slashes)', () => {
  assert.deepEqual(at('#/testtype/5'), { table: 'testtype', key: '5' });
  assert.deepEqual(at('#/todo/5'), { table: 'todo', key: '5' });
  assert.deepEqual(at('#/t/a/b'), { table: 't', key: 'a/b' });
  assert.deepEqual(at('#/keyed/007'), { table: 'keyed', key: '007' });
});

test('?table= (and &id=) show a table or one of its rows', () => {
  assert.deepEqual(at('', '?table=other&id=x'), { table: 'other', key: 'x' });
  assert.deepEqual(at('', '?table=other'), { table: 'other', key: null });
  assert.deepEqual(at('', '?table=other&id='), { table: 'other', key: null });
});

test('the hash wins over the query string; a hash of another form does not count', () => {
  assert.deepEqual(at('#/testtype/7', '?table=x&id=5'), { table: 'testtype', key: '7' });
  assert.deepEqual(at('#top', '?table=testtype&id=5'), { table: 'testtype', key: '5' });
});

test('a bad escape is kept as written rather than failing', () => {
  assert.deepEqual(at('#/testtype/%E0%A4%A'), { table: 'testtype', key: '%E0%A4%A' });
});

test('rowHref and tableHref come back through parseRoute unchanged', () => {
  for (const [table, key] of [['testtype', '5'], ['my table', 'a/b?c#d'], ['t', 'ü %'], ['t', '100%25'], ['x/y', '1'], ['k', '007']]) {
    assert.deepEqual(at(rowHref(table, key)), { table, key });
    assert.deepEqual(at(tableHref(table)), { table, key: null });
  }
});

test('keyValue: a key of an integer column as a number', () => {
  const bigint = { kind: 'integer' };
  assert.equal(keyValue('5', bigint), 5);
  assert.equal(keyValue('-12', bigint), -12);
  assert.equal(keyValue('007', bigint), 7);
  assert.equal(keyValue('9007199254740993', bigint), '9007199254740993');   // not exact as a Number
  assert.equal(keyValue('5a', bigint), '5a');                              // the server says it is not a number
});

test('keyValue: a key of any other column stays the text the server gave', () => {
  for (const kind of ['text', 'date', 'decimal', undefined]) {
    assert.equal(keyValue('007', { kind }), '007');
    assert.equal(keyValue('5', { kind }), '5');
  }
  assert.equal(keyValue('007'), '007');
  assert.equal(keyValue('1.5', { kind: 'integer' }), '1.5');
});
