// browsers.mjs: a Node process of simulated browsers (browser.mjs) for the
// convergence harness, driven by chaos.py (browsers.py) over stdin/stdout,
// one JSON object a line. Every command carries an `id`; its answer carries
// the same `id` and `ok` (with `error` when not ok). Events carry `event`.
//
//   {cmd:'open', name, view:{table, where, kind, token?, rule?}, seed, after_ms}
//                      a browser that loads the page after_ms from now (answers at once)
//   {cmd:'close', name}                  close its tab ('pagehide'); its counts stay
//   {cmd:'offline', names} / {cmd:'online', names}        network drop / back
//   {cmd:'status'}     → {browsers, ready, polling, live, applied, resets, errors}
//   {cmd:'truth', tables:{table:[row_to_json text]}}      what the tables hold now
//   {cmd:'pending'}    → {pending, names}: open replicas not equal to the truth
//   {cmd:'final'}      → {replicas:[{name, drift, diffs, loaded, …}]}
//   {cmd:'rows', name} → {rows, stats, state}
//   {cmd:'report'}     → {browsers:[{name, closed, stats, log, errors}], warnings,
//                         process_errors, lag:[[now(), ms this loop ran late, busy 0–1]], cpu_seconds}
//   {cmd:'exit'}       close every tab, answer, exit
//
//   {event:'phantom', client, ev}        a client applied a row whose `val` or `body`
//                                        starts with --phantom-prefix (a rolled-back write)
//   {event:'leak', client, ev}           a signed-in client applied a row, new or old,
//                                        that its view's `rule` does not allow (another user's)
//
// node Tests/chaos/browsers.mjs --base http://127.0.0.1:PORT [--phantom-prefix rb-]

import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { installGlobals } from './browser_env.mjs';
import { SimulatedBrowser, now } from './browser.mjs';
import { Truth, diff } from './compare.mjs';

const { values: options } = parseArgs({
  options: { base: { type: 'string' }, 'phantom-prefix': { type: 'string', default: '' } },
});
if (!options.base) throw new Error('--base http://HOST:PORT is required');
const phantomPrefix = options['phantom-prefix'];

const log = (text) => process.stderr.write(`[browsers ${process.pid}] ${text}\n`);
installGlobals({ log });

const processErrors = [];
process.on('unhandledRejection', (err) => processErrors.push(`unhandled rejection: ${err?.stack ?? err}`));
process.on('uncaughtException', (err) => processErrors.push(`uncaught exception: ${err?.stack ?? err}`));

// How late this process's event loop runs, and how busy it is: a busy loop
// delays what the browsers see, and so the convergence times measured. Both:
// a loop that runs many short callbacks back to back is never late to a
// timer, yet a browser's answer waits its turn behind all the others.
const LAG_SAMPLE_MS = 50;
const lag = [];                      // [now(), ms late, fraction of the time busy] every 50 ms
let lagBefore = now();
let loopBefore = performance.eventLoopUtilization();
setInterval(() => {
  const t = now();
  const loop = performance.eventLoopUtilization();
  lag.push([t, Math.max(0, t - lagBefore - LAG_SAMPLE_MS), performance.eventLoopUtilization(loop, loopBefore).utilization]);
  lagBefore = t;
  loopBefore = loop;
}, LAG_SAMPLE_MS).unref();

const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

const browsers = new Map();          // name → SimulatedBrowser (closed ones too: their counts)
const warnings = new Map();          // first words of a console.warn → count
let truth = null;
let truthVersion = 0;
const verified = new Map();          // name → `${truth version}:${replica changes}` when last seen equal

const brief = (ev) => ({ table: ev.table, op: ev.op, key: ev.key, cursor: ev.cursor });

/** A row written by a rolled-back transaction (its text starts with the prefix). */
const phantom = (row) => [row?.val, row?.body].some((text) => typeof text === 'string' && text.startsWith(phantomPrefix));

/** A row, new or old, that the view's identity may not see: another user's. */
const leaked = (ev, rule) => [ev.new, ev.old].some((row) => row
  && Object.entries(rule).some(([column, value]) => column in row && String(row[column]) !== String(value)));

