// view.js: the DOM. No network here: the views render a Replica and turn
// clicks and keys into calls of the `actions` they are given.
//
//   Indicators  the header: connection state and this tab's role
//   TableView   every row of a table, with keyed updates (one <tr> per row,
//               touched only when that row changes); add, edit, delete
//   DetailView  one row (`#/testtype/5`, `/?id=5`): its fields, edit, delete,
//               and what became of it (deleted, or not there at all)

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

/** Values longer than this are clamped in the table, which then says how long they are. */
const LONG_VALUE = 300;

export const h = (tag, attrs = {}, ...children) => {
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
export function formatMtime(s) {
  if (typeof s !== 'string') return '';
  // Date keeps milliseconds only; trim the microseconds PostgreSQL sends.
  const d = new Date(s.replace(/(\.\d{3})\d+/, '$1').replace(' ', 'T'));
  if (Number.isNaN(d.getTime())) return s;
  mtimeFormat ??= new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  return mtimeFormat.format(d);
}

let numberFormat;
export function lengthText(n) {
  numberFormat ??= new Intl.NumberFormat(undefined);
  return `${numberFormat.format(n)} ${n === 1 ? 'character' : 'characters'}`;
}

/** The address of one row's own view. */
export const rowHref = (table, key) => `#/${encodeURIComponent(table)}/${encodeURIComponent(key)}`;
export const tableHref = (table) => `#/${encodeURIComponent(table)}`;

const reducedMotion = () => globalThis.matchMedia?.('(prefers-reduced-motion: reduce)').matches;

function flash(el) { flashAll([el]); }

/**
 * Restarts the change highlight of every element with one forced layout for
 * the whole batch: a layout per row made a burst of changes to a long table
 * take seconds (quadratic in its rows).
 */
function flashAll(elements) {
  if (elements.length === 0 || reducedMotion()) return;
  for (const el of elements) el.classList.remove('flash');
  void elements[0].offsetWidth; // restart the animations
  for (const el of elements) {
    el.classList.add('flash');
    clearTimeout(el._flashTimer);
    const end = () => { clearTimeout(el._flashTimer); el.classList.remove('flash'); };
    el.addEventListener('animationend', end, { once: true });
    el._flashTimer = setTimeout(end, 1500); // in case no animationend comes (hidden tab)
  }
}

function setTime(time, mtime) {
  if (time.getAttribute('datetime') === (mtime ?? '')) return;
  time.setAttribute('datetime', mtime ?? '');
  time.title = mtime ?? '';
  time.textContent = formatMtime(mtime);
}

// ---- header ----------------------------------------------------------------------

export class Indicators {
  constructor(doc = document) {
    this.doc = doc;
    this.statusEl = doc.getElementById('status');
    this.roleEl = doc.getElementById('role');
  }

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
}

/** An alert box (role=alert) with a Dismiss button. */
class Alert {
  constructor(el) {
    this.el = el;
    el.addEventListener('click', (e) => {
      if (e.target.closest('[data-action="dismiss"]')) this.clear();
    });
  }

  show(message) {
    this.el.replaceChildren(
      h('p', { class: 'alert-text', text: message }),
      h('button', { type: 'button', class: 'btn ghost small', 'data-action': 'dismiss', text: 'Dismiss' }),
    );
    this.el.classList.add('shown');
  }

  clear() {
    this.el.replaceChildren();
    this.el.classList.remove('shown');
  }
}

// ---- the whole table -------------------------------------------------------------------

/** What both views share: a section shown while it follows a Replica. */
class ReplicaSection {
  /** Render `this.replica` on every change it reports, and show the section. */
  _follow(onChange) {
    this._unsubscribe = this.replica.subscribe(onChange);
    this.section.hidden = false;
    this.render();
  }

  detach() {
    this._unsubscribe?.();
    this._unsubscribe = null;
    this.replica = null;
    this.section.hidden = true;
  }
}

export class TableView extends ReplicaSection {
  constructor({ doc = document } = {}) {
    super();
    this.doc = doc;
    this.section = doc.getElementById('table-view');
    this.titleEl = doc.getElementById('table-title');
    this.table = doc.getElementById('rows');
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
   * Show `replica`, the rows of table `name`. actions: { create(val) → row,
   * update(key, val) → row, remove(key) }, async; they throw an Error whose
   * `message` is shown to the person.
   */
  attach({ replica, actions, name }) {
    this.detach();
    this.replica = replica;
    this.actions = actions;
    this.name = name;
    this.titleEl.textContent = name;
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
          this.notice(`Row ${key} was deleted elsewhere while you were editing it.`);
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
    const key = keyOf(row.id);
    const tr = h('tr', { 'data-id': key });
    tr.append(
      h('td', { class: 'id' }, h('a', {
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
      const row = await this.actions.update(key, input.value);
      if (this.replica !== replica) return;    // the page shows something else now
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
      if (this.replica !== replica) return;
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
    const { replica } = this;
    this.busy.add(key);
    tr?.setAttribute('aria-busy', 'true');
    tr?.querySelectorAll('button').forEach((b) => { b.disabled = true; });
    try {
      await this.actions.remove(key);
      if (this.replica !== replica) return;
      this.clearError();
    } catch (err) {
      if (this.replica !== replica) return;
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
    const { replica } = this;
    try {
      const row = await this.actions.create(this.input.value);
      if (this.replica !== replica) return;
      this.clearError();
      if (row) replica.upsertLocal(row);
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

// ---- one row ------------------------------------------------------------------------------

export class DetailView extends ReplicaSection {
  constructor({ doc = document } = {}) {
    super();
    this.doc = doc;
    const $ = (id) => doc.getElementById(id);
    this.section = $('detail-view');
    this.backEl = $('detail-back');
    this.crumbTableEl = $('detail-table');
    this.titleEl = $('detail-title');
    this.subEl = $('detail-sub');
    this.badgeEl = $('detail-badge');
    this.alert = new Alert($('detail-alert'));
    this.goneEl = $('detail-gone');
    this.fieldsEl = $('detail-fields');
    this.idEl = $('detail-id');
    this.valEl = $('detail-val');
    this.lenEl = $('detail-len');
    this.mtimeEl = $('detail-mtime');
    this.form = $('detail-form');
    this.input = $('detail-input');
    this.hintEl = $('detail-hint');
    this.saveBtn = this.form.querySelector('button[type="submit"]');
    this.deleteBtn = $('detail-delete');
    this.actionsEl = $('detail-actions');
    this.footnoteEl = $('detail-footnote');
    this.replica = null;
    this.form.addEventListener('submit', (e) => { e.preventDefault(); this.save(); });
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && !e.isComposing) { e.preventDefault(); this.revert(); }
    });
    this.input.addEventListener('input', () => {
      if (this.input.value === this.shownVal) this.typedFrom = null;
      else this.typedFrom ??= this.shownVal;
      this._updateHint();
    });
    this.deleteBtn.addEventListener('click', () => this.remove());
    this.hintEl.addEventListener('click', (e) => {
      if (e.target.closest('[data-action="take"]')) { this.revert(); this.input.focus(); }
    });
  }

  /**
   * Show row `key` of table `name` from `replica` (which holds that row or
   * nothing). actions: { update(key, val) → row, remove(key) }.
   */
  attach({ replica, actions, name, key, subscription }) {
    this.detach();
    this.replica = replica;
    this.actions = actions;
    this.name = name;
    this.key = keyOf(key);
    this.lastRow = null;         // the row as last shown (kept on screen, dimmed, once deleted)
    this.shownVal = null;        // the row's value as last shown
    this.typedFrom = null;       // the value the person started typing over (null: not editing)
    this.busy = false;
    this.alert.clear();
    this.input.value = '';
    this.backEl.href = tableHref(name);
    this.crumbTableEl.textContent = name;
    this.titleEl.textContent = `Row ${this.key}`;
    this.subEl.textContent = JSON.stringify(subscription);
    this.doc.title = `PBP · ${name} · row ${this.key}`;
    this._follow(() => this.render());
  }

  /** 'loading' | 'present' | 'deleted' (seen, then gone) | 'missing' (not there when loaded). */
  get state() {
    if (!this.replica?.loaded) return 'loading';
    if (this.replica.get(this.key)) return 'present';
    return this.lastRow || this.replica.deleted.has(this.key) ? 'deleted' : 'missing';
  }

  render() {
    if (!this.replica) return;
    const row = this.replica.get(this.key);
    const state = this.state;
    const changed = row && this.lastRow && row !== this.lastRow;
    if (row) this.lastRow = row;
    this.section.dataset.state = state;
    this.badgeEl.dataset.state = state;
    this.badgeEl.textContent = { loading: 'loading…', present: 'watching', deleted: 'deleted', missing: 'not found' }[state];

    // What became of the row.
    if (state === 'deleted') {
      const info = this.replica.deleted.get(this.key);
      const when = info?.mtime ? ` at ${formatMtime(info.mtime)}` : '';
      const who = info?.here ? ' from this tab' : '';
      const what = info?.truncate ? `The table was emptied (TRUNCATE)${when}.` : `This row was deleted${who}${when}.`;
      this.goneEl.replaceChildren(
        h('strong', { text: what }),
        ` Its last value is shown below. This tab keeps watching row ${this.key}: if it is created again, it appears here.`,
      );
    } else if (state === 'missing') {
      this.goneEl.replaceChildren(
        h('strong', { text: `There is no row ${this.key} in ${this.name}.` }),
        ' It may have been deleted before this page opened. This tab keeps watching: if the row is created, it appears here.',
      );
    }
    this.goneEl.hidden = state !== 'deleted' && state !== 'missing';
    this.goneEl.dataset.state = state;

    // The fields: the row, or the last one seen (dimmed) once it is deleted.
    const shown = row ?? this.lastRow;
    this.fieldsEl.hidden = !shown;
    if (shown) {
      this.idEl.textContent = keyOf(shown.id);
      const val = String(shown.val ?? '');
      if (this.valEl.textContent !== val) this.valEl.textContent = val;
      this.lenEl.textContent = lengthText(val.length);
      setTime(this.mtimeEl, shown.mtime);
      if (changed) flash(this.valEl);
    }

    // Editing: only a row that is there.
    const present = state === 'present';
    this.form.hidden = !present;
    this.actionsEl.hidden = !present;
    this.footnoteEl.hidden = !present;
    this.saveBtn.disabled = !present || this.busy;
    this.deleteBtn.disabled = !present || this.busy;
    this.input.readOnly = this.busy;
    if (present) {
      const val = String(row.val ?? '');
      // Follow changes made elsewhere, unless the person is typing.
      if (this.typedFrom === null) this.input.value = val;
      this.shownVal = val;
      this._updateHint();
    }
  }

  /** Says so when the row changed elsewhere while the person was typing over it. */
  _updateHint() {
    const stale = this.typedFrom !== null && this.shownVal !== null && this.typedFrom !== this.shownVal;
    this.hintEl.hidden = !stale;
    if (stale) {
      const v = this.shownVal;
      this.hintEl.replaceChildren(
        `Changed elsewhere to “${v.length > 80 ? `${v.slice(0, 80)}…` : v}” while you were typing. `,
        h('button', { type: 'button', class: 'btn small ghost', 'data-action': 'take', text: 'Use that value' }),
      );
    }
  }

  /** Escape: put the row's current value back in the input. */
  revert() {
    if (this.shownVal === null) return;
    this.input.value = this.shownVal;
    this.typedFrom = null;
    this._updateHint();
  }

  async save() {
    if (this.busy || this.state !== 'present') return;
    const { replica, key } = this;
    const value = this.input.value;
    this.busy = true;
    this.form.setAttribute('aria-busy', 'true');
    this.render();
    try {
      const row = await this.actions.update(key, value);
      if (this.replica !== replica) return;
      this.alert.clear();
      this.typedFrom = null;         // the input shows the row again
      if (row) replica.upsertLocal(row);
    } catch (err) {
      if (this.replica !== replica) return;
      this.alert.show(err.message);
      if (err.status === 404) replica.removeLocal(key);
    } finally {
      if (this.replica === replica) {
        this.busy = false;
        this.form.removeAttribute('aria-busy');
        this.render();
        if (this.state === 'present') this.input.focus();
        else this.backEl.focus();
      }
    }
  }

  async remove() {
    if (this.busy || this.state !== 'present') return;
    const { replica, key } = this;
    this.busy = true;
    this.render();
    try {
      await this.actions.remove(key);
      if (this.replica !== replica) return;
      this.alert.clear();
    } catch (err) {
      if (this.replica !== replica) return;
      if (err.status !== 404) {          // 404: already gone, which is what we wanted
        this.busy = false;
        this.render();
        this.alert.show(err.message);
        return;
      }
    }
    this.busy = false;
    replica.removeLocal(key);
    this.backEl.focus();
  }
}
