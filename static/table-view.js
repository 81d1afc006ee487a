// table-view.js: every row of any table, a column per column of its
// description (tables.js), with keyed updates (one <tr> per row, touched only
// when that row changes); add (a form of the writable columns), edit (the
// row's updatable cells become editors, field-editors.js; a PATCH of what
// changed), delete. No network: the clicks and keys become calls of the
// `actions` it is given (writes.js, which also brings the replica up to date
// with each answer).

import { compareKeys, keyOf } from './replica.js';
import { h, flashAll, Alert } from './dom.js';
import { lengthText } from './format.js';
import { rowHref } from './routes.js';
import { ReplicaSection } from './section.js';
import { FieldEditor } from './field-editors.js';
import { showValue } from './values.js';
import { createBody, patchBody, refusalText, sameValue } from './row-edits.js';
import { displayText, isTextual } from './columns.js';

/** Values longer than this are clamped in the table, which then says how long they are. */
const LONG_VALUE = 300;

export class TableView extends ReplicaSection {
  constructor({ doc = document } = {}) {
    super();
    this.doc = doc;
    this.section = doc.getElementById('table-view');
    this.titleEl = doc.getElementById('table-title');
    this.table = doc.getElementById('rows');
    this.headRow = this.table.tHead.rows[0];
    this.tbody = this.table.tBodies[0] ?? this.table.appendChild(h('tbody'));
    this.alert = new Alert(doc.getElementById('alert'));
    this.alertEl = this.alert.el;
    this.noticeEl = doc.getElementById('notice');
    this.countEl = doc.getElementById('count');
    this.emptyEl = doc.getElementById('empty');
    this.form = doc.getElementById('add-form');
    this.addFieldsEl = doc.getElementById('add-fields');
    this.replica = null;
    this.addEditors = [];
    this.form.addEventListener('submit', (e) => { e.preventDefault(); this._add(); });
    this.tbody.addEventListener('click', (e) => this._onClick(e));
    this.tbody.addEventListener('keydown', (e) => this._onKey(e));
    this._clear();
  }

  _clear() {
    this.trs = new Map();          // key → <tr>
    this.editing = null;           // { key, editors: Map column → FieldEditor, row } of the row being edited
    this.busy = new Set();         // keys with a request in flight
    this.rendered = false;
    this.loaded = false;           // a snapshot has been shown
    this.tbody.replaceChildren();
  }

  /**
   * Show `replica`, the rows of `table` (a TableDescription), keyed by
   * `replica.keyField`. actions: { create(fields) → row, update(key, fields)
   * → row, remove(key) }, async; they throw an Error whose `message` is shown
   * to the person.
   */
  attach({ replica, actions, table }) {
    this.detach();
    this.replica = replica;
    this.actions = actions;
    this.desc = table;
    this.name = table.name;
    this.columns = table.columns;
    this.titleEl.textContent = table.name;
    this._buildHead();
    this._buildAddForm();
    this._clear();
    this.alert.clear();
    this._follow((change) => this.render(change));
  }

  showError(message) { this.alert.show(message); }
  clearError() { this.alert.clear(); }

  /** A polite, passing notice (e.g. "row 5 was deleted elsewhere"). */
  notice(message) {
    if (!this.noticeEl) return;
    this.noticeEl.textContent = message;
    clearTimeout(this._noticeTimer);
    this._noticeTimer = setTimeout(() => { this.noticeEl.textContent = ''; }, 6000);
  }

  // ---- the table's own parts ------------------------------------------------------

  _buildHead() {
    this.headRow.replaceChildren(
      ...this.columns.map((c) => h('th', {
        scope: 'col', 'data-col': c.name, 'data-kind': c.kind, class: c.key ? 'col-key' : null, title: c.type, text: c.name,
      })),
      h('th', { scope: 'col', class: 'col-actions' }, h('span', { class: 'visually-hidden', text: 'Actions' })),
    );
  }

  /** A field per writable column; required ones say so, the type is told. */
  _buildAddForm() {
    this.addEditors = this.desc.writableColumns.map((c) => new FieldEditor(c, { create: true }));
    this.addFieldsEl.replaceChildren(...this.addEditors.map((ed) => {
      const c = ed.column;
      if (c.kind !== 'boolean' && c.kind !== 'array') ed.input.placeholder = c.required ? c.type : `${c.type} (optional)`;
      if (c.required) ed.input.setAttribute('aria-required', 'true');
      return h('div', { class: 'add-field', 'data-col': c.name, 'data-kind': c.kind },
        h('label', { for: ed.id, title: c.type },
          h('span', { class: 'field-name', text: c.name }),
          c.required ? h('span', { class: 'req', title: 'required', text: 'required' }) : null),
        ed.el);
    }));
  }

