// static/api.js: reading a whole table page after page. The server is
// played by a fetch that pages an in-memory table the way pbp-fcgi does: key
// order, `limit` rows at most, cut short at a byte budget, and a
// `Link: <…>; rel="next"` on every page that may continue.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listRows } from '../../static/api.js';

function serving(rows, { budgetBytes, links = true }) {
  const requests = [];
  globalThis.fetch = async (url) => {
    const query = new URL(url, 'http://pbp.test').searchParams;
    requests.push(Object.fromEntries(query));
    const limit = Number(query.get('limit'));
    const after = query.has('after') ? Number(query.get('after')) : -Infinity;
    const page = [];
    let bytes = 0;
    let cut = false;
    for (const row of rows.filter((r) => r.todo_id > after)) {
      if (page.length === limit) break;
      bytes += JSON.stringify(row).length;
      page.push(row);
      if (bytes >= budgetBytes) { cut = true; break; }
    }
    const headers = { 'Content-Type': 'application/json', 'PBP-Key': 'todo_id', 'PBP-Cursor': '7:1' };
    if (links && (cut || page.length === limit)) {
      headers.Link = `</api/todo?limit=${limit}&after=${page[page.length - 1].todo_id}>; rel="next"`;
    }
    return new Response(JSON.stringify(page), { status: 200, headers });
  };
  return requests;
}

const table = Array.from({ length: 25 }, (_, i) => ({ todo_id: i * 2 + 1, title: 'x'.repeat(i % 3 === 0 ? 400 : 10) }));

test('pages the server cut at its byte budget are followed to the end, every row once', async () => {
  const requests = serving(table, { budgetBytes: 1000 });
  const { rows, key } = await listRows('todo', { pageSize: 10 });
  assert.equal(key, 'todo_id');
  assert.deepEqual(rows.map((r) => r.todo_id), table.map((r) => r.todo_id));
  assert.ok(requests.length > 3, `the budget cut some pages short (${requests.length} requests)`);
  for (const [index, asked] of requests.slice(1).entries()) assert.ok(Number(asked.after) > 0, `page ${index + 2} continues after a key`);
});

test('a short page without a next link is the last one', async () => {
  const requests = serving(table.slice(0, 7), { budgetBytes: Infinity });
  const { rows } = await listRows('todo', { pageSize: 10 });
  assert.equal(rows.length, 7);
  assert.equal(requests.length, 1);
});

test('a full page is followed even without a link (an older server), until a short one', async () => {
  const requests = serving(table.slice(0, 20), { budgetBytes: Infinity, links: false });
  const { rows } = await listRows('todo', { pageSize: 10 });
  assert.equal(rows.length, 20);
  assert.equal(requests.length, 3);
});
