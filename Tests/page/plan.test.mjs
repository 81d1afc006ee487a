// static/plan.js: the leader's poll plan, when to re-send it, and who gets
// which event of its answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planPoll, needsReplan, routeBatch, advance } from '../../static/plan.js';
import { subscriptionKey } from '../../static/cursors.js';

const E1 = '00000000000000a1';
const E2 = '00000000000000b2';
const c = (seq, epoch = E1) => `${epoch}:${seq}`;
const TABLE = { table: 'testtype' };
const row = (id) => ({ table: 'testtype', where: { id } });
const entry = (member, subs, cursor, { keyField = 'id', at = 100 } = {}) => ({
  member, subs, keys: subs.map(subscriptionKey), keyField, cursor, at,
});
/** The index of `sub` in a plan's subscriptions (what the server's `matches` hold). */
const at = (plan, sub) => {
  const i = plan.keys.indexOf(subscriptionKey(sub));
  assert.notEqual(i, -1, `plan lacks ${subscriptionKey(sub)}`);
  return i;
};

// ---- planPoll -------------------------------------------------------------------

test('no member to poll for: no plan', () => {
  assert.equal(planPoll([]), null);
  assert.equal(planPoll([entry('a', [TABLE], null)]), null);                        // not loaded
  assert.equal(planPoll([entry('a', [TABLE], c(5), { at: 10 })], { resetAt: 20 }), null); // loaded before the reset
});

test('the plan polls from the oldest cursor for the union of the subscriptions', () => {
  const entries = [
    entry('a', [TABLE], c(30)),
    entry('b', [row(5)], c(12)),
    entry('c', [row(5), row(7)], c(20)),
  ];
  const plan = planPoll(entries);
  assert.equal(plan.cursor, c(12));
  assert.equal(plan.keys.length, 3);                       // row 5 once
  assert.deepEqual([...plan.keys].sort(), plan.keys);      // a stable order
  assert.deepEqual(plan.subscriptions, plan.keys.map((k) => JSON.parse(k)));
  assert.deepEqual(new Set(plan.keys), new Set([TABLE, row(5), row(7)].map(subscriptionKey)));
});

test('members loaded before the last reset are left out of the plan', () => {
  const plan = planPoll([entry('old', [row(1)], c(2), { at: 10 }), entry('new', [row(3)], c(9), { at: 50 })], { resetAt: 20 });
  assert.equal(plan.cursor, c(9));
  assert.deepEqual(plan.keys, [subscriptionKey(row(3))]);
});

test('a member of another epoch than the own one waits: not in the plan', () => {
  const own = entry('own', [row(1)], c(40, E2));
  const plan = planPoll([entry('stale', [row(2)], c(3, E1)), own], { own });
  assert.equal(plan.cursor, c(40, E2));
  assert.deepEqual(plan.keys, [subscriptionKey(row(1))]);
});

test('without an own member the last one known sets the epoch', () => {
  const plan = planPoll([entry('x', [row(2)], c(3, E1)), entry('y', [row(1)], c(40, E2))]);
  assert.equal(plan.cursor, c(40, E2));
  assert.deepEqual(plan.keys, [subscriptionKey(row(1))]);
});

// ---- needsReplan ------------------------------------------------------------------

test('replan when nothing is in flight and there is something to poll for', () => {
  assert.equal(needsReplan(null, planPoll([entry('a', [TABLE], c(1))])), true);
  assert.equal(needsReplan(null, null), false);
  assert.equal(needsReplan(planPoll([entry('a', [TABLE], c(1))]), null), false);
});

test('replan when the poll in flight lacks a subscription', () => {
  const current = planPoll([entry('a', [TABLE], c(10))]);
  const next = planPoll([entry('a', [TABLE], c(10)), entry('b', [row(5)], c(10))]);
  assert.equal(needsReplan(current, next), true);
});

