// table-view.js: every row of a table, with keyed updates (one <tr> per row,
// touched only when that row changes); add, edit, delete. No network: the
// clicks and keys become calls of the `actions` it is given (writes.js, which
// also brings the replica up to date with each answer).

import { compareKeys, keyOf } from './replica.js';
import { h, flashAll, setTime, Alert } from './dom.js';
import { lengthText } from './format.js';
import { rowHref } from './routes.js';
import { ReplicaSection } from './section.js';

/** Values longer than this are clamped in the table, which then says how long they are. */
const LONG_VALUE = 300;

export class TableView extends ReplicaSection {
  constructor({ doc = document } = {}) {
    super();
    this.doc = doc;
    this.section = doc.getElementById('table-view');
    this.titleEl = doc.getElementById('table-title');
    this.table = doc.getElementById('rows');
    this.keyHeadEl = this.table.querySelector('th.col-key');
    this.tbody = this.table.tBodies[0] ?? this.table.appendChild(h('tbody'));
    this.alert = new Alert(doc.getElementById('alert'));
    this.alertEl = this.alert.el;
    this.noticeEl = doc.getElementById('notice');
    this.countEl = doc.getElementById('count');
    this.emptyEl = doc.getElementById('empty');
    this.form = doc.getElementById('add-form');
    this.input = doc.getElementById('new-val');
    this.replica = null;
    this.form.addEventListener('submit', (e) => { e.preventDefault(); this._add(); });
    this.tbody.addEventListener('click', (e) => this._onClick(e));
    this.tbody.addEventListener('keydown', (e) => this._onKey(e));
    this._clear();
  }

  _clear() {
    this.trs = new Map();          // key → <tr>
    this.editing = null;           // { key, input, hint, original } of the row being edited
    this.busy = new Set();         // keys with a request in flight
    this.rendered = false;
    this.loaded = false;           // a snapshot has been shown
    this.tbody.replaceChildren();
  }

  /**
   * Show `replica`, the rows of table `name`, keyed by `replica.keyField`.
   * actions: { create(val) → row, update(key, val) → row, remove(key) },
   * async; they throw an Error whose `message` is shown to the person.
   */
  attach({ replica, actions, name }) {
    this.detach();
    this.replica = replica;
    this.actions = actions;
    this.name = name;
    this.titleEl.textContent = name;
    this.keyHeadEl.textContent = replica.keyField;
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
          if (hadFocus) this.input.focus();
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
    tr.append(
      h('td', { class: 'key' }, h('a', {
        href: rowHref(this.name, key), class: 'row-link', text: key,
        title: `Open row ${key} on its own (this tab then watches only that row)`,
      })),
      h('td', { class: 'val' }),
      h('td', { class: 'mtime' }),
      h('td', { class: 'actions' }),
    );
    this._fillView(tr, row);
    return tr;
  }

  /** A row that changed: in edit mode keep the input (and its focus). */
  _updateRow(tr, row) {
    const key = tr.dataset.id;
    this._fillMtime(tr, row);
    if (this.editing?.key === key) {
      if (row.val !== this.editing.original) {
        this.editing.original = row.val;
        tr.classList.add('changed-elsewhere');
        this.editing.input.setAttribute('aria-description', `Changed elsewhere to: ${row.val}`);
        this.editing.hint.textContent = `Changed elsewhere to “${row.val}”`;
        this.editing.hint.hidden = false;
      }
      return;
    }
    const text = tr.querySelector('.val .val-text');
    if (text && text.textContent !== String(row.val ?? '')) text.textContent = String(row.val ?? '');
    this._fillLength(tr, row);
  }

  /** A long value is clamped to a few lines; the cell says how long it is. */
  _fillLength(tr, row) {
    const cell = tr.querySelector('.val');
    const n = String(row.val ?? '').length;
    if (n > LONG_VALUE) cell.dataset.len = lengthText(n);
    else delete cell.dataset.len;
  }

  _fillMtime(tr, row) {
    const cell = tr.querySelector('.mtime');
    setTime(cell.firstElementChild ?? cell.appendChild(h('time')), row.mtime);
  }

