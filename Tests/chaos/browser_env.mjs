// browser_env.mjs: what a browser gives the page and Node lacks, for many
// simulated browsers in one Node process. Nothing of the page's algorithm is
// here: the page's own modules (static/) run unchanged on top of this.
//
// The page calls globals: fetch('/api/…'), addEventListener('online' |
// 'pagehide', …), Math.random() and console. In a browser each page has its
// own; here every simulated browser runs inside its own AsyncLocalStorage
// context (withBrowser), and each of these globals is replaced once by one
// that acts for the browser whose code is calling it:
//
//   fetch             the page's relative URLs against the stack's base URL,
//                     over the browser's own pool of keep-alive connections
//                     (an undici Agent, at most 6 per origin as a browser
//                     keeps; browser_fetch.mjs says why not Node's fetch);
//                     offline, every connection is cut (a request in flight
//                     fails as in a network drop) and new requests fail at
//                     once, until online
//   addEventListener  a listener of that browser's window ('online',
//   removeEventListener 'pagehide', …), fired by dispatch()
//   Math.random       a generator seeded per browser (a run's backoff jitter
//                     can be replayed)
//   console           the browser's console: errors and warnings are kept
//                     for the report; nothing reaches stdout (the protocol's)

import { AsyncLocalStorage } from 'node:async_hooks';
import { agentFetch } from './browser_fetch.mjs';

const context = new AsyncLocalStorage();
const nodeFetch = globalThis.fetch;
const nodeRandom = Math.random;
const nodeConsole = globalThis.console;
const MAX_CONNECTIONS_PER_ORIGIN = 6;

/** The class of Node's own fetch dispatcher (undici's Agent), which Node does not export. */
async function agentClass() {
  const key = Symbol.for('undici.globalDispatcher.1');
  if (!globalThis[key]) {
    // Node makes its dispatcher on the first fetch.
    await nodeFetch('http://127.0.0.1:1/').catch(() => {});
  }
  const Agent = globalThis[key]?.constructor;
  if (typeof Agent !== 'function') throw new Error('cannot find the class of Node\'s fetch dispatcher');
  return Agent;
}
const Agent = await agentClass();

/** A seeded generator (mulberry32) from a string. */
function seededRandom(seed) {
  let h = 1779033703 ^ seed.length;
  for (let i = 0; i < seed.length; i += 1) {
    h = Math.imul(h ^ seed.charCodeAt(i), 3432918353);
    h = (h << 13) | (h >>> 19);
  }
  let a = h >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One simulated browser's window: its network, its event listeners, its console. */
export class BrowserWindow {
  constructor({ name, baseUrl, seed }) {
    this.name = name;
    this.baseUrl = baseUrl;
    this.random = seededRandom(String(seed));
    this.listeners = new Map();      // type → Set of listeners
    this.agent = new Agent({ connections: MAX_CONNECTIONS_PER_ORIGIN });
    this.offline = false;
    this.inFlight = new Set();       // {reject} of fetches not answered yet
    this.errors = [];                // console.error, and what escaped the page
    this.warnings = 0;
    this.onWarning = () => {};       // (text) for the harness's tally
  }

  async fetch(input, init = {}) {
    if (this.offline) throw new TypeError('fetch failed', { cause: new Error('offline') });
    const url = new URL(String(input), this.baseUrl);
    // Names the browser to a load balancer's log (cluster_chaos.py counts
    // the polls that changed host); nothing in PBP reads it.
    const headers = init.headers instanceof Headers ? Object.fromEntries(init.headers) : { ...(init.headers ?? {}) };
    headers['x-chaos-client'] = this.name;
    init = { ...init, headers };
    let cut;
    const dropped = new Promise((_, reject) => { cut = reject; });
    const entry = { cut };
    this.inFlight.add(entry);
    try {
      return await Promise.race([agentFetch(this.agent, url, init), dropped]);
    } finally {
      this.inFlight.delete(entry);
    }
  }

  /** The network goes away: every connection is closed, requests fail until online(). */
  goOffline() {
    this.offline = true;
    for (const { cut } of this.inFlight) cut(new TypeError('fetch failed', { cause: new Error('offline') }));
    this.inFlight.clear();
    this.closeConnections();
  }

  /** The network is back: the window fires 'online', as a browser does. */
  goOnline() {
    this.offline = false;
    this.dispatch('online');
  }

  closeConnections() {
    const old = this.agent;
    this.agent = new Agent({ connections: MAX_CONNECTIONS_PER_ORIGIN });
    old.destroy().catch(() => {});
  }

  addEventListener(type, listener) {
    if (typeof listener !== 'function') return;
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(listener);
  }

  removeEventListener(type, listener) {
    this.listeners.get(type)?.delete(listener);
  }

  /** Fire a window event (in this browser's context, as its own code would see it). */
  dispatch(type, fields = {}) {
    const event = { type, ...fields };
    withBrowser(this, () => {
      for (const listener of [...(this.listeners.get(type) ?? [])]) {
        try { listener(event); } catch (err) { this.errors.push(`${type} listener threw: ${err?.stack ?? err}`); }
      }
    });
  }
}

/** Run `fn` as code of `window`'s page: every global above acts for it, also in what fn schedules. */
export function withBrowser(window, fn) {
  return context.run(window, fn);
}

export function currentBrowser() {
  return context.getStore();
}

function requireBrowser(what) {
  const window = context.getStore();
  if (!window) throw new Error(`${what} called outside any simulated browser`);
  return window;
}

const text = (args) => args.map((a) => (a instanceof Error ? (a.stack ?? a.message) : typeof a === 'string' ? a : JSON.stringify(a))).join(' ');

/** Replace the globals once per process. `log(text)`: where harness-level output goes (stderr). */
export function installGlobals({ log }) {
  globalThis.fetch = (input, init) => requireBrowser('fetch').fetch(input, init);
  globalThis.addEventListener = (type, listener) => requireBrowser('addEventListener').addEventListener(type, listener);
  globalThis.removeEventListener = (type, listener) => requireBrowser('removeEventListener').removeEventListener(type, listener);
  Math.random = () => (context.getStore()?.random ?? nodeRandom)();
  const browserConsole = {
    error: (...args) => {
      const window = context.getStore();
      if (window) window.errors.push(text(args)); else log(`console.error outside a browser: ${text(args)}`);
    },
    warn: (...args) => {
      const window = context.getStore();
      if (window) { window.warnings += 1; window.onWarning(text(args)); } else log(`console.warn: ${text(args)}`);
    },
    log: (...args) => log(text(args)),
    info: (...args) => log(text(args)),
    debug: () => {},
  };
  globalThis.console = { ...nodeConsole, ...browserConsole };
}
