// writes.js: the page's own writes, and what each answer does to the view's
// replica at once, before the change's event arrives (the event then changes
// nothing: applying is idempotent). Both views write through here, so this is
// written once:
//
//   create, update  the row the server answered is upserted (a replayed older
//                   event cannot undo it: the answer is a floor for its row
//                   until the stream reaches it, replica.js);
//                   an update whose row went away meanwhile (its delete event
//                   came first) changes nothing, as that delete came after it
//   update → 404    the row is gone: removed, as if deleted here
//   delete          removed and marked deleted here (no event from before the
//                   delete brings it back); a 404 is the same: already gone,
//                   which is what was wanted
//
// Any other failure is thrown, with the replica unchanged.

/**
 * `actions`: {create(fields) → row, update(key, fields) → row, remove(key)},
 * the API calls for one table (they throw an ApiError). Resolves as they do.
 */
export function writesTo(replica, actions) {
  return {
    async create(fields) {
      const row = await actions.create(fields);
      if (row) replica.upsertLocal(row);
      return row;
    },

    async update(key, fields) {
      let row;
      try {
        row = await actions.update(key, fields);
      } catch (err) {
        if (err.status === 404) replica.removeLocal(key);
        throw err;
      }
      if (row && replica.get(key)) replica.upsertLocal(row);
      return row;
    },

    async remove(key) {
      try {
        await actions.remove(key);
      } catch (err) {
        if (err.status !== 404) throw err;
      }
      replica.removeLocal(key);
    },
  };
}
