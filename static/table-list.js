// table-list.js: the tables the API serves (GET /api/_tables), as the page's
// home (each with its key and columns) and as the navigation in the header
// (the table shown marked as current). Whatever is watched shows up here after
// a reload: nothing names a table.

import { h } from './dom.js';
import { tableHref, HOME_HREF } from './routes.js';

export class TableList {
  constructor({ doc = document } = {}) {
    this.doc = doc;
    this.section = doc.getElementById('home-view');
    this.listEl = doc.getElementById('table-list');
    this.homeAlertEl = doc.getElementById('home-alert');
    this.navEl = doc.getElementById('table-nav');
    this.tables = new Map();
  }

  /** The tables (a Map name → TableDescription, tables.js) in the navigation and the home list. */
  setTables(tables) {
    this.tables = tables;
    this.navEl.replaceChildren(
      h('li', {}, h('a', { href: HOME_HREF, 'data-table': '', text: 'Tables' })),
      ...[...tables.keys()].map((name) => h('li', {}, h('a', { href: tableHref(name), 'data-table': name, text: name }))),
    );
    this.listEl.replaceChildren(...[...tables.values()].map((t) => h('li', { class: 'table-card', 'data-table': t.name },
      h('h3', {}, h('a', { href: tableHref(t.name), class: 'table-link', text: t.name })),
      h('p', { class: 'table-key' }, 'key ', h('code', { text: t.key })),
      h('ul', { class: 'table-columns', 'aria-label': `Columns of ${t.name}` }, ...t.columns.map((c) => h('li', { 'data-col': c.name },
        h('code', { class: 'col-name', text: c.name }), ' ',
        h('span', { class: 'col-type', text: c.type }),
        c.required ? h('span', { class: 'req', text: 'required' }) : null,
        c.nullable ? h('span', { class: 'tag', text: 'nullable' }) : null,
        c.writable ? null : h('span', { class: 'tag', text: 'read-only' })))),
    )));
    if (tables.size === 0) this.listEl.replaceChildren(h('li', { class: 'empty', text: 'The API serves no table yet: watch one with pbp_watch() in psql, then reload.' }));
  }

  /** Marks the table shown (null: the home) in the navigation. */
  setCurrent(table) {
    for (const a of this.navEl.querySelectorAll('a')) {
      if (a.dataset.table === (table ?? '')) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }

  /** The home: the list, and why a table asked for is not shown (`problem`), if any. */
  show(problem = null) {
    this.section.hidden = false;
    this.homeAlertEl.textContent = problem ?? '';
    this.homeAlertEl.classList.toggle('shown', Boolean(problem));
    this.doc.title = 'PBP · tables';
  }

  hide() { this.section.hidden = true; }
}
