// view.js: the DOM. Renders a Replica with keyed updates (one <tr> per row,
// touched only when that row changes) and turns clicks and keys into calls of
// the `actions` it is given. No network here.

import { compareKeys, keyOf } from './replica.js';

const STATUS_TEXT = {
  connecting: 'Connecting to the server…',
  live: 'Live: changes appear as they happen',
  reconnecting: 'Connection lost: retrying',
  resyncing: 'Reloading the rows after a gap in the change stream',
};

const ROLE_TEXT = {
  leader: 'This tab holds the connection for all tabs of this browser',
  follower: 'Another tab holds the connection; this tab receives its changes',
};

const h = (tag, attrs = {}, ...children) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c != null) el.append(c);
  return el;
};

let mtimeFormat;
function formatMtime(s) {
  if (typeof s !== 'string') return '';
  // Date keeps milliseconds only; trim the microseconds PostgreSQL sends.
  const d = new Date(s.replace(/(\.\d{3})\d+/, '$1').replace(' ', 'T'));
  if (Number.isNaN(d.getTime())) return s;
  mtimeFormat ??= new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  return mtimeFormat.format(d);
}

const reducedMotion = () => globalThis.matchMedia?.('(prefers-reduced-motion: reduce)').matches;

export class View {
  /**
   * actions: { create(val) → row, update(key, val) → row, remove(key) } —
   * async; they throw an Error whose `message` is shown to the person.
   */
  constructor({ replica, actions, doc = document }) {
    this.replica = replica;
    this.actions = actions;
    this.doc = doc;
    this.table = doc.getElementById('rows');
    this.tbody = this.table.tBodies[0] ?? this.table.appendChild(h('tbody'));
    this.statusEl = doc.getElementById('status');
    this.roleEl = doc.getElementById('role');
    this.alertEl = doc.getElementById('alert');
    this.noticeEl = doc.getElementById('notice');
    this.countEl = doc.getElementById('count');
    this.emptyEl = doc.getElementById('empty');
    this.form = doc.getElementById('add-form');
    this.input = doc.getElementById('new-val');
    this.trs = new Map();          // key → <tr>
    this.editing = null;           // { key, input, original } of the row being edited
    this.busy = new Set();         // keys with a request in flight
    this.rendered = false;

    this.form.addEventListener('submit', (e) => { e.preventDefault(); this._add(); });
    this.tbody.addEventListener('click', (e) => this._onClick(e));
    this.tbody.addEventListener('keydown', (e) => this._onKey(e));
    this.alertEl.addEventListener('click', (e) => {
      if (e.target.closest('[data-action="dismiss"]')) this.clearError();
    });
    replica.subscribe((change) => this.render(change));
  }

  // ---- status, role, messages ------------------------------------------------

  setStatus(state) {
    this.statusEl.textContent = state;
    this.statusEl.dataset.state = state;
    this.statusEl.title = STATUS_TEXT[state] ?? state;
    this.doc.documentElement.dataset.state = state;
  }

  setRole(role) {
    this.roleEl.textContent = role;
    this.roleEl.dataset.role = role;
    this.roleEl.title = ROLE_TEXT[role] ?? role;
  }

  showError(message) {
    this.alertEl.replaceChildren(
      h('p', { class: 'alert-text', text: message }),
      h('button', { type: 'button', class: 'btn ghost small', 'data-action': 'dismiss', text: 'Dismiss' }),
    );
    this.alertEl.classList.add('shown');
  }

  clearError() {
    this.alertEl.replaceChildren();
    this.alertEl.classList.remove('shown');
  }

  /** A polite, passing notice (e.g. "row 5 was deleted elsewhere"). */
  notice(message) {
    if (!this.noticeEl) return;
    this.noticeEl.textContent = message;
    clearTimeout(this._noticeTimer);
    this._noticeTimer = setTimeout(() => { this.noticeEl.textContent = ''; }, 6000);
  }

  // ---- rendering ---------------------------------------------------------------

