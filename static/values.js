// values.js: a column's value shown in an element, as its kind calls for
// (columns.js): NULL as a NULL mark (never as an empty text), a boolean as a
// tick or a cross with its word, an array as its items, JSON as code, a
// timestamp as a <time> in the browser's locale, the rest as text.

import { h, setTime } from './dom.js';
import { displayText } from './columns.js';

/**
 * Fills `el` with `value` of `column`, untouched when it shows that already
 * (`el.dataset.shown` keeps what it shows, so a live update of another column
 * does not rebuild this one).
 */
export function showValue(el, value, column) {
  const text = displayText(value, column);
  const shown = text === null ? '\u0000null' : text;
  if (el.dataset.shown === shown && el.firstChild) return false;
  el.dataset.shown = shown;
  el.classList.toggle('is-null', text === null);
  if (text === null) {
    el.replaceChildren(h('span', { class: 'null', title: 'SQL NULL: no value', text: 'NULL' }));
    return true;
  }
  switch (column.kind) {
    case 'boolean':
      el.replaceChildren(h('span', { class: 'bool', 'data-value': text, text }));
      break;
    case 'array':
      el.replaceChildren(h('span', { class: 'items' }, ...value.map((item) => (item === null
        ? h('span', { class: 'item null', text: 'NULL' })
        : h('span', { class: 'item', text: typeof item === 'object' ? JSON.stringify(item) : String(item) })))));
      if (value.length === 0) el.firstChild.append(h('span', { class: 'empty-list', text: 'empty list' }));
      break;
    case 'json':
      el.replaceChildren(h('code', { class: 'json', text }));
      break;
    case 'timestamp': {
      const time = h('time');
      setTime(time, text);
      el.replaceChildren(time);
      break;
    }
    default:
      el.replaceChildren(h('span', { class: 'val-text', text }));
  }
  return true;
}