  /** Where the focus goes when nothing else wants it: the form's first field. */
  get firstField() { return this.addEditors[0]?.focusTarget ?? this.form.querySelector('button'); }

  // ---- rendering ---------------------------------------------------------------

  /** Update the rows whose keys changed (all of them on the first render). */
  render({ keys, reset = false } = { keys: new Set(this.replica.rows.keys()) }) {
    // The first snapshot is what the page opens with, not a change to point out.
    const flash = this.rendered && !(reset && !this.loaded);
    if (reset) this.loaded = true;
    const flashed = [];
    for (const key of keys) {
      const row = this.replica.get(key);
      const tr = this.trs.get(key);
      if (!row) {
        if (!tr) continue;
        if (this.editing?.key === key) {
          const hadFocus = tr.contains(this.doc.activeElement);
          this.editing = null;
          // Gone through this tab's own write (a 404 on save): no news to tell.
          if (!this.replica.deleted.get(key)?.here) this.notice(`Row ${key} was deleted elsewhere while you were editing it.`);
          if (hadFocus) this.firstField.focus();
        }
        tr.remove();
        this.trs.delete(key);
      } else if (!tr) {
        const fresh = this._buildRow(row);
        this._insertSorted(key, fresh);
        this.trs.set(key, fresh);
        if (flash) flashed.push(fresh);
      } else {
        this._updateRow(tr, row);
        if (flash) flashed.push(tr);
      }
    }
    flashAll(flashed);
    this.rendered = true;
    this._updateCount();
  }

  _updateCount() {
    const n = this.replica.size;
    this.countEl.textContent = `${n} ${n === 1 ? 'row' : 'rows'}`;
    this.emptyEl.hidden = n !== 0;
    this.table.classList.toggle('is-empty', n === 0);
  }

  _insertSorted(key, tr) {
    const rows = this.tbody.rows;
    const last = rows[rows.length - 1];
    if (!last || compareKeys(last.dataset.id, key) < 0) { this.tbody.append(tr); return; }
    for (const other of rows) {
      if (compareKeys(other.dataset.id, key) > 0) { this.tbody.insertBefore(tr, other); return; }
    }
    this.tbody.append(tr);
  }

  _buildRow(row) {
    const key = keyOf(row[this.replica.keyField]);
    const tr = h('tr', { 'data-id': key });   // data-id: the row's key, whatever its column
    for (const c of this.columns) {
      tr.append(c.key
        ? h('td', { class: 'key', 'data-col': c.name }, h('a', {
          href: rowHref(this.name, key), class: 'row-link', text: key,
          title: `Open row ${key} on its own (this tab then watches only that row)`,
        }))
        : h('td', { 'data-col': c.name, 'data-kind': c.kind, class: c.updatable ? 'editable' : null }));
    }
    tr.append(h('td', { class: 'actions' }));
    this._fillView(tr, row);
    return tr;
  }

  _cell(tr, column) { return tr.querySelector(`td[data-col="${CSS.escape(column.name)}"]`); }

  /** A row that changed: in edit mode keep the editors (and their focus) of what is being typed. */
  _updateRow(tr, row) {
    const key = tr.dataset.id;
    if (this.editing?.key === key) {
      const was = this.editing.row;
      this.editing.row = row;
      for (const c of this.columns) {
        if (c.key) continue;
        const ed = this.editing.editors.get(c.name);
        if (!ed) { this._fillCell(tr, c, row); continue; }
        if (sameValue(was?.[c.name] ?? null, row[c.name] ?? null)) continue;
        if (!ed.dirty) { ed.set(row[c.name] ?? null); continue; }
        // The person is typing over a value that changed: say so, keep what they typed.
        const shown = displayText(row[c.name], c) ?? 'NULL';
        tr.classList.add('changed-elsewhere');
        const hint = this._cell(tr, c).querySelector('.edit-hint');
        hint.textContent = `Changed elsewhere to “${shown.length > 80 ? `${shown.slice(0, 80)}…` : shown}”`;
        hint.hidden = false;
        ed.focusTarget.setAttribute('aria-description', `Changed elsewhere to: ${shown}`);
      }
      return;
    }
    for (const c of this.columns) if (!c.key) this._fillCell(tr, c, row);
  }

