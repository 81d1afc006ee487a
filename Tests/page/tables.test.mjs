// static/tables.js: GET /api/_tables as the page's descriptions of its tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readTables } from '../../static/tables.js';

export const TABLES = {
  tables: [
    {
      name: 'todo', key: 'todo_id', columns: [
        { name: 'todo_id', type: 'bigint', nullable: false, default: 'identity', writable: false, required: false, key: true },
        { name: 'title', type: 'text', nullable: false, default: null, writable: true, required: true, key: false },
        { name: 'done', type: 'boolean', nullable: false, default: 'false', writable: true, required: false, key: false },
        { name: 'due', type: 'date', nullable: true, default: null, writable: true, required: false, key: false },
        { name: 'tags', type: 'text[]', nullable: true, default: null, writable: true, required: false, key: false },
        { name: 'meta', type: 'jsonb', nullable: true, default: null, writable: true, required: false, key: false },
        { name: 'mtime', type: 'timestamp with time zone', nullable: false, default: 'clock_timestamp()', writable: false, required: false, key: false },
      ],
    },
    {
      name: 'testtype', key: 'id', columns: [
        { name: 'id', type: 'bigint', nullable: false, default: "nextval('testtype_id_seq'::regclass)", writable: false, required: false, key: true },
        { name: 'val', type: 'text', nullable: false, default: null, writable: true, required: true, key: false },
        { name: 'mtime', type: 'timestamp with time zone', nullable: false, default: 'clock_timestamp()', writable: false, required: false, key: false },
      ],
    },
    {
      name: 'keyed', key: 'code', columns: [
        { name: 'code', type: 'text', nullable: false, default: null, writable: true, required: true, key: true },
        { name: 'val', type: 'text', nullable: false, default: null, writable: true, required: true, key: false },
      ],
    },
  ],
};

test('tables come sorted by name, each with its key column and columns in table order', () => {
  const tables = readTables(TABLES);
  assert.deepEqual([...tables.keys()], ['keyed', 'testtype', 'todo']);
  const todo = tables.get('todo');
  assert.equal(todo.key, 'todo_id');
  assert.equal(todo.keyColumn.name, 'todo_id');
  assert.equal(todo.keyColumn.kind, 'integer');
  assert.deepEqual(todo.columns.map((c) => c.name), ['todo_id', 'title', 'done', 'due', 'tags', 'meta', 'mtime']);
  assert.deepEqual(todo.columns.map((c) => c.kind), ['integer', 'text', 'boolean', 'date', 'array', 'json', 'timestamp']);
  assert.equal(todo.column('tags').element, 'text');
});

test('a create may give the writable columns; an edit the writable ones but the key', () => {
  const tables = readTables(TABLES);
  assert.deepEqual(tables.get('todo').writableColumns.map((c) => c.name), ['title', 'done', 'due', 'tags', 'meta']);
  assert.deepEqual(tables.get('todo').updatableColumns.map((c) => c.name), ['title', 'done', 'due', 'tags', 'meta']);
  assert.deepEqual(tables.get('keyed').writableColumns.map((c) => c.name), ['code', 'val']);
  assert.deepEqual(tables.get('keyed').updatableColumns.map((c) => c.name), ['val']);
  assert.equal(tables.get('keyed').keyColumn.kind, 'text');
});

test('an answer of another shape is refused, naming what is wrong', () => {
  assert.throws(() => readTables({}), /no "tables"/);
  assert.throws(() => readTables({ tables: [{ name: 't', columns: [] }] }), /without name, key or columns/);
  assert.throws(() => readTables({ tables: [{ name: 't', key: 'id', columns: [{ name: 'x' }] }] }), /column of t/);
  assert.throws(() => readTables({ tables: [{ name: 't', key: 'id', columns: [{ name: 'x', type: 'text' }] }] }), /key id is not among/);
});