  /** The normal (not editing) contents of a row. */
  _fillView(tr, row) {
    const key = tr.dataset.id;
    const busy = this.busy.has(key);
    tr.classList.remove('editing', 'changed-elsewhere');
    tr.querySelector('.val').replaceChildren(
      h('span', { class: 'val-text', title: 'Click to edit', text: String(row.val ?? '') }),
    );
    this._fillLength(tr, row);
    this._fillMtime(tr, row);
    tr.querySelector('.actions').replaceChildren(
      h('button', { type: 'button', class: 'btn small', 'data-action': 'edit', 'aria-label': `Edit row ${key}`, disabled: busy, text: 'Edit' }),
      h('button', { type: 'button', class: 'btn small danger', 'data-action': 'delete', 'aria-label': `Delete row ${key}`, disabled: busy, text: 'Delete' }),
    );
  }

  // ---- editing -------------------------------------------------------------------

  startEdit(key) {
    if (this.editing?.key === key) { this.editing.input.focus(); return; }
    if (this.editing) this.cancelEdit({ focus: false });
    const tr = this.trs.get(key);
    const row = this.replica.get(key);
    if (!tr || !row || this.busy.has(key)) return;
    const input = h('input', {
      type: 'text', class: 'edit-input', value: String(row.val ?? ''),
      'aria-label': `New value for row ${key}`, autocomplete: 'off', spellcheck: 'false',
    });
    input.value = String(row.val ?? '');
    const hint = h('span', { class: 'edit-hint', hidden: true, role: 'note' });
    tr.classList.add('editing');
    delete tr.querySelector('.val').dataset.len;
    tr.querySelector('.val').replaceChildren(input, hint);
    tr.querySelector('.actions').replaceChildren(
      h('button', { type: 'button', class: 'btn small primary', 'data-action': 'save', 'aria-label': `Save row ${key}`, text: 'Save' }),
      h('button', { type: 'button', class: 'btn small ghost', 'data-action': 'cancel', 'aria-label': `Cancel editing row ${key}`, text: 'Cancel' }),
    );
    this.editing = { key, input, hint, original: row.val };
    input.focus();
    input.select();
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

  async saveEdit() {
    const ed = this.editing;
    if (!ed || this.busy.has(ed.key)) return;
    const { key, input } = ed;
    const { replica } = this;
    const tr = this.trs.get(key);
    this.busy.add(key);
    input.readOnly = true;
    tr?.setAttribute('aria-busy', 'true');
    tr?.querySelectorAll('button').forEach((b) => { b.disabled = true; });
    try {
      await this.actions.update(key, input.value);
      if (this.replica !== replica) return;    // the page shows something else now
      this.clearError();
      this.busy.delete(key);
      if (this.editing === ed) {
        this.editing = null;
        const cur = this.trs.get(key);
        const now = this.replica.get(key);
        if (cur && now) {
          this._fillView(cur, now);
          cur.querySelector('[data-action="edit"]')?.focus();
        }
      }
    } catch (err) {
      if (this.replica !== replica) return;
      this.busy.delete(key);
      this.showError(err.message);
      if (err.status === 404) {           // gone: the replica dropped it
        this.editing = null;
        this.input.focus();
        return;
      }
      if (this.editing === ed) {
        input.readOnly = false;
        tr?.querySelectorAll('button').forEach((b) => { b.disabled = false; });
        input.focus();
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
      (target ?? this.input).focus();
    }
  }

  async _add() {
    const button = this.form.querySelector('button[type="submit"]');
    if (button.disabled) return;
    button.disabled = true;
    this.form.setAttribute('aria-busy', 'true');
    const { replica } = this;
    try {
      await this.actions.create(this.input.value);
      if (this.replica !== replica) return;
      this.clearError();
      this.input.value = '';
    } catch (err) {
      this.showError(err.message);
    } finally {
      button.disabled = false;
      this.form.removeAttribute('aria-busy');
      this.input.focus();
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
    else if (e.target.closest('td.val') && !e.target.closest('input')) this.startEdit(key);
  }

  _onKey(e) {
    if (!this.editing || e.target !== this.editing.input || e.isComposing) return;
    if (e.key === 'Enter') { e.preventDefault(); this.saveEdit(); }
    else if (e.key === 'Escape') { e.preventDefault(); this.cancelEdit(); }
  }
}
