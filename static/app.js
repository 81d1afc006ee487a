// app.js: wires the pieces together and picks the view from the address.
//
//   api.js      HTTP calls (CRUD, snapshots, long-poll)
//   replica.js  the local copy of the rows (snapshot + deltas)
//   poller.js   the leader's long-poll loop, with backoff
//   tabs.js     one long-poll per browser: leader election, every tab's
//               subscriptions in it, events handed to the tabs they match
//   watch.js    what a view watches (a table, or one row) as a TabSync member
//   view.js     the DOM: header, whole-table view, one-row view
//
// Addresses: `/` or `#/testtype` show the table; `#/testtype/5` or `/?id=5`
// (`/?table=testtype&id=5`) show row 5 alone, and this tab then subscribes to
// that row only: {"table": "testtype", "where": {"id": 5}} (the key column
// named by the server).

import * as api from './api.js';
import { retrying } from './poller.js';
import { TabSync } from './tabs.js';
import { watchTable, watchRow } from './watch.js';
import { Indicators, TableView, DetailView } from './view.js';

const DEFAULT_TABLE = 'testtype';

const decode = (s) => { try { return decodeURIComponent(s); } catch { return s; } };

/** {table, id} from the address; id is null for the whole table. */
export function parseRoute(loc = location) {
  let m = /^#\/([^/]+)\/(.+)$/.exec(loc.hash);
  if (m) return { table: decode(m[1]), id: decode(m[2]) };
  m = /^#\/([^/]*)\/?$/.exec(loc.hash);
  if (m) return { table: decode(m[1]) || DEFAULT_TABLE, id: null };
  const q = new URLSearchParams(loc.search);
  const id = q.get('id');
  return { table: q.get('table') || DEFAULT_TABLE, id: id === null || id === '' ? null : id };
}

/** A key as the subscription's filter value: a number when it is one. */
const keyValue = (id) => (/^-?\d+$/.test(id) && Number.isSafeInteger(Number(id)) ? Number(id) : id);

const indicators = new Indicators();
const tableView = new TableView();
const detailView = new DetailView();

const mode = new URLSearchParams(location.search).get('tabs') ?? 'auto';
const sync = new TabSync({
  mode,
  onStatus: (state) => indicators.setStatus(state),
  onRole: (role) => indicators.setRole(role),
});

const actionsFor = (table) => ({
  create: (val) => api.createRow(table, { val }),
  update: (key, val) => api.updateRow(table, key, { val }),
  remove: (key) => api.deleteRow(table, key),
});

const applied = [];   // the last events this tab applied (for the curious and the tests)
const onApply = (events) => {
  for (const ev of events) applied.push({ table: ev.table, op: ev.op, key: ev.key, cursor: ev.cursor });
  if (applied.length > 500) applied.splice(0, applied.length - 500);
};

let current = null;   // {route, replica, member}
let mounting = 0;     // the newest mount(): an older one still asking for its table's key gives way

/** Shows the route's view. Its key column is the server's, asked once per table. */
async function mount(route) {
  const { table, id } = route;
  const mine = ++mounting;
  const actions = actionsFor(table);
  const watched = await retrying(() => (id == null
    ? watchTable(table, { onApply })
    : watchRow(table, keyValue(id), { onApply })), { onFailure: () => indicators.setStatus('reconnecting') });
  if (mine !== mounting) return;
  const { replica, member, subscription } = watched;
  if (id == null) {
    detailView.detach();
    tableView.attach({ replica, actions, name: table });
    document.title = `PBP · ${table}`;
  } else {
    tableView.detach();
    detailView.attach({ replica, actions, name: table, key: id, subscription });
  }
  current = { route, replica, member };
  sync.setMember(member);
}

addEventListener('hashchange', () => {
  const route = parseRoute();
  if (current && route.table === current.route.table && route.id === current.route.id) return;
  mount(route);
  // Move the focus to the new view's heading, for keyboards and screen readers.
  const heading = document.querySelector(route.id == null ? '#table-title' : '#detail-title');
  heading?.setAttribute('tabindex', '-1');
  heading?.focus({ preventScroll: true });
});

indicators.setStatus('connecting');
mount(parseRoute());
sync.start();

// For debugging from the console (and for tests): pbp.replica.rows, pbp.sync.debugState() …
globalThis.pbp = {
  get replica() { return current?.replica; },
  get member() { return current?.member; },
  get route() { return current?.route; },
  applied,
  sync,
  api,
  views: { table: tableView, detail: detailView },
};