test('a subscription no member needs any more does not replan', () => {
  const current = planPoll([entry('a', [TABLE], c(10)), entry('b', [row(5)], c(10))]);
  const next = planPoll([entry('a', [TABLE], c(10))]);
  assert.equal(needsReplan(current, next), false);
  assert.equal(needsReplan(current, current), false);
});

test('replan when the cursor is older, not when it is newer', () => {
  const current = planPoll([entry('a', [TABLE], c(10))]);
  assert.equal(needsReplan(current, planPoll([entry('a', [TABLE], c(9))])), true);
  assert.equal(needsReplan(current, planPoll([entry('a', [TABLE], c(11))])), false);
});

test('replan when the cursors do not order (a new epoch)', () => {
  const current = planPoll([entry('a', [TABLE], c(10, E1))]);
  assert.equal(needsReplan(current, planPoll([entry('a', [TABLE], c(10, E2))])), true);
});

// ---- routeBatch -------------------------------------------------------------------

test('a member whose cursor is before the plan\'s cursor is not covered', () => {
  const a = entry('a', [TABLE], c(10));
  const plan = planPoll([a]);
  const late = entry('late', [TABLE], c(5));              // joined after the poll was sent
  const ev = { table: 'testtype', op: 'insert', key: 1, cursor: c(11), matches: [at(plan, TABLE)] };
  const routed = routeBatch([a, late], plan, [ev]);
  assert.deepEqual(routed.covered.map((e) => e.member), ['a']);
  assert.deepEqual(routed.events.map((e) => e.to), [['a']]);
});

test('a member at or after the plan\'s cursor is covered', () => {
  const a = entry('a', [TABLE], c(10));
  const plan = planPoll([a]);
  const ahead = entry('ahead', [TABLE], c(12));
  assert.deepEqual(routeBatch([a, ahead], plan, []).covered.map((e) => e.member), ['a', 'ahead']);
});

test('a member with a subscription the poll lacked is not covered', () => {
  const a = entry('a', [TABLE], c(10));
  const plan = planPoll([a]);
  const b = entry('b', [TABLE, row(5)], c(10));
  const ev = { table: 'testtype', op: 'update', key: 5, cursor: c(11), matches: [at(plan, TABLE)] };
  const routed = routeBatch([a, b], plan, [ev]);
  assert.deepEqual(routed.covered.map((e) => e.member), ['a']);
  assert.deepEqual(routed.events[0].to, ['a']);
});

test('members of another epoch, or loaded before the reset, are not covered', () => {
  const a = entry('a', [TABLE], c(10), { at: 100 });
  const plan = planPoll([a]);
  const other = entry('other', [TABLE], c(10, E2), { at: 100 });
  const stale = entry('stale', [TABLE], c(10), { at: 10 });
  assert.deepEqual(routeBatch([a, other, stale], plan, [], { resetAt: 50 }).covered.map((e) => e.member), ['a']);
});

test('events go to the members whose subscriptions they matched, each after its cursor', () => {
  const all = entry('all', [TABLE], c(10));
  const five = entry('five', [row(5)], c(10));
  const seven = entry('seven', [row(7)], c(14));
  const entries = [all, five, seven];
  const plan = planPoll(entries);
  const events = [
    { table: 'testtype', op: 'update', key: 5, cursor: c(12), matches: [at(plan, TABLE), at(plan, row(5))] },
    { table: 'testtype', op: 'update', key: 7, cursor: c(13), matches: [at(plan, TABLE), at(plan, row(7))] }, // seven has it already
    { table: 'testtype', op: 'update', key: 7, cursor: c(15), matches: [at(plan, TABLE), at(plan, row(7))] },
  ];
  const routed = routeBatch(entries, plan, events);
  assert.deepEqual(routed.events.map((e) => [e.cursor, e.to]), [
    [c(12), ['all', 'five']],
    [c(13), ['all']],
    [c(15), ['all', 'seven']],
  ]);
  assert.equal(routed.events[0].op, 'update');   // the event itself travels on
  assert.equal(routed.events[0].key, 5);
});

