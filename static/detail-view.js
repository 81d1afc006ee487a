// detail-view.js: one row (`#/testtype/5`, `/?id=5`): its fields, edit,
// delete, and what became of it (deleted, or not there at all). No network:
// the clicks and keys become calls of the `actions` it is given (writes.js,
// which also brings the replica up to date with each answer).

import { keyOf } from './replica.js';
import { h, flash, setTime, Alert } from './dom.js';
import { formatMtime, lengthText } from './format.js';
import { tableHref } from './routes.js';
import { ReplicaSection } from './section.js';

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
    this.keyNameEl = $('detail-key-name');
    this.keyEl = $('detail-key');
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
   * nothing; its keyField names the key column). actions: { update(key, val)
   * → row, remove(key) }.
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
    this.keyNameEl.textContent = replica.keyField;
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
      this.keyEl.textContent = keyOf(shown[this.replica.keyField]);
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
      await this.actions.update(key, value);
      if (this.replica !== replica) return;
      this.alert.clear();
      this.typedFrom = null;         // the input shows the row again
    } catch (err) {
      if (this.replica !== replica) return;
      this.alert.show(err.message);
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
