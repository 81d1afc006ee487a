// static/api.js: every call carries the page's token, and a token the server
// refuses stops the calls (no loop of refused requests) and is reported once.
import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import * as api from '../../static/api.js';

let seen;
function answering(status, body, headers = {}) {
  seen = [];
  globalThis.fetch = async (url, init) => {
    seen.push({ url, authorization: init.headers.Authorization ?? null });
    return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', 'PBP-Cursor': '1:1', 'PBP-Key': 'id', ...headers } });
  };
}

beforeEach(() => api.useToken(null));

test('without a token no Authorization header is sent', async () => {
  answering(200, { tables: [] });
  await api.listTables();
  assert.deepEqual(seen.map((s) => s.authorization), [null]);
});

test('CRUD, snapshots, polls and the table list all send the bearer token', async () => {
  api.useToken('aaa.bbb.ccc');
  answering(200, []);
  await api.listRows('notes');
  await api.getRow('notes', 1);
  await api.createRow('notes', { body: 'x' });
  await api.patchRow('notes', 1, { body: 'y' });
  await api.deleteRow('notes', 1);
  answering(200, { tables: [] });
  await api.listTables();
  answering(200, { cursor: '1:2', events: [] });
  await api.pollChanges('1:1', [{ table: 'notes' }]);
  assert.ok(seen.length > 0);
  for (const s of seen) assert.equal(s.authorization, 'Bearer aaa.bbb.ccc', s.url);
});

test('a 401 invalid_token is reported once, and later calls fail at once without a request', async () => {
  const refused = [];
  api.useToken('aaa.bbb.ccc', { onRefused: (err) => refused.push(err) });
  answering(401, { error: 'invalid_token', message: 'the token has expired' }, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
  await assert.rejects(api.listTables(), (err) => err.status === 401 && err.code === 'invalid_token');
  await assert.rejects(api.pollChanges('1:1', [{ table: 'notes' }]), (err) => err.status === 401 && err.code === 'invalid_token');
  await assert.rejects(api.listRows('notes'), (err) => err.status === 401 && err.transient === false);
  assert.equal(seen.length, 1, 'one request reached the server');
  assert.equal(refused.length, 1);
  assert.equal(refused[0].message, 'the token has expired');
});

test('a 401 without a token (no anonymous role) is reported but does not stop the calls', async () => {
  const refused = [];
  api.useToken(null, { onRefused: (err) => refused.push(err) });
  answering(401, { error: 'unauthorized', message: 'sign in' });
  await assert.rejects(api.listTables(), (err) => err.code === 'unauthorized');
  await assert.rejects(api.listTables(), (err) => err.code === 'unauthorized');
  assert.equal(seen.length, 2);
  assert.equal(refused.length, 2);
});
