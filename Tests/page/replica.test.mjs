// static/replica.js: the local copy of a table (or of the rows passing a
// filter), kept by snapshots and change-stream events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Replica, rowPasses, mtimeMicros, keyOf, compareKeys } from '../../static/replica.js';

const T = 'testtype';
const r = (id, val, mtime) => ({ id, val, mtime });
const ins = (row) => ({ table: T, op: 'insert', key: row.id, new: row });
const upd = (row, old = { id: row.id }) => ({ table: T, op: 'update', key: row.id, new: row, old });
const del = (id, mtime = '2024-05-01T00:00:09Z') => ({ table: T, op: 'delete', key: id, old: { id }, mtime });
const t = (s) => `2024-05-01T00:00:0${s}Z`;

/** A replica and the notifications it sends, one entry per notification. */
function replica(opts = {}) {
  const rep = new Replica(T, { keyField: 'id', ...opts });
  const told = [];
  rep.subscribe(({ reset, keys }) => told.push({ reset, keys: [...keys].sort() }));
  return { rep, told };
}
const vals = (rep) => rep.sortedRows().map((x) => [x.id, x.val]);

/** Runs fn with console[method] collecting its calls instead of printing. */
function quietly(method, fn) {
  const saved = console[method];
  const calls = [];
  console[method] = (...args) => calls.push(args);
  try { fn(); } finally { console[method] = saved; }
  return calls;
}

// ---- snapshots --------------------------------------------------------------------

test('a replica needs its table\'s key column', () => {
  assert.throws(() => new Replica(T, {}), TypeError);
});

test('replaceAll keeps the rows with a key that pass the filter, and notifies once as a reset', () => {
  const { rep, told } = replica({ where: { val: 'a' } });
  assert.equal(rep.loaded, false);
  const changed = rep.replaceAll([r(1, 'a', t(1)), r(2, 'b', t(1)), { val: 'a' }, null, r(3, 'a', t(1))]);
  assert.equal(rep.loaded, true);
  assert.deepEqual(vals(rep), [[1, 'a'], [3, 'a']]);
  assert.deepEqual([...changed].sort(), ['1', '3']);
  assert.deepEqual(told, [{ reset: true, keys: ['1', '3'] }]);
});

test('a second snapshot names only the rows that differ, and forgets the deletions', () => {
  const { rep, told } = replica();
  rep.replaceAll([r(1, 'a', t(1)), r(2, 'b', t(1)), r(3, 'c', t(1))]);
  rep.applyEvents([del(3)]);
  assert.ok(rep.deleted.has('3'));
  told.length = 0;
  rep.replaceAll([r(1, 'a', t(1)), r(2, 'B', t(2)), r(4, 'd', t(2))]);
  assert.deepEqual(told, [{ reset: true, keys: ['2', '4'] }]);
  assert.equal(rep.deleted.size, 0);
  // Nothing changed: still told, as a reset (the view redraws from scratch).
  told.length = 0;
  rep.replaceAll([r(1, 'a', t(1)), r(2, 'B', t(2)), r(4, 'd', t(2))]);
  assert.deepEqual(told, [{ reset: true, keys: [] }]);
});

// ---- events -------------------------------------------------------------------------

test('inserts, updates and deletes apply in order; one notification per batch', () => {
  const { rep, told } = replica();
  rep.replaceAll([]);
  told.length = 0;
  const changed = rep.applyEvents([ins(r(1, 'a', t(1))), ins(r(2, 'b', t(1))), upd(r(1, 'A', t(2))), del(2)]);
  assert.deepEqual(vals(rep), [[1, 'A']]);
  assert.deepEqual([...changed].sort(), ['1', '2']);
  assert.deepEqual(told, [{ reset: false, keys: ['1', '2'] }]);
});

test('an update never moves a row back to an older mtime', () => {
  const { rep } = replica();
  rep.replaceAll([r(1, 'new', '2024-05-01 00:00:05.000002+00')]);
  const changed = rep.applyEvents([upd(r(1, 'old', '2024-05-01 00:00:05.000001+00'))]);
  assert.equal(changed.size, 0);
  assert.equal(rep.get(1).val, 'new');
  // Same mtime, other content, or newer: applied.
  rep.applyEvents([upd(r(1, 'same-time', '2024-05-01 00:00:05.000002+00'))]);
  assert.equal(rep.get(1).val, 'same-time');
  rep.applyEvents([upd(r(1, 'newer', '2024-05-01T00:00:05.000003Z'))]);
  assert.equal(rep.get(1).val, 'newer');
});

