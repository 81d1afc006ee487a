// static/tabs.js and member.js: a follower tab whose copy is from an older
// epoch than the stream the leader polls must reload, not show "live" and
// receive nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TabSync } from '../../static/tabs.js';
import { enrol, isStranded } from '../../static/member.js';

const OLD = '00000000000000a1';
const NEW = '00000000000000b2';

function viewMember(cursors) {
  const loads = [];
  return {
    loads,
    subscriptions: [{ table: 'testtype' }],
    keyField: 'id',
    load: async () => { loads.push(Date.now()); return { cursor: cursors.shift() }; },
    apply: () => {},
  };
}

test('a ready member left out of a batch whose cursor it cannot be ordered against is stranded', () => {
  const m = enrol(viewMember([]));
  Object.assign(m, { ready: true, cursor: `${OLD}:5` });
  assert.equal(isStranded(m, { cursor: `${NEW}:9`, covered: [] }), true);
  assert.equal(isStranded(m, { cursor: `${OLD}:9`, covered: [] }), false, 'same epoch: it only needs to re-join');
  assert.equal(isStranded(m, { cursor: `${NEW}:9`, covered: [m.id] }), false, 'covered: the poll was for it');
  assert.equal(isStranded({ ...m, ready: false }, { cursor: `${NEW}:9`, covered: [] }), false, 'loading already');
});

test('a follower whose cursor is from an older epoch than the leader\'s batch reloads and joins again', async () => {
  const sync = new TabSync({ mode: 'single' });
  const posted = [];
  sync.transport = { post: (msg) => posted.push(msg) };   // a follower: it has a leader to hear from
  sync._electing = true;                                    // and it does not run for leader here
  const view = viewMember([`${OLD}:5`, `${NEW}:3`]);
  sync.started = true;
  sync.setMember(view);
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(sync.member.cursor, `${OLD}:5`);
  assert.equal(view.loads.length, 1);

  sync._onMessage({ type: 'batch', from: 'leader-tab', cursor: `${NEW}:9`, covered: ['someone-else'], events: [] });
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(view.loads.length, 2, 'the snapshot is read again');
  assert.equal(sync.member.cursor, `${NEW}:3`);
  assert.equal(sync.member.ready, true);
  const join = posted.filter((msg) => msg.type === 'join').at(-1);
  assert.equal(join.cursor, `${NEW}:3`, 'it joins the leader\'s epoch');
  sync.shutdown();
});

test('a view that watches nothing leaves the old member, joins nothing and says it is idle', async () => {
  const states = [];
  const sync = new TabSync({ mode: 'single', onStatus: (s) => states.push(s) });
  const posted = [];
  sync.transport = { post: (msg) => posted.push(msg) };
  sync._electing = true;
  sync.started = true;
  const view = viewMember([`${OLD}:5`]);
  sync.setMember(view);
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(sync.registry.size, 1);
  const id = sync.member.id;

  sync.setMember(null);
  assert.equal(sync.member, null);
  assert.equal(sync.registry.size, 0, 'the old member is forgotten');
  assert.deepEqual(posted.filter((m) => m.type === 'leave').map((m) => m.member), [id]);
  assert.equal(states.at(-1), 'idle', 'not "connecting" forever');
  sync._rejoin();
  assert.equal(posted.filter((m) => m.type === 'join').length, 1, 'nothing to join for');
  sync.shutdown();
});

test('tabs of different identities use different channels and locks; anonymous ones keep the old names', async () => {
  const { syncNames } = await import('../../static/tabs.js');
  assert.deepEqual(syncNames(''), { channel: 'pbp', lock: 'pbp-leader' });
  const alice = syncNames('0123456789abcdef');
  const bob = syncNames('fedcba9876543210');
  assert.notEqual(alice.channel, bob.channel);
  assert.notEqual(alice.lock, bob.lock);
  assert.notEqual(alice.channel, 'pbp');
  assert.notEqual(alice.lock, 'pbp-leader');
});

test('a tab whose identity has no key (no crypto.subtle) shares with no other tab', () => {
  const sync = new TabSync({ identity: null, mode: 'auto' });
  globalThis.BroadcastChannel ??= class { postMessage() {} };
  sync.start();
  try {
    assert.equal(sync.debugState().transport, 'none');
    assert.equal(sync.debugState().election, 'none');
  } finally {
    sync.shutdown();
  }
});
