// static/writes.js: the page's own writes, and what each answer does to the
// replica before the change's event arrives. The API calls are given as
// functions answering as the server would (writesTo takes them as a
// parameter); the replica is the page's own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writesTo } from '../../static/writes.js';
import { Replica } from '../../static/replica.js';
import { ApiError } from '../../static/api.js';

const T = 'testtype';
const r = (id, val, s) => ({ id, val, mtime: `2024-05-01T00:00:0${s}Z` });
const notFound = () => new ApiError(404, 'not_found', 'no such row');
const down = () => new ApiError(503, 'unavailable', 'database down');

function loaded(rows) {
  const rep = new Replica(T, { keyField: 'id' });
  rep.replaceAll(rows);
  return rep;
}
/** Actions that answer `answer` (a value, or an error to throw) and record their calls. */
function answering(answer) {
  const calls = [];
  const act = (name) => async (...args) => {
    calls.push([name, ...args]);
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { calls, actions: { create: act('create'), update: act('update'), remove: act('remove') } };
}
const vals = (rep) => rep.sortedRows().map((x) => [x.id, x.val]);

test('create: the answered row is in the replica at once, and a stale event does not undo it', async () => {
  const rep = loaded([]);
  const { calls, actions } = answering(r(1, 'new', 3));
  assert.deepEqual(await writesTo(rep, actions).create('new'), r(1, 'new', 3));
  assert.deepEqual(calls, [['create', 'new']]);
  assert.deepEqual(vals(rep), [[1, 'new']]);
  rep.applyEvents([{ table: T, op: 'update', key: 1, new: r(1, 'older', 2) }]);
  assert.equal(rep.get(1).val, 'new');
});

test('update: the answered row replaces the one shown', async () => {
  const rep = loaded([r(1, 'a', 1)]);
  const { calls, actions } = answering(r(1, 'b', 2));
  await writesTo(rep, actions).update(1, 'b');
  assert.deepEqual(calls, [['update', 1, 'b']]);
  assert.equal(rep.get(1).val, 'b');
});

test('update whose row went away meanwhile (its delete event came first) changes nothing', async () => {
  const rep = loaded([r(1, 'a', 1)]);
  const { actions } = answering(r(1, 'b', 2));
  const write = writesTo(rep, actions).update(1, 'b');
  rep.applyEvents([{ table: T, op: 'delete', key: 1, mtime: '2024-05-01T00:00:05Z' }]);
  await write;
  assert.equal(rep.get(1), undefined);
});

test('update → 404: the row is removed as if deleted here, and the error still thrown', async () => {
  const rep = loaded([r(1, 'a', 1), r(2, 'b', 1)]);
  const { actions } = answering(notFound());
  await assert.rejects(writesTo(rep, actions).update(1, 'x'), (err) => err.status === 404);
  assert.deepEqual(vals(rep), [[2, 'b']]);
  assert.equal(rep.deleted.get('1').here, true);
});

test('delete: removed and marked deleted here, so an older event does not bring it back', async () => {
  const rep = loaded([r(1, 'a', 1)]);
  const { calls, actions } = answering(null);
  await writesTo(rep, actions).remove(1);
  assert.deepEqual(calls, [['remove', 1]]);
  assert.equal(rep.get(1), undefined);
  assert.equal(rep.deleted.get('1').here, true);
  rep.applyEvents([{ table: T, op: 'update', key: 1, new: r(1, 'stale', 2) }]);
  assert.equal(rep.get(1), undefined);
});

test('delete → 404 is what was wanted: removed, nothing thrown', async () => {
  const rep = loaded([r(1, 'a', 1)]);
  const { actions } = answering(notFound());
  await writesTo(rep, actions).remove(1);
  assert.equal(rep.get(1), undefined);
  assert.equal(rep.deleted.get('1').here, true);
});

test('any other failure is thrown, with the replica unchanged', async () => {
  for (const op of [(w) => w.create('x'), (w) => w.update(1, 'x'), (w) => w.remove(1)]) {
    const rep = loaded([r(1, 'a', 1)]);
    const { actions } = answering(down());
    await assert.rejects(op(writesTo(rep, actions)), (err) => err.status === 503);
    assert.deepEqual(vals(rep), [[1, 'a']]);
    assert.equal(rep.deleted.size, 0);
  }
});