test('an event that changes nothing notifies nobody', () => {
  const { rep, told } = replica();
  rep.replaceAll([r(1, 'a', t(1))]);
  told.length = 0;
  assert.equal(rep.applyEvents([upd(r(1, 'a', t(1)))]).size, 0);
  assert.deepEqual(told, []);
});

test('a delete of an unknown key is a no-op', () => {
  const { rep, told } = replica();
  rep.replaceAll([r(1, 'a', t(1))]);
  told.length = 0;
  assert.equal(rep.applyEvents([del(99)]).size, 0);
  assert.deepEqual(told, []);
  assert.deepEqual(vals(rep), [[1, 'a']]);
  assert.equal(rep.deleted.has('99'), false);
});

test('a delete finds its row by the old row\'s key when the event has no key; a delete without either is skipped', () => {
  const { rep } = replica();
  rep.replaceAll([r(1, 'a', t(1)), r(2, 'b', t(1))]);
  rep.applyEvents([{ table: T, op: 'delete', old: { id: 2 }, mtime: t(3) }, { table: T, op: 'delete', mtime: t(3) }]);
  assert.deepEqual(vals(rep), [[1, 'a']]);
  assert.deepEqual(rep.deleted.get('2'), { mtime: t(3), here: false, truncate: false });
});

test('keys match whether they come as numbers or as text', () => {
  const { rep } = replica();
  rep.replaceAll([r(5, 'a', t(1))]);
  rep.applyEvents([upd(r('5', 'b', t(2)))]);
  assert.equal(rep.size, 1);
  assert.equal(rep.get(5).val, 'b');
  rep.applyEvents([del('5')]);
  assert.equal(rep.size, 0);
});

test('events for another table, and events without a row, are skipped', () => {
  const { rep } = replica();
  rep.replaceAll([r(1, 'a', t(1))]);
  const changed = rep.applyEvents([
    { ...del(1), table: 'other' },
    { table: T, op: 'insert', key: 2 },
    { table: T, op: 'vacuum', key: 1 },
    null,
  ]);
  assert.equal(changed.size, 0);
  assert.deepEqual(vals(rep), [[1, 'a']]);
});

test('an unresolved truncated event is ignored (and said so)', () => {
  const { rep } = replica();
  rep.replaceAll([r(1, 'a', t(1))]);
  let changed;
  const warned = quietly('warn', () => {
    changed = rep.applyEvents([{ table: T, op: 'delete', key: 1, truncated: true }]);
  });
  assert.equal(changed.size, 0);
  assert.equal(rep.size, 1);
  assert.equal(warned.length, 1);
});

test('truncate empties the replica, remembering each row as truncated', () => {
  const { rep, told } = replica();
  rep.replaceAll([r(1, 'a', t(1)), r(2, 'b', t(1))]);
  told.length = 0;
  rep.applyEvents([{ table: T, op: 'truncate', mtime: t(4) }]);
  assert.equal(rep.size, 0);
  assert.deepEqual(told, [{ reset: false, keys: ['1', '2'] }]);
  assert.deepEqual(rep.deleted.get('1'), { mtime: t(4), here: false, truncate: true });
  // Rows inserted after it come in.
  rep.applyEvents([ins(r(1, 'again', t(5)))]);
  assert.deepEqual(vals(rep), [[1, 'again']]);
});

test('truncate lifts the guard of this tab\'s own deletes', () => {
  const { rep } = replica();
  rep.replaceAll([r(1, 'a', t(1))]);
  rep.removeLocal(1);
  rep.applyEvents([{ table: T, op: 'truncate', mtime: t(4) }, ins(r(1, 'after', t(5)))]);
  assert.equal(rep.get(1)?.val, 'after');
});

test('an update that changes the key moves the row', () => {
  const { rep } = replica();
  rep.replaceAll([r(1, 'a', t(1)), r(2, 'b', t(1))]);
  const changed = rep.applyEvents([upd(r(7, 'a', t(2)), { id: 1 })]);
  assert.deepEqual(vals(rep), [[2, 'b'], [7, 'a']]);
  assert.deepEqual([...changed].sort(), ['1', '7']);
  assert.ok(rep.deleted.has('1'));
});

test('a row that leaves the filter leaves the replica; one that enters it comes in', () => {
  const { rep } = replica({ where: { val: 'x' } });
  rep.replaceAll([r(1, 'x', t(1)), r(2, 'y', t(1))]);
  rep.applyEvents([upd(r(1, 'y', t(2))), upd(r(2, 'x', t(2)))]);
  assert.deepEqual(vals(rep), [[2, 'x']]);
  assert.ok(rep.deleted.has('1'));
});