  /** One cell's value; a long text is clamped to a few lines, and the cell says how long it is. */
  _fillCell(tr, column, row) {
    const cell = this._cell(tr, column);
    const value = row[column.name];
    showValue(cell, value, column);
    const n = isTextual(column.kind) && typeof value === 'string' ? value.length : 0;
    if (n > LONG_VALUE) cell.dataset.len = lengthText(n);
    else delete cell.dataset.len;
  }

  /** The normal (not editing) contents of a row. */
  _fillView(tr, row) {
    const key = tr.dataset.id;
    const busy = this.busy.has(key);
    tr.classList.remove('editing', 'changed-elsewhere');
    for (const c of this.columns) {
      if (c.key) continue;
      const cell = this._cell(tr, c);
      delete cell.dataset.shown;     // it may hold an editor: rebuild
      cell.replaceChildren();
      this._fillCell(tr, c, row);
      if (c.updatable) cell.title = 'Click to edit';
    }
    tr.querySelector('.actions').replaceChildren(
      h('button', { type: 'button', class: 'btn small', 'data-action': 'edit', 'aria-label': `Edit row ${key}`, disabled: busy, text: 'Edit' }),
      h('button', { type: 'button', class: 'btn small danger', 'data-action': 'delete', 'aria-label': `Delete row ${key}`, disabled: busy, text: 'Delete' }),
    );
  }

  // ---- editing -------------------------------------------------------------------

  /** The row's updatable cells become editors; `column`: the one to focus (else the first). */
  startEdit(key, column = null) {
    if (this.editing?.key === key) { this.editing.editors.get(column)?.focusTarget.focus(); return; }
    if (this.editing) this.cancelEdit({ focus: false });
    const tr = this.trs.get(key);
    const row = this.replica.get(key);
    const updatable = this.desc.updatableColumns;
    if (!tr || !row || this.busy.has(key) || updatable.length === 0) return;
    const editors = new Map();
    for (const c of updatable) {
      const ed = new FieldEditor(c, { label: `${c.name} of row ${key}` });
      ed.set(row[c.name] ?? null);
      editors.set(c.name, ed);
      const cell = this._cell(tr, c);
      delete cell.dataset.len;
      delete cell.dataset.shown;
      cell.removeAttribute('title');
      cell.replaceChildren(ed.el, h('span', { class: 'edit-hint', hidden: true, role: 'note' }));
    }
    tr.classList.add('editing');
    tr.querySelector('.actions').replaceChildren(
      h('button', { type: 'button', class: 'btn small primary', 'data-action': 'save', 'aria-label': `Save row ${key}`, text: 'Save' }),
      h('button', { type: 'button', class: 'btn small ghost', 'data-action': 'cancel', 'aria-label': `Cancel editing row ${key}`, text: 'Cancel' }),
    );
    this.editing = { key, editors, row };
    const target = (editors.get(column) ?? editors.values().next().value).focusTarget;
    target.focus();
    target.select?.();
  }

  cancelEdit({ focus = true } = {}) {
    const ed = this.editing;
    if (!ed) return;
    this.editing = null;
    const tr = this.trs.get(ed.key);
    const row = this.replica.get(ed.key);
    if (tr && row) {
      this._fillView(tr, row);
      if (focus) tr.querySelector('[data-action="edit"]')?.focus();
    }
  }

  _setEditing(tr, ed, locked) {
    for (const el of tr?.querySelectorAll('input, textarea, button') ?? []) {
      if (el.closest('.actions')) el.disabled = locked;
      else el.readOnly = locked;
    }
  }

