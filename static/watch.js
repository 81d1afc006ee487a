// watch.js: what one view watches (a whole table, or one row of it) as a
// TabSync member: its subscription, its replica, how to read its snapshot and
// how to apply events. The page and the convergence harness (Tests/chaos) both
// make their views here, so the algorithm exists once. No DOM.
//
// The key column comes from the server, never from a name assumed here: the
// page passes it from /api/_tables (`keyField`), else it is asked (PBP-Key). A
// row view must know it before its first snapshot, to subscribe to
// `{table, where: {<key>: value}}`.

import * as defaultApi from './api.js';
import { Replica } from './replica.js';

/**
 * The whole table. `onApply(events)` sees each batch before the replica
 * applies it (the page keeps the last ones for its tests).
 */
export async function watchTable(table, { api = defaultApi, signal, keyField: known = null, onApply = () => {} } = {}) {
  const keyField = known ?? await api.tableKey(table, { signal });
  const replica = new Replica(table, { keyField });
  const member = {
    subscriptions: [{ table }],
    keyField,
    load: async (loadSignal) => {
      const { rows, cursor } = await api.listRows(table, { signal: loadSignal });
      replica.replaceAll(rows);
      return { cursor };
    },
    apply: (events) => {
      onApply(events);
      replica.applyEvents(events);
    },
  };
  return { replica, member, subscription: member.subscriptions[0] };
}

/** One row, by the value of its key (it need not exist yet, or any more). */
export async function watchRow(table, key, { api = defaultApi, signal, keyField: known = null, onApply = () => {} } = {}) {
  const keyField = known ?? await api.tableKey(table, { signal });
  const where = { [keyField]: key };
  const replica = new Replica(table, { keyField, where });
  const member = {
    subscriptions: [{ table, where }],
    keyField,
    load: async (loadSignal) => {
      const { row, cursor } = await api.rowWithCursor(table, key, { signal: loadSignal });
      replica.replaceAll(row ? [row] : []);
      return { cursor };
    },
    apply: (events) => {
      onApply(events);
      replica.applyEvents(events);
    },
  };
  return { replica, member, subscription: member.subscriptions[0] };
}
