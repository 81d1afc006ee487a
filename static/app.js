// app.js: wires the pieces together and picks the view from the address.
// Plain ES modules, no build step; one concept each:
//
//   api.js            HTTP calls (CRUD, snapshots, long-poll, a table's key column)
//   replica.js        the local copy of the rows (snapshot + deltas), keyed by
//                     the key column the server names
//   watch.js          what a view watches (a table, or one row) as a TabSync member
//   writes.js         the page's own writes, and what each answer does to the replica
//   tabs.js           TabSync: one long-poll per browser, shared by its tabs
//     member.js       a view as a member: snapshot, join, events once each
//     registry.js     every member of the browser, as this tab knows them
//     leader.js       the leader tab: polls for all, shares the answers
//     plan.js         the leader's decisions: what to poll for, who gets which event
//     poller.js       the leader's long-poll loop, with backoff
//     cursors.js      ordering cursors, naming subscriptions
//     election.js     which tab leads (Web Locks, or a lease in localStorage)
//     transports.js   messages between tabs (BroadcastChannel, or localStorage)
//     liveness.js     which tabs still live (their locks, or heartbeats)
//     ids.js          ids for tabs and members
//   routes.js         the addresses: which view, which row
//   indicators.js     the header: connection state, this tab's role
//   table-view.js     the whole-table view
//   detail-view.js    the one-row view
//   section.js        what both views share: a section following a replica
//   dom.js, format.js element building, the change highlight, alerts; text for people
//
// Addresses (routes.js): `/` or `#/testtype` show the table; `#/testtype/5` or
// `/?id=5` (`/?table=testtype&id=5`) show row 5 alone, and this tab then
// subscribes to that row only: {"table": "testtype", "where": {"id": 5}} (the
// key column named by the server).

import * as api from './api.js';
import { retrying } from './poller.js';
import { TabSync } from './tabs.js';
import { watchTable, watchRow } from './watch.js';
import { writesTo } from './writes.js';
import { parseRoute, keyValue } from './routes.js';
import { Indicators } from './indicators.js';
import { TableView } from './table-view.js';
import { DetailView } from './detail-view.js';

const indicators = new Indicators();
const tableView = new TableView();
const detailView = new DetailView();

const mode = new URLSearchParams(location.search).get('tabs') ?? 'auto';
const sync = new TabSync({
  mode,
  onStatus: (state) => indicators.setStatus(state),
  onRole: (role) => indicators.setRole(role),
});

/** The API calls a view's edits make (writes.js adds what they do to the replica). */
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
  const { table, key } = route;
  const mine = ++mounting;
  const watched = await retrying(() => (key == null
    ? watchTable(table, { onApply })
    : watchRow(table, keyValue(key), { onApply })), { onFailure: () => indicators.setStatus('reconnecting') });
  if (mine !== mounting) return;
  const { replica, member, subscription } = watched;
  const actions = writesTo(replica, actionsFor(table));
  if (key == null) {
    detailView.detach();
    tableView.attach({ replica, actions, name: table });
    document.title = `PBP · ${table}`;
  } else {
    tableView.detach();
    detailView.attach({ replica, actions, name: table, key, subscription });
  }
  current = { route, replica, member };
  sync.setMember(member);
}

addEventListener('hashchange', () => {
  const route = parseRoute();
  if (current && route.table === current.route.table && route.key === current.route.key) return;
  mount(route);
  // Move the focus to the new view's heading, for keyboards and screen readers.
  const heading = document.querySelector(route.key == null ? '#table-title' : '#detail-title');
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
