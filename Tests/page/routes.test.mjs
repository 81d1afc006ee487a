// static/routes.js: the page's addresses. Node has no `location`: importing
// the module must not touch it (parseRoute reads it only when called without one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRoute, keyValue, rowHref, tableHref } from '../../static/routes.js';

const at = (hash = '', search = '') => parseRoute({ hash, search });

test('no address, or the table\'s own, shows the whole table', () => {
  assert.deepEqual(at(), { table: 'testtype', key: null });
  assert.deepEqual(at('#/'), { table: 'testtype', key: null });
  assert.deepEqual(at('#/other'), { table: 'other', key: null });
  assert.deepEqual(at('#/other/'), { table: 'other', key: null });
});

test('#/table/key shows one row, the key as text (it may hold slashes)', () => {
  assert.deepEqual(at('#/testtype/5'), { table: 'testtype', key: '5' });
  assert.deepEqual(at('#/t/a/b'), { table: 't', key: 'a/b' });
});

test('?id= (and ?table=) show one row; an empty id shows the table', () => {
  assert.deepEqual(at('', '?id=5'), { table: 'testtype', key: '5' });
  assert.deepEqual(at('', '?table=other&id=x'), { table: 'other', key: 'x' });
  assert.deepEqual(at('', '?table=other'), { table: 'other', key: null });
  assert.deepEqual(at('', '?id='), { table: 'testtype', key: null });
});

test('the hash wins over the query string; a hash of another form does not count', () => {
  assert.deepEqual(at('#/testtype/7', '?id=5'), { table: 'testtype', key: '7' });
  assert.deepEqual(at('#top', '?id=5'), { table: 'testtype', key: '5' });
});

test('a bad escape is kept as written rather than failing', () => {
  assert.deepEqual(at('#/testtype/%E0%A4%A'), { table: 'testtype', key: '%E0%A4%A' });
});

test('rowHref and tableHref come back through parseRoute unchanged', () => {
  for (const [table, key] of [['testtype', '5'], ['my table', 'a/b?c#d'], ['t', 'ü %'], ['t', '100%25'], ['x/y', '1']]) {
    assert.deepEqual(at(rowHref(table, key)), { table, key });
    assert.deepEqual(at(tableHref(table)), { table, key: null });
  }
});

test('keyValue: a safe integer as a number, anything else as given', () => {
  assert.equal(keyValue('5'), 5);
  assert.equal(keyValue('-12'), -12);
  assert.equal(keyValue('5a'), '5a');
  assert.equal(keyValue('1.5'), '1.5');
  assert.equal(keyValue('9007199254740993'), '9007199254740993');   // not exact as a Number
});