test('a row replica ignores other rows', () => {
  const { rep } = replica({ where: { id: 5 } });
  rep.replaceAll([r(5, 'a', t(1))]);
  rep.applyEvents([ins(r(6, 'b', t(2))), del(6)]);
  assert.deepEqual(vals(rep), [[5, 'a']]);
});

// ---- this tab's own writes ---------------------------------------------------------

test('upsertLocal takes the answered row, but not an older one nor one outside the filter', () => {
  const { rep, told } = replica({ where: { val: 'x' } });
  rep.replaceAll([r(1, 'x', t(5))]);
  told.length = 0;
  rep.upsertLocal(r(2, 'x', t(6)));
  rep.upsertLocal(r(1, 'x-old', t(4)));
  rep.upsertLocal(r(3, 'y', t(6)));
  rep.upsertLocal(null);
  assert.deepEqual(vals(rep), [[1, 'x'], [2, 'x']]);
  assert.deepEqual(told, [{ reset: false, keys: ['2'] }]);
});

test('an event older than the row this tab wrote does not undo the write', () => {
  const { rep } = replica();
  rep.replaceAll([r(1, 'a', t(1))]);
  rep.upsertLocal(r(1, 'mine', t(3)));
  rep.applyEvents([upd(r(1, 'theirs-before', t(2)))]);
  assert.equal(rep.get(1).val, 'mine');
});

test('a row this tab deleted is not brought back by an event from before its delete event', () => {
  const { rep, told } = replica();
  rep.replaceAll([r(1, 'a', t(1))]);
  told.length = 0;
  rep.removeLocal(1);
  assert.deepEqual(told, [{ reset: false, keys: ['1'] }]);
  assert.equal(rep.deleted.get('1').here, true);
  rep.applyEvents([upd(r(1, 'stale', t(2)))]);
  rep.upsertLocal(r(1, 'stale answer', t(2)));
  assert.equal(rep.get(1), undefined);
  // Its delete event arrives: the row stays deleted, by this tab; a later insert comes in.
  rep.applyEvents([del(1)]);
  assert.equal(rep.deleted.get('1').here, true);
  rep.applyEvents([ins(r(1, 'reborn', t(8)))]);
  assert.equal(rep.get(1).val, 'reborn');
});

test('a delete event that came before this tab\'s own answer still marks the delete as this tab\'s', () => {
  const { rep, told } = replica();
  rep.replaceAll([r(1, 'a', t(1))]);
  rep.applyEvents([del(1)]);
  assert.equal(rep.deleted.get('1').here, false);
  told.length = 0;
  rep.removeLocal(1);
  assert.equal(rep.deleted.get('1').here, true);
  assert.deepEqual(told, [{ reset: false, keys: ['1'] }]);
  // Not guarded: that delete's event is in already, later events are news.
  rep.applyEvents([ins(r(1, 'b', t(9)))]);
  assert.equal(rep.get(1).val, 'b');
});

test('removeLocal of a key never seen changes and tells nothing', () => {
  const { rep, told } = replica();
  rep.replaceAll([r(1, 'a', t(1))]);
  told.length = 0;
  rep.removeLocal(42);
  assert.deepEqual(told, []);
  assert.equal(rep.deleted.size, 0);
  rep.applyEvents([ins(r(42, 'n', t(2)))]);   // not guarded either
  assert.equal(rep.get(42).val, 'n');
});

test('the deletions remembered are bounded, the oldest forgotten first', () => {
  const { rep } = replica();
  rep.replaceAll(Array.from({ length: 205 }, (_, i) => r(i, 'v', t(1))));
  rep.applyEvents(Array.from({ length: 205 }, (_, i) => del(i)));
  assert.equal(rep.deleted.size, 200);
  assert.equal(rep.deleted.has('4'), false);
  assert.equal(rep.deleted.has('5'), true);
  assert.equal(rep.deleted.has('204'), true);
});

test('a listener that throws does not keep the others from hearing', () => {
  const { rep, told } = replica();
  rep.subscribe(() => { throw new Error('boom'); });
  const late = [];
  const unsubscribe = rep.subscribe(({ keys }) => late.push([...keys]));
  const logged = quietly('error', () => rep.replaceAll([r(1, 'a', t(1))]));
  assert.equal(logged.length, 1);
  assert.equal(told.length, 1);
  assert.deepEqual(late, [['1']]);
  unsubscribe();
  quietly('error', () => rep.applyEvents([upd(r(1, 'b', t(2)))]));
  assert.equal(late.length, 1);
});

// ---- helpers ------------------------------------------------------------------------

