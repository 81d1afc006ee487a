// app.js: wires the pieces together and picks the view from the address.
// Plain ES modules, no build step; one concept each:
//
//   api.js            HTTP calls (the tables served, CRUD, snapshots, long-poll),
//                     each with the tab's token
//   session.js        the token this tab acts for: from the address, kept in sessionStorage
//   token.js          a token as text: in the address, its subject, its identity key
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
//   tables.js         the tables the API serves, from GET /api/_tables: key, columns
//   columns.js        a column's type → its editor's kind, its text, its parsed value
//   row-edits.js      the bodies of a create (POST) and an edit (PATCH of what changed)
//   routes.js         the addresses: the list of tables, a table, one row
//   indicators.js     the header: connection state, whom the page acts for, this tab's role
//   table-list.js     the list of tables: the home, and the navigation
//   table-view.js     the whole-table view, a column per column
//   detail-view.js    the one-row view
//   field-editors.js  the input for one column (checkbox, date, number, JSON, list, NULL)
//   values.js         a value shown as its kind calls for (NULL apart from '')
//   section.js        what both views share: a section following a replica
//   dom.js, format.js element building, the change highlight, alerts; text for people
//
// Addresses (routes.js): `/` or `#/` list the tables; `#/todo` shows a table;
// `#/todo/5` (`/?table=todo&id=5`) shows row 5 alone, and this tab then
// subscribes to that row only: {"table": "todo", "where": {"todo_id": 5}} (the
// key column named by /api/_tables). The tables are read when the page loads,
// and again when an address names a table the list lacks (watched since).
//
// Signing in: an address with `#token=<JWT>` (alone, or after a route:
// `#/notes&token=<JWT>`) gives this tab a token; session.js keeps it for the
// tab and removes it from the address. Every API call then sends it, and the
// tab shares its long-poll only with tabs of the same token (TabSync's
// identity). Without one the page acts anonymously.

import * as api from './api.js';
import { openSession } from './session.js';
import { identityKey, signedInText, tokenFromHash } from './token.js';
import { retrying } from './poller.js';
import { TabSync } from './tabs.js';
import { watchTable, watchRow } from './watch.js';
import { writesTo } from './writes.js';
import { parseRoute, keyValue } from './routes.js';
import { readTables } from './tables.js';
import { Indicators } from './indicators.js';
import { TableList } from './table-list.js';
import { TableView } from './table-view.js';
import { DetailView } from './detail-view.js';

const indicators = new Indicators();
const session = openSession();
const signOut = () => { session.signOut(); location.reload(); };
indicators.setIdentity(signedInText(session.token), { signedIn: session.token != null, onSignOut: signOut });
const tableList = new TableList();
const tableView = new TableView();
const detailView = new DetailView();

const mode = new URLSearchParams(location.search).get('tabs') ?? 'auto';
api.useToken(session.token, {
  onRefused: (err) => {
    if (err.code !== 'invalid_token') { indicators.setSignInNeeded(err.message); return; }
    // Every later call fails at once (api.js): stop polling, say so, offer signing out.
    indicators.setRefused(err.message);
    sync.shutdown();
  },
});
const sync = new TabSync({
  mode,
  identity: await identityKey(session.token),
  onStatus: (state) => indicators.setStatus(state),
  onRole: (role) => indicators.setRole(role),
});

/** The API calls a view's edits make (writes.js adds what they do to the replica). */
const actionsFor = (table) => ({
  create: (fields) => api.createRow(table, fields),
  update: (key, fields) => api.patchRow(table, key, fields),
  remove: (key) => api.deleteRow(table, key),
});

const applied = [];   // the last events this tab applied (for the curious and the tests)
const onApply = (events) => {
  for (const ev of events) applied.push({ table: ev.table, op: ev.op, key: ev.key, cursor: ev.cursor });
  if (applied.length > 500) applied.splice(0, applied.length - 500);
};

const onFailure = () => indicators.setStatus('reconnecting');
let tables = null;    // Promise of the Map name → TableDescription, read once
const described = () => (tables ??= retrying(async () => readTables(await api.listTables()), { onFailure })
  .then((t) => { tableList.setTables(t); return t; }));

let current = null;   // {route, replica, member}
let mounting = 0;     // the newest mount(): an older one still loading gives way

/** Shows the route's view, built from its table's description. */
async function mount(route) {
  const mine = ++mounting;
  let all = await described();
  if (route.table != null && !all.has(route.table)) {
    // Watched since the list was read, maybe: read it again before saying there is no such table.
    tables = null;
    all = await described();
  }
  if (mine !== mounting) return;
  const { key } = route;
  const table = route.table == null ? null : all.get(route.table);
  tableList.setCurrent(table?.name ?? null);
  if (!table) {
    tableView.detach();
    detailView.detach();
    tableList.show(route.table == null ? null : `The API serves no table named “${route.table}”. These are the tables it serves:`);
    current = { route, replica: null, member: null };
    sync.setMember(null);
    return;
  }
  const watched = await retrying(() => (key == null
    ? watchTable(table.name, { keyField: table.key, onApply })
    : watchRow(table.name, keyValue(key, table.keyColumn), { keyField: table.key, onApply })), { onFailure });
  if (mine !== mounting) return;
  const { replica, member, subscription } = watched;
  const actions = writesTo(replica, actionsFor(table.name));
  tableList.hide();
  if (key == null) {
    detailView.detach();
    tableView.attach({ replica, actions, table });
    document.title = `PBP · ${table.name}`;
  } else {
    tableView.detach();
    detailView.attach({ replica, actions, table, key, subscription });
  }
  current = { route, replica, member };
  sync.setMember(member);
}

addEventListener('hashchange', () => {
  // A sign-in link opened in this tab: start afresh as that token (session.js takes it).
  if (tokenFromHash(location.hash).token !== null) { location.reload(); return; }
  const route = parseRoute();
  if (current && route.table === current.route.table && route.key === current.route.key) return;
  mount(route);
  // Move the focus to the new view's heading, for keyboards and screen readers.
  const heading = document.querySelector(route.table == null ? '#home-title' : route.key == null ? '#table-title' : '#detail-title');
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
  get tables() { return tables; },
  applied,
  sync,
  api,
  session,
  views: { list: tableList, table: tableView, detail: detailView },
};
