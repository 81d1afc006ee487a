// static/session.js: a token given in the address is kept for the tab's
// session and removed from the address at once; signing out forgets it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSession } from '../../static/session.js';

function browser(href, stored = {}) {
  const url = new URL(href);
  const replaced = [];
  const storage = new Map(Object.entries(stored));
  return {
    replaced,
    storage,
    location: { get hash() { return url.hash; }, pathname: url.pathname, search: url.search },
    history: { state: null, replaceState: (state, title, address) => { replaced.push(address); url.hash = new URL(address, url).hash; } },
    sessionStorage: { getItem: (k) => storage.get(k) ?? null, setItem: (k, v) => storage.set(k, v), removeItem: (k) => storage.delete(k) },
  };
}

test('a token in the address is kept and the address shows the route alone', () => {
  const b = browser('http://pbp.test/#/notes&token=aaa.bbb.ccc');
  const session = openSession(b);
  assert.equal(session.token, 'aaa.bbb.ccc');
  assert.deepEqual(b.replaced, ['/#/notes']);
  assert.equal(b.location.hash, '#/notes');
  assert.equal(b.storage.get('pbp:token'), 'aaa.bbb.ccc');
});

test('a token alone in the address leaves the bare page address', () => {
  const b = browser('http://pbp.test/?tabs=storage#token=aaa.bbb.ccc');
  assert.equal(openSession(b).token, 'aaa.bbb.ccc');
  assert.deepEqual(b.replaced, ['/?tabs=storage']);
});

test('a reload finds the token of the session; the address is not touched', () => {
  const b = browser('http://pbp.test/#/notes', { 'pbp:token': 'aaa.bbb.ccc' });
  assert.equal(openSession(b).token, 'aaa.bbb.ccc');
  assert.deepEqual(b.replaced, []);
});

test('a new token in the address replaces the kept one', () => {
  const b = browser('http://pbp.test/#token=new.new.new', { 'pbp:token': 'old.old.old' });
  assert.equal(openSession(b).token, 'new.new.new');
  assert.equal(b.storage.get('pbp:token'), 'new.new.new');
});

test('no token anywhere: anonymous', () => {
  const b = browser('http://pbp.test/#/testtype');
  assert.equal(openSession(b).token, null);
  assert.deepEqual(b.replaced, []);
});

test('signing out forgets the token', () => {
  const b = browser('http://pbp.test/#token=aaa.bbb.ccc');
  const session = openSession(b);
  session.signOut();
  assert.equal(session.token, null);
  assert.equal(b.storage.has('pbp:token'), false);
  assert.equal(openSession(b).token, null);
});

test('without sessionStorage (blocked) the token still serves this page', () => {
  const b = browser('http://pbp.test/#token=aaa.bbb.ccc');
  b.sessionStorage = { getItem: () => { throw new Error('denied'); }, setItem: () => { throw new Error('denied'); }, removeItem: () => { throw new Error('denied'); } };
  const session = openSession(b);
  assert.equal(session.token, 'aaa.bbb.ccc');
  assert.deepEqual(b.replaced, ['/']);
});
