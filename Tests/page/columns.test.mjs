// static/columns.js: a column's type → its editor's kind, its text, and what
// a person typed → the JSON value sent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { typeKind, displayText, editorText, parseInput, listItems } from '../../static/columns.js';

test('each type PostgreSQL names gets the editor that fits it', () => {
  const kinds = {
    boolean: 'boolean', bigint: 'integer', integer: 'integer', smallint: 'integer',
    'numeric(10,2)': 'decimal', numeric: 'decimal', real: 'decimal', 'double precision': 'decimal',
    date: 'date', 'timestamp with time zone': 'timestamp', 'timestamp(3) without time zone': 'timestamp',
    'time without time zone': 'timestamp', json: 'json', jsonb: 'json',
    text: 'text', 'character varying(20)': 'text', uuid: 'text', 'USER-DEFINED': 'text',
  };
  for (const [type, kind] of Object.entries(kinds)) assert.equal(typeKind(type).kind, kind, type);
});

test('arrays get a list editor of their items\' kind; arrays of arrays are edited as JSON', () => {
  assert.deepEqual(typeKind('text[]'), { kind: 'array', element: 'text' });
  assert.deepEqual(typeKind('integer[]'), { kind: 'array', element: 'integer' });
  assert.deepEqual(typeKind('boolean[]'), { kind: 'array', element: 'boolean' });
  assert.deepEqual(typeKind('integer[][]'), { kind: 'json' });
});

test('NULL reads as null, apart from an empty string', () => {
  assert.equal(displayText(null, { kind: 'text' }), null);
  assert.equal(displayText(undefined, { kind: 'json' }), null);
  assert.equal(displayText('', { kind: 'text' }), '');
  assert.equal(displayText('NULL', { kind: 'text' }), 'NULL');
});

test('values read as text: JSON and arrays as JSON, the rest as sent', () => {
  assert.equal(displayText({ a: [1, 2] }, { kind: 'json' }), '{"a":[1,2]}');
  assert.equal(displayText(['a', 'b c'], { kind: 'array' }), '["a","b c"]');
  assert.equal(displayText(true, { kind: 'boolean' }), 'true');
  assert.equal(displayText(false, { kind: 'boolean' }), 'false');
  assert.equal(displayText(12.5, { kind: 'decimal' }), '12.5');
  assert.equal(displayText('2026-12-01', { kind: 'date' }), '2026-12-01');
  assert.equal(displayText('null', { kind: 'json' }), '"null"');   // a JSON string, not NULL
});

test('an editor starts from the value: JSON indented, dates as the date input takes them', () => {
  assert.equal(editorText({ a: 1 }, { kind: 'json' }), '{\n  "a": 1\n}');
  assert.equal(editorText('2026-12-01', { kind: 'date' }), '2026-12-01');
  assert.equal(editorText(7, { kind: 'integer' }), '7');
  assert.equal(editorText(null, { kind: 'text' }), '');
  assert.deepEqual(listItems(['a', 'b'], { element: 'text' }), ['a', 'b']);
  assert.deepEqual(listItems([1, 2], { element: 'integer' }), ['1', '2']);
  assert.deepEqual(listItems([true, false], { element: 'boolean' }), [true, false]);
  assert.deepEqual(listItems(null, { element: 'text' }), []);
});

const value = (raw, kind) => {
  const r = parseInput(raw, kind);
  assert.ok(r.ok, `${JSON.stringify(raw)} as ${kind.kind} refused: ${r.error}`);
  return r.value;
};
const refusal = (raw, kind) => {
  const r = parseInput(raw, kind);
  assert.equal(r.ok, false, `${JSON.stringify(raw)} as ${kind.kind} was taken: ${JSON.stringify(r.value)}`);
  assert.ok(r.error);
  return r.error;
};

test('text is sent as typed, an empty one too (it is not NULL)', () => {
  assert.equal(value('', { kind: 'text' }), '');
  assert.equal(value(' a b ', { kind: 'text' }), ' a b ');
  assert.equal(value('2026-13-45 12:00', { kind: 'timestamp' }), '2026-13-45 12:00');   // the server judges it
  refusal('', { kind: 'timestamp' });
});

test('numbers: whole numbers for integer columns, any finite number for decimals', () => {
  assert.equal(value('42', { kind: 'integer' }), 42);
  assert.equal(value(' -7 ', { kind: 'integer' }), -7);
  refusal('4.5', { kind: 'integer' });
  refusal('', { kind: 'integer' });
  refusal('x', { kind: 'integer' });
  refusal('9007199254740993', { kind: 'integer' });
  assert.equal(value('4.25', { kind: 'decimal' }), 4.25);
  assert.equal(value('1e3', { kind: 'decimal' }), 1000);
  refusal('', { kind: 'decimal' });
  refusal('NaN', { kind: 'decimal' });
  refusal('Infinity', { kind: 'decimal' });
});

test('booleans come from the checkbox; dates as YYYY-MM-DD', () => {
  assert.equal(value(true, { kind: 'boolean' }), true);
  assert.equal(value(false, { kind: 'boolean' }), false);
  refusal('true', { kind: 'boolean' });
  assert.equal(value('2026-12-01', { kind: 'date' }), '2026-12-01');
  refusal('2026-13-01', { kind: 'date' });
  refusal('1.12.2026', { kind: 'date' });
  refusal('', { kind: 'date' });
});

test('JSON is parsed before it is sent; invalid JSON is refused with where it fails', () => {
  assert.deepEqual(value('{"a": [1, {"b": null}]}', { kind: 'json' }), { a: [1, { b: null }] });
  assert.equal(value('"x"', { kind: 'json' }), 'x');
  assert.equal(value('3', { kind: 'json' }), 3);
  const why = refusal('{"a": 1,\n "b": }', { kind: 'json' });
  assert.match(why, /not valid JSON/);
  refusal('{a: 1}', { kind: 'json' });
  refusal("{'a': 1}", { kind: 'json' });
  refusal('', { kind: 'json' });
});

test('a list is parsed item by item; a bad item refuses the list and is named', () => {
  assert.deepEqual(value(['a', '', 'b c'], { kind: 'array', element: 'text' }), ['a', '', 'b c']);
  assert.deepEqual(value([], { kind: 'array', element: 'text' }), []);
  assert.deepEqual(value(['1', '2'], { kind: 'array', element: 'integer' }), [1, 2]);
  assert.deepEqual(value([true, false], { kind: 'array', element: 'boolean' }), [true, false]);
  assert.match(refusal(['1', 'x'], { kind: 'array', element: 'integer' }), /^item 2: /);
  refusal('a,b', { kind: 'array', element: 'text' });
});

test('a JSON refusal says what is wrong without quoting the whole text back', () => {
  const why = parseInput('{"prio": }', { kind: 'json' });
  assert.equal(why.ok, false);
  assert.match(why.error, /^not valid JSON/);
  assert.doesNotMatch(why.error, /prio/);
});