  /** Update the rows whose keys changed (all of them on the first render). */
  render({ keys } = { keys: new Set(this.replica.rows.keys()) }) {
    const flash = this.rendered && !reducedMotion();
    for (const key of keys) {
      const row = this.replica.get(key);
      const tr = this.trs.get(key);
      if (!row) {
        if (!tr) continue;
        if (this.editing?.key === key) {
          const hadFocus = tr.contains(this.doc.activeElement);
          this.editing = null;
          this.notice(`Row ${key} was deleted elsewhere while you were editing it.`);
          if (hadFocus) this.input.focus();
        }
        tr.remove();
        this.trs.delete(key);
      } else if (!tr) {
        const fresh = this._buildRow(row);
        this._insertSorted(key, fresh);
        this.trs.set(key, fresh);
        if (flash) this._flash(fresh);
      } else {
        this._updateRow(tr, row);
        if (flash) this._flash(tr);
      }
    }
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

  _flash(tr) {
    tr.classList.remove('flash');
    void tr.offsetWidth; // restart the animation
    tr.classList.add('flash');
    clearTimeout(tr._flashTimer);
    const end = () => { clearTimeout(tr._flashTimer); tr.classList.remove('flash'); };
    tr.addEventListener('animationend', end, { once: true });
    tr._flashTimer = setTimeout(end, 1500); // in case no animationend comes (hidden tab)
  }

  _buildRow(row) {
    const key = keyOf(row.id);
    const tr = h('tr', { 'data-id': key });
    tr.append(
      h('td', { class: 'id', text: key }),
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
  }

  _fillMtime(tr, row) {
    const cell = tr.querySelector('.mtime');
    const time = cell.firstElementChild ?? cell.appendChild(h('time'));
    if (time.getAttribute('datetime') !== row.mtime) {
      time.setAttribute('datetime', row.mtime ?? '');
      time.title = row.mtime ?? '';
      time.textContent = formatMtime(row.mtime);
    }
  }

  /** The normal (not editing) contents of a row. */
  _fillView(tr, row) {
    const key = tr.dataset.id;
    const busy = this.busy.has(key);
    tr.classList.remove('editing', 'changed-elsewhere');
    tr.querySelector('.val').replaceChildren(
      h('span', { class: 'val-text', title: 'Click to edit', text: String(row.val ?? '') }),
    );
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
    const tr = this.trs.get(key);
    this.busy.add(key);
    input.readOnly = true;
    tr?.setAttribute('aria-busy', 'true');
    tr?.querySelectorAll('button').forEach((b) => { b.disabled = true; });
    try {
      const row = await this.actions.update(key, input.value);
      this.clearError();
      this.busy.delete(key);
      if (this.editing === ed) {
        this.editing = null;
        if (row) this.replica.upsertLocal(row);
        const cur = this.trs.get(key);
        const now = this.replica.get(key);
        if (cur && now) {
          this._fillView(cur, now);
          cur.querySelector('[data-action="edit"]')?.focus();
        }
      }
    } catch (err) {
      this.busy.delete(key);
      this.showError(err.message);
      if (err.status === 404) {
        this.editing = null;
        this.replica.removeLocal(key);
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
    this.busy.add(key);
    tr?.setAttribute('aria-busy', 'true');
    tr?.querySelectorAll('button').forEach((b) => { b.disabled = true; });
    try {
      await this.actions.remove(key);
      this.clearError();
    } catch (err) {
      if (err.status !== 404) {           // 404: already gone, which is what we wanted
        this.busy.delete(key);
        tr?.removeAttribute('aria-busy');
        tr?.querySelectorAll('button').forEach((b) => { b.disabled = false; });
        this.showError(err.message);
        return;
      }
    }
    this.busy.delete(key);
    if (this.editing?.key === key) this.editing = null;
    this.replica.removeLocal(key);
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
    try {
      const row = await this.actions.create(this.input.value);
      this.clearError();
      if (row) this.replica.upsertLocal(row);
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
    if (!tr) return;
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
