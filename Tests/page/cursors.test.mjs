// static/cursors.js: ordering EPOCH:SEQ cursors, and naming subscriptions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareCursors, laterCursor, isAfter, subscriptionKey } from '../../static/cursors.js';

const E1 = '00000000000000a1';
const E2 = '00000000000000b2';
const c = (seq, epoch = E1) => `${epoch}:${seq}`;

test('cursors of one epoch are ordered by SEQ as a number, not as text', () => {
  assert.equal(compareCursors(c(9), c(10)), -1);
  assert.equal(compareCursors(c(10), c(9)), 1);
  assert.equal(compareCursors(c(0), c(0)), 0);
  // Beyond Number's exact range: SEQ is compared exactly.
  assert.equal(compareCursors(c('9007199254740993'), c('9007199254740992')), 1);
});

test('cursors of different epochs do not order', () => {
  assert.equal(compareCursors(c(1, E1), c(2, E2)), null);
  assert.equal(compareCursors(c(5, E2), c(5, E1)), null);
});

test('a missing or malformed cursor does not order', () => {
  assert.equal(compareCursors(null, c(1)), null);
  assert.equal(compareCursors(c(1), undefined), null);
  assert.equal(compareCursors('garbage', c(1)), null);
  assert.equal(compareCursors(c('01'), c(2)), null);           // leading zero: not the server's form
  assert.equal(compareCursors('00000000000000A1:1', c(2)), null); // upper-case epoch
  assert.equal(compareCursors('a1:1', c(2)), null);             // short epoch
});

test('laterCursor keeps the later one, and the newer message when they do not order', () => {
  assert.equal(laterCursor(c(7), c(3)), c(7));
  assert.equal(laterCursor(c(3), c(7)), c(7));
  assert.equal(laterCursor(c(3, E1), c(1, E2)), c(1, E2));
  assert.equal(laterCursor(null, c(4)), c(4));
});

test('isAfter: news only when strictly later, or when it cannot tell', () => {
  assert.equal(isAfter(c(5), c(4)), true);
  assert.equal(isAfter(c(4), c(4)), false);
  assert.equal(isAfter(c(3), c(4)), false);
  // Unordered: delivered (applying is idempotent) rather than skipped.
  assert.equal(isAfter(c(1, E2), c(4, E1)), true);
  assert.equal(isAfter(c(1), null), true);
});

test('subscriptionKey does not depend on key order, at any depth', () => {
  const a = { table: 'testtype', where: { id: 5, val: 'x' } };
  const b = { where: { val: 'x', id: 5 }, table: 'testtype' };
  assert.equal(subscriptionKey(a), subscriptionKey(b));
  assert.deepEqual(JSON.parse(subscriptionKey(b)), a);
});

test('subscriptionKey tells different subscriptions apart', () => {
  const key = (s) => subscriptionKey(s);
  assert.notEqual(key({ table: 'testtype' }), key({ table: 'testtype', where: { id: 5 } }));
  assert.notEqual(key({ table: 'testtype', where: { id: 5 } }), key({ table: 'testtype', where: { id: 6 } }));
  assert.notEqual(key({ table: 'a', where: { id: [1, 2] } }), key({ table: 'a', where: { id: [2, 1] } }));
});
