// liveness.js: how the leader tells which tabs still live, since a tab that
// crashes sends no 'leave'. With Web Locks each tab holds a lock named after
// it for as long as it lives, and the browser frees it when the tab dies.
// Without them each tab's member re-joins every HEARTBEAT_MS, and a member
// not heard of for HEARTBEAT_LOST_MS is taken for gone.

const TAB_LOCK_PREFIX = 'pbp-tab:';
const HEARTBEAT_MS = 20000;
const HEARTBEAT_LOST_MS = 150000;

/**
 * Starts showing that tab `tabId` lives: `kind` is 'locks' or 'heartbeat'
 * (then `rejoin()` is called every beat). Returns a function that stops.
 */
export function showAlive(kind, tabId, rejoin) {
  if (kind === 'locks') {
    let stopped = false;
    let release = () => {};
    navigator.locks.request(TAB_LOCK_PREFIX + tabId, () => new Promise((resolve) => {
      release = resolve;
      if (stopped) resolve();
    })).catch((err) => console.error('pbp: tab lock failed', err));
    return () => { stopped = true; release(); };
  }
  const timer = setInterval(rejoin, HEARTBEAT_MS);
  return () => clearInterval(timer);
}

/**
 * Resolves to gone(entry): whether a registry entry's tab is gone. Null when
 * that cannot be told now (the locks could not be listed).
 */
export async function goneTabs(kind, now = Date.now()) {
  if (kind !== 'locks') return (e) => now - e.seen > HEARTBEAT_LOST_MS;
  try {
    const { held = [], pending = [] } = await navigator.locks.query();
    const alive = new Set([...held, ...pending].map((l) => l.name));
    return (e) => !alive.has(TAB_LOCK_PREFIX + e.tab);
  } catch {
    return null;
  }
}