  /** PATCH what changed; a value that cannot be read is refused here, before anything is sent. */
  async saveEdit() {
    const ed = this.editing;
    if (!ed || this.busy.has(ed.key)) return;
    const { key } = ed;
    const { replica } = this;
    const row = replica.get(key);
    const readings = new Map([...ed.editors].map(([name, editor]) => [name, editor.read()]));
    const patch = patchBody(this.desc, row, readings);
    if (!patch.ok) {
      this.showError(`Not saved: ${refusalText(patch.errors)}`);
      ed.editors.get(patch.errors[0].column)?.focusTarget.focus();
      return;
    }
    const tr = this.trs.get(key);
    const done = () => {
      this.clearError();
      if (this.editing !== ed) return;
      this.editing = null;
      const cur = this.trs.get(key);
      const now = this.replica.get(key);
      if (cur && now) {
        this._fillView(cur, now);
        cur.querySelector('[data-action="edit"]')?.focus();
      }
    };
    if (Object.keys(patch.body).length === 0) { done(); return; }   // nothing changed: nothing to send
    this.busy.add(key);
    this._setEditing(tr, ed, true);
    tr?.setAttribute('aria-busy', 'true');
    try {
      await this.actions.update(key, patch.body);
      if (this.replica !== replica) return;    // the page shows something else now
      this.busy.delete(key);
      done();
    } catch (err) {
      if (this.replica !== replica) return;
      this.busy.delete(key);
      this.showError(err.message);
      if (err.status === 404) {           // gone: the replica dropped it
        this.editing = null;
        this.firstField.focus();
        return;
      }
      if (this.editing === ed) {
        this._setEditing(tr, ed, false);
        ed.editors.values().next().value?.focusTarget.focus();
      }
    } finally {
      tr?.removeAttribute('aria-busy');
    }
  }

  async deleteRow(key) {
    if (this.busy.has(key)) return;
    const tr = this.trs.get(key);
    // Where focus goes once the row is gone: the next row, else the previous, else the form.
    const next = tr?.nextElementSibling ?? tr?.previousElementSibling;
    const hadFocus = tr?.contains(this.doc.activeElement);
    const { replica } = this;
    this.busy.add(key);
    tr?.setAttribute('aria-busy', 'true');
    tr?.querySelectorAll('button').forEach((b) => { b.disabled = true; });
    try {
      await this.actions.remove(key);     // the replica has dropped the row
      if (this.replica !== replica) return;
      this.clearError();
    } catch (err) {
      if (this.replica !== replica) return;
      this.busy.delete(key);
      tr?.removeAttribute('aria-busy');
      tr?.querySelectorAll('button').forEach((b) => { b.disabled = false; });
      this.showError(err.message);
      return;
    }
    this.busy.delete(key);
    if (this.editing?.key === key) this.editing = null;
    if (hadFocus) {
      const target = next?.isConnected ? next.querySelector('[data-action="delete"]') : null;
      (target ?? this.firstField).focus();
    }
  }

  /** POST the fields that were set; a value that cannot be read is refused before sending. */
  async _add() {
    const button = this.form.querySelector('button[type="submit"]');
    if (button.disabled) return;
    const readings = new Map(this.addEditors.map((ed) => [ed.column.name, ed.read()]));
    const made = createBody(this.desc, readings);
    if (!made.ok) {
      this.showError(`Not added: ${refusalText(made.errors)}`);
      this.addEditors.find((ed) => ed.column.name === made.errors[0].column)?.focusTarget.focus();
      return;
    }
    button.disabled = true;
    this.form.setAttribute('aria-busy', 'true');
    const { replica } = this;
    try {
      await this.actions.create(made.body);
      if (this.replica !== replica) return;
      this.clearError();
      for (const ed of this.addEditors) ed.set(undefined);
    } catch (err) {
      this.showError(err.message);
    } finally {
      button.disabled = false;
      this.form.removeAttribute('aria-busy');
      this.firstField.focus();
    }
  }

  // ---- events ----------------------------------------------------------------------

  _onClick(e) {
    const tr = e.target.closest('tr[data-id]');
    if (!tr || e.target.closest('a')) return;
    const key = tr.dataset.id;
    const action = e.target.closest('[data-action]')?.dataset.action;
    if (action === 'edit') this.startEdit(key);
    else if (action === 'delete') this.deleteRow(key);
    else if (action === 'save') this.saveEdit();
    else if (action === 'cancel') this.cancelEdit();
    else if (!action && this.editing?.key !== key) {
      const cell = e.target.closest('td.editable');
      if (cell) this.startEdit(key, cell.dataset.col);
    }
  }

  /** Enter saves (but in a JSON editor, where it is a new line, and on buttons); Escape cancels. */
  _onKey(e) {
    const tr = e.target.closest?.('tr[data-id]');
    if (!this.editing || tr?.dataset.id !== this.editing.key || e.isComposing || e.target.closest('.actions')) return;
    if (e.key === 'Enter' && e.target.tagName === 'INPUT') { e.preventDefault(); this.saveEdit(); }
    else if (e.key === 'Enter' && e.target.tagName === 'TEXTAREA' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); this.saveEdit(); }
    else if (e.key === 'Escape') { e.preventDefault(); this.cancelEdit(); }
  }
}
