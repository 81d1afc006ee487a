// static/token.js: the token a page is given in its address, who it names,
// the identity key that partitions TabSync, and the header's text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tokenFromHash, tokenSubject, identityKey, signedInText } from '../../static/token.js';

const b64url = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
const jwt = (payload) => `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(payload)}.c2lnbmF0dXJl`;

test('a token alone in the hash is taken and leaves the home route', () => {
  const t = jwt({ sub: 'alice' });
  assert.deepEqual(tokenFromHash(`#token=${t}`), { token: t, hash: '' });
});

test('a token after a route leaves that route', () => {
  const t = jwt({ sub: 'alice' });
  assert.deepEqual(tokenFromHash(`#/notes&token=${t}`), { token: t, hash: '#/notes' });
  assert.deepEqual(tokenFromHash(`#/notes/5&token=${t}`), { token: t, hash: '#/notes/5' });
  assert.deepEqual(tokenFromHash(`#token=${t}&/notes`), { token: t, hash: '#/notes' });
});

test('a hash without a token is left alone', () => {
  assert.deepEqual(tokenFromHash('#/notes'), { token: null, hash: '#/notes' });
  assert.deepEqual(tokenFromHash(''), { token: null, hash: '' });
  assert.deepEqual(tokenFromHash('#/tokens'), { token: null, hash: '#/tokens' }, 'a table named like it is a route');
});

test('an empty token is no token, but is still removed from the address', () => {
  assert.deepEqual(tokenFromHash('#/notes&token='), { token: null, hash: '#/notes' });
});

test('a percent-encoded token is decoded', () => {
  const t = jwt({ sub: 'alice' });
  assert.equal(tokenFromHash(`#token=${encodeURIComponent(t).replace(/\./g, '%2E')}`).token, t);
});

test('the subject is read from the payload without verifying it', () => {
  assert.equal(tokenSubject(jwt({ sub: 'alice', role: 'pbp_user' })), 'alice');
  assert.equal(tokenSubject(jwt({ sub: 'zoë' })), 'zoë', 'UTF-8 in base64url');
  assert.equal(tokenSubject(jwt({ role: 'pbp_user' })), null, 'no sub');
  assert.equal(tokenSubject(jwt({ sub: 42 })), null, 'a sub that is not text');
  assert.equal(tokenSubject('not a token'), null);
  assert.equal(tokenSubject('a.%%%.c'), null);
  assert.equal(tokenSubject(null), null);
});

test('the identity key is a SHA-256 hex prefix of the token, empty for anonymous', async () => {
  const t = jwt({ sub: 'alice' });
  const key = await identityKey(t);
  assert.match(key, /^[0-9a-f]{16}$/);
  const { createHash } = await import('node:crypto');
  assert.equal(key, createHash('sha256').update(t).digest('hex').slice(0, 16));
  assert.notEqual(await identityKey(jwt({ sub: 'bob' })), key);
  assert.equal(await identityKey(null), '');
});

test('without crypto.subtle (a page not in a secure context) a token has no identity key', async () => {
  assert.equal(await identityKey(jwt({ sub: 'alice' }), { subtle: undefined }), null);
  assert.equal(await identityKey(null, { subtle: undefined }), '', 'anonymous tabs still share');
});

test('the header says who the page acts for', () => {
  assert.equal(signedInText(jwt({ sub: 'alice' })), 'signed in as alice');
  assert.equal(signedInText(jwt({ role: 'pbp_user' })), 'signed in (token without a subject)');
  assert.equal(signedInText(null), 'anonymous');
});
