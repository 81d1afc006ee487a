// app.js: wires the pieces together.
//
//   api.js      HTTP calls (CRUD, snapshot, long-poll)
//   replica.js  the local copy of the table (snapshot + deltas)
//   poller.js   snapshot + long-poll loop with backoff and resync
//   tabs.js     one poller per browser: leader election, sharing events
//   view.js     the DOM (keyed row updates, editing, status)

import * as api from './api.js';
import { Replica } from './replica.js';
import { TabSync } from './tabs.js';
import { View } from './view.js';

const TABLE = 'testtype';

const replica = new Replica(TABLE);

const view = new View({
  replica,
  actions: {
    create: (val) => api.createRow(TABLE, { val }),
    update: (key, val) => api.updateRow(TABLE, key, { val }),
    remove: (key) => api.deleteRow(TABLE, key),
  },
});

const mode = new URLSearchParams(location.search).get('tabs') ?? 'auto';

const sync = new TabSync({
  replica,
  subscriptions: [{ table: TABLE }],
  mode,
  onStatus: (state) => view.setStatus(state),
  onRole: (role) => view.setRole(role),
});

view.setStatus('connecting');
view.render();
sync.start();

// For debugging from the console (and for tests): window.pbp.replica.rows etc.
globalThis.pbp = { replica, sync, view, api };
