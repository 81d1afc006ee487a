// field-editors.js: the input for one column, of the kind its type calls for
// (columns.js): a checkbox for a boolean, a date input for a date, a number
// input for numbers, a JSON editor that says at once when its text is not
// JSON, a list of items for an array, a text input for the rest; and, for a
// nullable column, a NULL toggle (NULL is chosen, never guessed from an empty
// input). Both views' create and edit forms are made of these.
//
// An editor's reading (row-edits.js): {unset: true} while untouched (the
// default on create, the row's value on edit), else {ok, value} or
// {ok: false, error}.

import { h } from './dom.js';
import { editorText, listItems, parseInput } from './columns.js';

let editors = 0;

export class FieldEditor {
  /**
   * `column`: a column of a TableDescription (tables.js). `create`: on a create
   * form an untouched required column is still read (its input's value). `label`:
   * the accessible name of the inputs.
   */
  constructor(column, { create = false, label = column.name } = {}) {
    this.column = column;
    this.create = create;
    this.id = `field-${++editors}`;   // for a <label for>; column names may be anything
    this.dirty = false;
    this.onChange = () => {};
    this.el = h('span', { class: 'editor', 'data-kind': column.kind, 'data-col': column.name });
    this.errorEl = h('span', { class: 'editor-error', role: 'alert', hidden: true, id: `${this.id}-error` });
    this.input = this._build(label);
    this.el.append(this.input);
    if (column.nullable) {
      this.nullBox = h('input', { type: 'checkbox', class: 'null-check', 'aria-label': `${label} is NULL` });
      this.el.append(h('label', { class: 'null-toggle', title: 'SQL NULL: no value at all (not an empty text)' }, this.nullBox, ' NULL'));
      this.nullBox.addEventListener('change', () => this._showNull());
    }
    this.el.append(this.errorEl);
    this.el.addEventListener('input', () => this._changed());
    this.el.addEventListener('change', () => this._changed());
  }

  /** The element to focus first. */
  get focusTarget() { return this.el.querySelector('input:not(:disabled), textarea:not(:disabled)') ?? this.input; }

  get isNull() { return Boolean(this.nullBox?.checked); }

  _build(label) {
    const { kind } = this.column;
    const common = { id: this.id, 'aria-label': label, autocomplete: 'off', spellcheck: 'false', 'aria-describedby': `${this.id}-error` };
    switch (kind) {
      case 'boolean': return h('input', { ...common, type: 'checkbox', class: 'edit-check' });
      case 'integer': return h('input', { ...common, type: 'number', step: '1', inputmode: 'numeric', class: 'edit-input' });
      case 'decimal': return h('input', { ...common, type: 'number', step: 'any', inputmode: 'decimal', class: 'edit-input' });
      case 'date': return h('input', { ...common, type: 'date', class: 'edit-input' });
      case 'json': return h('textarea', { ...common, class: 'edit-input json-editor', rows: '3' });
      case 'array': return this._buildList(label);
      default: return h('input', { ...common, type: 'text', class: 'edit-input' });
    }
  }

  /** An array: one input per item, each removable, and a button to add one. */
  _buildList(label) {
    this.list = h('ol', { class: 'list-items', 'aria-label': `${label}: items` });
    const add = h('button', { type: 'button', class: 'btn small ghost', 'data-action': 'add-item', text: '+ item', 'aria-label': `Add an item to ${label}` });
    add.addEventListener('click', () => { this._addItem(this.column.element === 'boolean' ? false : '').focus(); this._changed(); });
    this.list.addEventListener('click', (e) => {
      const remove = e.target.closest('[data-action="remove-item"]');
      if (!remove) return;
      remove.closest('li').remove();
      this._changed();
      add.focus();
    });
    return h('span', { id: this.id, class: 'list-editor', role: 'group', 'aria-label': label }, this.list, add);
  }

  _addItem(text) {
    const element = this.column.element;
    const n = this.list.children.length + 1;
    const type = { boolean: 'checkbox', integer: 'number', decimal: 'number', date: 'date' }[element] ?? 'text';
    const input = h('input', { type, class: type === 'checkbox' ? 'edit-check' : 'edit-input item-input', 'aria-label': `${this.column.name} item ${n}`, autocomplete: 'off', spellcheck: 'false' });
    if (type === 'checkbox') input.checked = text === true;
    else input.value = text;
    if (element === 'decimal') input.step = 'any';
    this.list.append(h('li', {}, input, h('button', { type: 'button', class: 'btn small ghost', 'data-action': 'remove-item', 'aria-label': `Remove ${this.column.name} item ${n}`, text: '×' })));
    return input;
  }

  _raw() {
    const { kind } = this.column;
    if (kind === 'boolean') return this.input.checked;
    if (kind === 'array') return [...this.list.querySelectorAll('li > input')].map((i) => (i.type === 'checkbox' ? i.checked : i.value));
    return this.input.value;
  }

  _changed() {
    this.dirty = true;
    this._validate();
    this.onChange(this);
  }

  _showNull() {
    const isNull = this.isNull;
    this.el.classList.toggle('is-null', isNull);
    for (const el of this.input.querySelectorAll?.('input, button') ?? []) el.disabled = isNull;
    this.input.disabled = isNull;
    this._validate();
  }

  /** Say at once what is wrong with the text (the JSON editor's, mostly). */
  _validate() {
    const r = this.isNull || !this.dirty ? { ok: true } : parseInput(this._raw(), this.column);
    const error = r.ok || this.column.kind !== 'json' ? '' : r.error;
    this.errorEl.textContent = error;
    this.errorEl.hidden = !error;
    this.input.toggleAttribute('aria-invalid', Boolean(error));
    this.input.setCustomValidity?.(error);
    this.el.classList.toggle('invalid', Boolean(error));
  }

  /** What it holds, as row-edits.js reads it. */
  read() {
    if (!this.dirty && !(this.create && this.column.required)) return { unset: true };
    if (this.isNull) return { ok: true, value: null };
    return parseInput(this._raw(), this.column);
  }

  /** Show `value` (a row's; null for NULL, undefined for none) and forget any typing. */
  set(value) {
    const { kind } = this.column;
    if (this.nullBox) this.nullBox.checked = value === null;
    if (kind === 'boolean') this.input.checked = value === true;
    else if (kind === 'array') {
      this.list.replaceChildren();
      for (const item of listItems(value, this.column)) this._addItem(item);
    } else this.input.value = editorText(value, this.column);
    this.shown = value;   // the value it was last set to (a view compares the row's with it)
    this.dirty = false;
    this._showNull();
  }
}
