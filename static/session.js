// session.js: the token this tab acts for, kept for the tab's session. A
// token given in the address (`#token=…`, token.js) is stored in
// sessionStorage (one tab's, gone when the tab closes) and removed from the
// address at once, so it is neither bookmarked, nor shared by copying the
// address, nor kept in the history. A reload finds it again there.

import { tokenFromHash } from './token.js';

const STORAGE_KEY = 'pbp:token';

/**
 * Reads the token from the address (then removes it there) or from the tab's
 * session: {token, signOut()}. `browser` gives location, history and
 * sessionStorage (the page's own by default).
 */
export function openSession({ location: loc = globalThis.location, history: hist = globalThis.history,
  sessionStorage: storage = globalThis.sessionStorage } = {}) {
  const store = {
    get: () => { try { return storage?.getItem(STORAGE_KEY) ?? null; } catch { return null; } },
    set: (t) => { try { storage?.setItem(STORAGE_KEY, t); } catch { /* blocked: this page still has it */ } },
    remove: () => { try { storage?.removeItem(STORAGE_KEY); } catch { /* blocked */ } },
  };
  const given = tokenFromHash(loc.hash);
  let token = store.get();
  if (given.hash !== loc.hash) {
    if (given.token) { token = given.token; store.set(token); }
    hist.replaceState(hist.state, '', `${loc.pathname}${loc.search}${given.hash}`);
  }
  return {
    get token() { return token; },
    signOut() { token = null; store.remove(); },
  };
}