function checkEvents(browser, events) {
  const { rule } = browser.view;
  for (const ev of events) {
    if (!ev) continue;
    if (phantomPrefix && phantom(ev.new)) send({ event: 'phantom', client: browser.name, ev: brief(ev) });
    if (rule && leaked(ev, rule)) {
      send({ event: 'leak', client: browser.name, ev: { ...brief(ev), new: ev.new, old: ev.old } });
    }
  }
}

const tally = (text) => {
  const head = text.replace(/\d+/g, 'N').slice(0, 60);
  warnings.set(head, (warnings.get(head) ?? 0) + 1);
};

const open = () => [...browsers.values()].filter((b) => !b.closed);

function browser(name) {
  const b = browsers.get(name);
  if (!b) throw new Error(`no browser ${name}`);
  return b;
}

function equalsTruth(b) {
  if (!truth || !b.replica?.loaded) return false;
  return diff(b.replica.rows, truth.expected(b.view), 0).count === 0;
}

const commands = {
  open({ name, view, seed, after_ms: afterMs = 0 }) {
    if (browsers.has(name)) throw new Error(`browser ${name} exists`);
    const b = new SimulatedBrowser({ name, view, seed, baseUrl: options.base, onApply: checkEvents, onWarning: tally });
    browsers.set(name, b);
    setTimeout(() => b.open().catch((err) => b.errors.push(`open: ${err?.stack ?? err}`)), afterMs);
    return {};
  },
  close({ name }) { browser(name).close(); return {}; },
  offline({ names }) { for (const name of names) browser(name).goOffline(); return {}; },
  online({ names }) { for (const name of names) browser(name).goOnline(); return {}; },
  status() {
    const all = [...browsers.values()];
    const live = open();
    return {
      browsers: live.length,
      ready: live.filter((b) => b.ready && b.polling).length,
      live: live.filter((b) => b.state === 'live').length,
      applied: all.reduce((n, b) => n + b.stats.events_applied, 0),
      resets: all.reduce((n, b) => n + b.stats.resets, 0),
      errors: all.reduce((n, b) => n + b.errors.length, 0) + processErrors.length,
    };
  },
  truth({ tables }) {
    truthVersion += 1;
    truth = new Truth(tables, truthVersion);
    return { version: truthVersion };
  },
  pending() {
    const names = [];
    for (const b of open()) {
      const mark = `${truthVersion}:${b.changes}`;
      if (verified.get(b.name) === mark) continue;
      if (equalsTruth(b)) verified.set(b.name, mark);
      else { verified.delete(b.name); names.push(b.name); }
    }
    return { pending: names.length, names: names.slice(0, 20) };
  },
  final() {
    if (!truth) throw new Error('no truth given');
    return {
      replicas: open().map((b) => {
        const { count, diffs } = b.replica ? diff(b.replica.rows, truth.expected(b.view)) : { count: 0, diffs: [] };
        return {
          name: b.name, drift: count, diffs, loaded: Boolean(b.replica?.loaded), size: b.replica?.rows.size ?? 0,
          lastChange: b.lastChange, changes: b.changes, state: b.state, cursor: b.member?.cursor ?? null,
          log: b.log.slice(-12),
        };
      }),
    };
  },
  rows({ name }) {
    const b = browser(name);
    return { rows: b.replica ? Object.fromEntries(b.replica.rows) : null, stats: b.stats, state: b.state,
      ready: b.ready, polling: b.polling, errors: b.errors };
  },
  report() {
    return {
      browsers: [...browsers.values()].map((b) => ({ name: b.name, closed: b.closed, stats: b.stats, log: b.log, errors: b.errors })),
      warnings: Object.fromEntries(warnings),
      process_errors: processErrors,
      lag,
      cpu_seconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
    };
  },
  exit() {
    for (const b of open()) b.close();
    setTimeout(() => process.exit(0), 50);
    return {};
  },
};

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
  if (!line.trim()) return;
  let message;
  try { message = JSON.parse(line); } catch { log(`not JSON: ${line.slice(0, 200)}`); return; }
  const { id, cmd } = message;
  try {
    const handler = commands[cmd];
    if (!handler) throw new Error(`unknown command ${cmd}`);
    send({ id, ok: true, ...handler(message) });
  } catch (err) {
    send({ id, ok: false, error: String(err?.stack ?? err) });
  }
});
lines.on('close', () => {
  for (const b of open()) b.close();
  setTimeout(() => process.exit(0), 50);
});
