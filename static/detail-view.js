// detail-view.js: one row of any table (`#/todo/5`): its fields, a column per
// column of the table's description (tables.js), an edit form of its
// updatable columns (a PATCH of what changed), delete, and what became of it
// (deleted, or not there at all). No network: the clicks and keys become calls
// of the `actions` it is given (writes.js, which also brings the replica up to
// date with each answer).

import { keyOf } from './replica.js';
import { h, flash, Alert } from './dom.js';
import { formatMtime, lengthText } from './format.js';
import { tableHref } from './routes.js';
import { ReplicaSection } from './section.js';
import { FieldEditor } from './field-editors.js';
import { showValue } from './values.js';
import { patchBody, refusalText, sameValue } from './row-edits.js';
import { isTextual } from './columns.js';

/** Kinds whose values may be long: shown across the whole width. */
const WIDE = new Set(['text', 'json', 'array']);

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
    this.form = $('detail-form');
    this.editFieldsEl = $('detail-edit-fields');
    this.hintEl = $('detail-hint');
    this.saveBtn = this.form.querySelector('button[type="submit"]');
    this.deleteBtn = $('detail-delete');
    this.actionsEl = $('detail-actions');
    this.footnoteEl = $('detail-footnote');
    this.replica = null;
    this.editors = new Map();
    this.form.addEventListener('submit', (e) => { e.preventDefault(); this.save(); });
    this.form.addEventListener('keydown', (e) => {
      if (e.isComposing) return;
      if (e.key === 'Escape') { e.preventDefault(); this.revert(); }
      // A JSON editor takes Enter as a new line; Ctrl+Enter saves from it too.
      else if (e.key === 'Enter' && e.target.tagName === 'TEXTAREA' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); this.save(); }
    });
    this.deleteBtn.addEventListener('click', () => this.remove());
    this.hintEl.addEventListener('click', (e) => {
      if (e.target.closest('[data-action="take"]')) { this.revert(); this.editors.values().next().value?.focusTarget.focus(); }
    });
  }

  /**
   * Show row `key` of `table` (a TableDescription) from `replica` (which holds
   * that row or nothing; its keyField names the key column). actions: {
   * update(key, fields) → row, remove(key) }.
   */
  attach({ replica, actions, table, key, subscription }) {
    this.detach();
    this.replica = replica;
    this.actions = actions;
    this.desc = table;
    this.name = table.name;
    this.key = keyOf(key);
    this.lastRow = null;         // the row as last shown (kept on screen, dimmed, once deleted)
    this.typedOver = null;       // the row as it was when the person started typing (null: not typing)
    this.busy = false;
    this.alert.clear();
    this.backEl.href = tableHref(table.name);
    this.crumbTableEl.textContent = table.name;
    this.titleEl.textContent = `Row ${this.key}`;
    this.subEl.textContent = JSON.stringify(subscription);
    this.doc.title = `PBP · ${table.name} · row ${this.key}`;
    this._buildFields();
    this._buildForm();
    this._follow(() => this.render());
  }

  _buildFields() {
    this.valueEls = new Map();
    this.fieldsEl.replaceChildren(...this.desc.columns.map((c) => {
      const dd = h('dd', { class: WIDE.has(c.kind) ? 'value value-box' : 'value', 'data-kind': c.kind, id: c.key ? 'detail-key' : null });
      this.valueEls.set(c.name, dd);
      return h('div', { class: WIDE.has(c.kind) ? 'field field-wide' : 'field', 'data-col': c.name },
        h('dt', { id: c.key ? 'detail-key-name' : null, title: c.type },
          c.name, ' ', h('span', { class: 'type', text: c.type }), ' ', h('span', { class: 'len' })),
        dd);
    }));
  }

  _buildForm() {
    this.editors = new Map();
    this.editFieldsEl.replaceChildren(...this.desc.updatableColumns.map((c) => {
      const ed = new FieldEditor(c);
      ed.onChange = () => this._typed();
      this.editors.set(c.name, ed);
      return h('div', { class: 'edit-field', 'data-col': c.name, 'data-kind': c.kind },
        h('label', { for: ed.id, title: c.type }, h('span', { class: 'field-name', text: c.name })),
        ed.el);
    }));
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
    const previous = this.lastRow;
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
        ` Its last values are shown below. This tab keeps watching row ${this.key}: if it is created again, it appears here.`,
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
      const changed = [];
      for (const c of this.desc.columns) {
        const el = this.valueEls.get(c.name);
        const value = shown[c.name];
        if (c.key) el.textContent = keyOf(value);
        else if (showValue(el, value, c) && previous && row && !sameValue(previous[c.name] ?? null, value ?? null)) changed.push(el);
        el.closest('.field').querySelector('.len').textContent = isTextual(c.kind) && typeof value === 'string' ? lengthText(value.length) : '';
      }
      for (const el of changed) flash(el);
    }

    // Editing: only a row that is there.
    const present = state === 'present';
    this.form.hidden = !present || this.editors.size === 0;
    this.actionsEl.hidden = !present;
    this.footnoteEl.hidden = !present;
    this.saveBtn.disabled = !present || this.busy;
    this.deleteBtn.disabled = !present || this.busy;
    for (const el of this.editFieldsEl.querySelectorAll('input, textarea')) el.readOnly = this.busy;
    if (present) {
      // Follow changes made elsewhere, but not over what the person is typing.
      for (const [name, ed] of this.editors) {
        const value = row[name] ?? null;
        if (!ed.dirty && (ed.shown === undefined || !sameValue(ed.shown, value))) ed.set(value);
      }
      this._updateHint();
    }
  }

  _typed() {
    this.typedOver ??= this.replica?.get(this.key) ?? null;
    this._updateHint();
  }

  /** The columns the person typed over that changed elsewhere since. */
  _stale() {
    const row = this.replica?.get(this.key);
    if (!this.typedOver || !row) return [];
    return [...this.editors].filter(([name, ed]) => ed.dirty && !sameValue(this.typedOver[name] ?? null, row[name] ?? null)).map(([name]) => name);
  }

  /** Says so when the row changed elsewhere while the person was typing over it. */
  _updateHint() {
    const stale = this._stale();
    this.hintEl.hidden = stale.length === 0;
    if (stale.length) {
      this.hintEl.replaceChildren(
        `${stale.join(', ')} changed elsewhere while you were typing. `,
        h('button', { type: 'button', class: 'btn small ghost', 'data-action': 'take', text: 'Use the new values' }),
      );
    }
  }

  /** Escape: put the row's current values back in the editors. */
  revert() {
    const row = this.replica?.get(this.key);
    if (!row) return;
    for (const [name, ed] of this.editors) ed.set(row[name] ?? null);
    this.typedOver = null;
    this._updateHint();
  }

  /** PATCH what changed; a value that cannot be read is refused here, before anything is sent. */
  async save() {
    if (this.busy || this.state !== 'present') return;
    const { replica, key } = this;
    const readings = new Map([...this.editors].map(([name, ed]) => [name, ed.read()]));
    const patch = patchBody(this.desc, replica.get(key), readings);
    if (!patch.ok) {
      this.alert.show(`Not saved: ${refusalText(patch.errors)}`);
      this.editors.get(patch.errors[0].column)?.focusTarget.focus();
      return;
    }
    if (Object.keys(patch.body).length === 0) { this.alert.clear(); this.revert(); return; }   // nothing changed
    this.busy = true;
    this.form.setAttribute('aria-busy', 'true');
    this.render();
    try {
      await this.actions.update(key, patch.body);
      if (this.replica !== replica) return;
      this.alert.clear();
      this.busy = false;
      this.revert();                 // the editors show the row again
    } catch (err) {
      if (this.replica !== replica) return;
      this.alert.show(err.message);
    } finally {
      if (this.replica === replica) {
        this.busy = false;
        this.form.removeAttribute('aria-busy');
        this.render();
        if (this.state !== 'present') this.backEl.focus();
      }
    }
  }

  async remove() {
    if (this.busy || this.state !== 'present') return;
    const { replica, key } = this;
    this.busy = true;
    this.render();
    try {
      await this.actions.remove(key);    // the replica has dropped the row
      if (this.replica !== replica) return;
      this.alert.clear();
    } catch (err) {
      if (this.replica !== replica) return;
      this.busy = false;
      this.render();
      this.alert.show(err.message);
      return;
    }
    this.busy = false;
    this.render();
    this.backEl.focus();
  }
}