test('an event that concerns no member is left out', () => {
  const a = entry('a', [row(5)], c(10));
  const plan = planPoll([a]);
  const events = [
    { table: 'testtype', op: 'update', key: 5, cursor: c(9), matches: [at(plan, row(5))] },   // before its cursor
    { table: 'testtype', op: 'update', key: 6, cursor: c(11), matches: [] },
    { table: 'testtype', op: 'update', key: 6, cursor: c(12) },                            // no matches at all
  ];
  assert.deepEqual(routeBatch([a], plan, events).events, []);
});

test('an event matching a member\'s second subscription reaches it', () => {
  const a = entry('a', [row(5), row(7)], c(10));
  const plan = planPoll([a]);
  const ev = { table: 'testtype', op: 'delete', key: 7, cursor: c(11), matches: [at(plan, row(7))] };
  assert.deepEqual(routeBatch([a], plan, [ev]).events[0].to, ['a']);
  // Resolved, it is checked against the subscription it matched, not the first one.
  const resolved = { ...ev, op: 'update', truncated: true, resolved: true, matches: [at(plan, row(7))] };
  assert.deepEqual(routeBatch([a], plan, [resolved]).events[0].to, ['a']);
});

test('a resolved truncated event for another row does not reach a row watcher', () => {
  // A truncated event carries the key only; resolved, it comes to every
  // subscription on its table, so the server's `matches` name row 5's too.
  const five = entry('five', [row(5)], c(10));
  const all = entry('all', [TABLE], c(10));
  const plan = planPoll([five, all]);
  const everyone = [at(plan, row(5)), at(plan, TABLE)];
  const ev = (key, cursor) => ({ table: 'testtype', op: 'update', key, cursor, truncated: true, resolved: true, new: { id: key }, matches: everyone });
  const routed = routeBatch([five, all], plan, [ev(6, c(11)), ev(5, c(12)), ev('5', c(13))]);
  assert.deepEqual(routed.events.map((e) => [e.cursor, e.to]), [
    [c(11), ['all']],
    [c(12), ['five', 'all']],
    [c(13), ['five', 'all']],   // keys compare as text, as the server does
  ]);
});

test('a resolved event is filtered by each member\'s own key column', () => {
  const byCode = entry('byCode', [{ table: 't', where: { code: 'x' } }], c(10), { keyField: 'code' });
  const byId = entry('byId', [{ table: 't', where: { id: 3 } }], c(10), { keyField: 'code' }); // id is not t's key
  const unknown = entry('unknown', [{ table: 't', where: { code: 'y' } }], c(10), { keyField: undefined });
  const entries = [byCode, byId, unknown];
  const plan = planPoll(entries);
  const ev = { table: 't', op: 'update', key: 'z', cursor: c(11), truncated: true, resolved: true, matches: [0, 1, 2] };
  // byCode's filter is on the key: 'z' is not 'x'. The others cannot tell from the key: delivered.
  assert.deepEqual(routeBatch(entries, plan, [ev]).events[0].to.sort(), ['byId', 'unknown']);
});

test('an event that was not resolved is routed by the server\'s matches alone', () => {
  const five = entry('five', [row(5)], c(10));
  const plan = planPoll([five]);
  const ev = { table: 'testtype', op: 'update', key: 6, cursor: c(11), matches: [at(plan, row(5))] };
  assert.deepEqual(routeBatch([five], plan, [ev]).events[0].to, ['five']);
});

// ---- advance ----------------------------------------------------------------------

test('advance moves the covered members to the poll\'s cursor, never back', () => {
  const a = entry('a', [TABLE], c(10));
  const b = entry('b', [TABLE], c(30));
  advance([a, b], c(20));
  assert.equal(a.cursor, c(20));
  assert.equal(b.cursor, c(30));
});