test('sortedRows orders numeric keys as numbers, then text keys', () => {
  const { rep } = replica();
  rep.replaceAll([r(10, 'a'), r('b', 'b'), r(9, 'c'), r('-2', 'd'), r('a', 'e')]);
  assert.deepEqual(rep.sortedRows().map((x) => x.id), ['-2', 9, 10, 'a', 'b']);
  assert.equal(compareKeys('b', 'a'), 1);
  assert.equal(keyOf(5), '5');
});

test('rowPasses compares as text and needs the column', () => {
  assert.equal(rowPasses({ id: 5 }, { id: '5' }), true);
  assert.equal(rowPasses({ id: '5' }, { id: 5 }), true);
  assert.equal(rowPasses({ id: 5, val: 'x' }, { id: 5, val: 'y' }), false);
  assert.equal(rowPasses({ id: 5 }, { val: 'null' }), false);
  assert.equal(rowPasses({ id: 5, val: null }, { val: null }), false);
  assert.equal(rowPasses({ id: 5 }, null), true);
  assert.equal(rowPasses(null, { id: 5 }), false);
});

test('mtimeMicros keeps PostgreSQL\'s microseconds and reads its zones', () => {
  const base = Date.UTC(2024, 4, 1, 12, 0, 0) * 1000;
  assert.equal(mtimeMicros('2024-05-01 12:00:00.123456+00'), base + 123456);
  assert.equal(mtimeMicros('2024-05-01T12:00:00.123456Z'), base + 123456);
  assert.equal(mtimeMicros('2024-05-01T12:00:00z'), base);
  assert.equal(mtimeMicros('2024-05-01 12:00:00'), base);                       // no zone: UTC
  assert.equal(mtimeMicros('2024-05-01 12:00:00.5'), base + 500000);
  assert.equal(mtimeMicros('2024-05-01 12:00:00.1234567'), base + 123456);      // past micros: cut
  assert.equal(mtimeMicros('2024-05-01 14:00:00.000001+02'), base + 1);
  assert.equal(mtimeMicros('2024-05-01 14:30:00+0230'), base);
  assert.equal(mtimeMicros('2024-05-01 09:30:00-02:30'), base);
  assert.equal(mtimeMicros(' 2024-05-01 12:00:00Z '), base);
  // One microsecond apart orders, which Date (millis) would not.
  assert.ok(mtimeMicros('2024-05-01 12:00:00.000002+00') > mtimeMicros('2024-05-01 12:00:00.000001+00'));
});

test('mtimeMicros is null for what it cannot read', () => {
  for (const s of [null, undefined, 12, '', 'yesterday', '2024-05-01', '2024-13-01 12:00:00Z', '2024-05-01 12:00:00 CET']) {
    assert.equal(mtimeMicros(s), null, String(s));
  }
});

// ---- stream order ---------------------------------------------------------------------

test('events apply in stream order: a later event wins even with an older mtime (the clock stepped back)', () => {
  const { rep } = replica();
  rep.replaceAll([]);
  rep.applyEvents([ins(r(1, 'written at 5', t(5)))]);
  const changed = rep.applyEvents([upd(r(1, 'written after, clock back at 3', t(3)))]);
  assert.deepEqual([...changed], ['1']);
  assert.equal(rep.get(1).val, 'written after, clock back at 3');
});

test('an event older than the snapshot\'s row is a replay of what it shows; once past it, stream order rules', () => {
  const { rep } = replica();
  rep.replaceAll([r(1, 'snapshot', t(5))]);
  rep.applyEvents([upd(r(1, 'before the snapshot', t(4)))]);
  assert.equal(rep.get(1).val, 'snapshot');
  rep.applyEvents([upd(r(1, 'after', t(6)))]);
  rep.applyEvents([upd(r(1, 'later still, clock back', t(2)))]);
  assert.equal(rep.get(1).val, 'later still, clock back');
});

test('a row deleted and inserted again by events is the new row, whatever its mtime', () => {
  const { rep } = replica();
  rep.replaceAll([r(1, 'snapshot', t(8))]);
  rep.applyEvents([del(1), ins(r(1, 'reborn, clock back', t(3)))]);
  assert.equal(rep.get(1).val, 'reborn, clock back');
});

test('a resolved truncated event brings the row as fetched; older events behind it are replays', () => {
  const { rep } = replica();
  rep.replaceAll([]);
  rep.applyEvents([
    { ...upd(r(1, 'fetched now', t(7))), resolved: true },
    upd(r(1, 'the event after it, already in the fetched row', t(6))),
  ]);
  assert.equal(rep.get(1).val, 'fetched now');
  rep.applyEvents([upd(r(1, 'news', t(8)))]);
  assert.equal(rep.get(1).val, 'news');
});
