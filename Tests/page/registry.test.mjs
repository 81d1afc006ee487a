// static/registry.js: every member of the browser, as one tab knows them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemberRegistry } from '../../static/registry.js';
import { subscriptionKey } from '../../static/cursors.js';

const E = '00000000000000a1';
const c = (seq, epoch = E) => `${epoch}:${seq}`;
const table = { table: 'testtype' };
const row5 = { table: 'testtype', where: { id: 5 } };
const join = (over = {}) => ({
  type: 'join', member: 'm1', tab: 't1', subs: [table], keyField: 'id', cursor: c(10), at: 100, ...over,
});

test('a new member is registered, with its subscriptions keyed', () => {
  const r = new MemberRegistry();
  assert.equal(r.register(join(), 1000), true);
  const e = r.get('m1');
  assert.equal(r.size, 1);
  assert.deepEqual(e.keys, [subscriptionKey(table)]);
  assert.equal(e.cursor, c(10));
  assert.equal(e.keyField, 'id');
  assert.equal(e.at, 100);
  assert.equal(e.seen, 1000);
});

test('a malformed join is ignored', () => {
  const r = new MemberRegistry();
  assert.equal(r.register(join({ member: undefined })), false);
  assert.equal(r.register(join({ subs: 'testtype' })), false);
  assert.equal(r.size, 0);
});

test('a re-join with the same subscriptions keeps the cursor this tab has followed', () => {
  const r = new MemberRegistry();
  r.register(join(), 1000);
  r.advance(['m1'], c(20));
  // An old join message (cursor 10) arrives late, from another tab id.
  assert.equal(r.register(join({ cursor: c(10), tab: 't2' }), 2000), false);
  const e = r.get('m1');
  assert.equal(e.cursor, c(20));
  assert.equal(e.seen, 2000);
  assert.equal(e.tab, 't2');
});

test('a re-join with other subscriptions replaces the entry and may change the poll', () => {
  const r = new MemberRegistry();
  r.register(join());
  r.advance(['m1'], c(20));
  assert.equal(r.register(join({ subs: [row5], cursor: c(15) })), true);
  assert.deepEqual(r.get('m1').keys, [subscriptionKey(row5)]);
  assert.equal(r.get('m1').cursor, c(15));
});

test('a re-join whose cursor is of another epoch replaces the entry', () => {
  const r = new MemberRegistry();
  r.register(join());
  const other = c(3, '00000000000000b2');
  assert.equal(r.register(join({ cursor: other })), true);
  assert.equal(r.get('m1').cursor, other);
});

test('a join from before the last reset is refused; one after it is taken', () => {
  const r = new MemberRegistry();
  r.reset(500);
  assert.equal(r.register(join({ at: 499 })), false);
  assert.equal(r.size, 0);
  assert.equal(r.register(join({ at: 500 })), true);
});

test('reset drops the members loaded before it, and never moves back', () => {
  const r = new MemberRegistry();
  r.register(join({ member: 'old', at: 100 }));
  r.register(join({ member: 'same', at: 200 }));   // loaded as the reset came: as join() takes it
  r.register(join({ member: 'new', at: 300 }));
  r.reset(200);
  assert.deepEqual(r.list().map((e) => e.member), ['same', 'new']);
  r.reset(150);
  assert.equal(r.resetAt, 200);
  assert.equal(r.register(join({ member: 'late', at: 180 })), false);
});

test('advance moves only the named members, never backwards, and skips unknown ids', () => {
  const r = new MemberRegistry();
  r.register(join({ member: 'a', cursor: c(10) }));
  r.register(join({ member: 'b', cursor: c(10) }));
  r.advance(['a', 'nobody'], c(30));
  assert.equal(r.get('a').cursor, c(30));
  assert.equal(r.get('b').cursor, c(10));
  r.advance(['a'], c(25));
  assert.equal(r.get('a').cursor, c(30));
});

test('forget says whether the member was known', () => {
  const r = new MemberRegistry();
  r.register(join());
  assert.equal(r.forget('m1'), true);
  assert.equal(r.forget('m1'), false);
  assert.equal(r.size, 0);
});

test('prune drops exactly the entries of tabs that are gone', () => {
  const r = new MemberRegistry();
  r.register(join({ member: 'a', tab: 'alive' }));
  r.register(join({ member: 'b', tab: 'gone' }));
  r.register(join({ member: 'c', tab: 'gone' }));
  r.prune((e) => e.tab === 'gone');
  assert.deepEqual([...r.values()].map((e) => e.member), ['a']);
});
