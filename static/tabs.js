// tabs.js: one long-poll per browser, shared by all its tabs.
//
// Each tab shows one view (the whole table, or one row) and that view is a
// *member*: its subscriptions (e.g. [{table: 'testtype', where: {id: 5}}]), its
// own snapshot, and the cursor up to which its copy is current. Every tab keeps
// a registry of all members of the browser, learned from 'join' messages.
//
// Exactly one tab, the leader, polls. Its one request carries the union of
// every member's subscriptions and starts from the oldest member cursor; each
// event comes back with `matches` (indexes into that list), which the leader
// turns into the ids of the members it concerns (`to`) before broadcasting
// the batch. A member joining with a subscription the poll lacks (or an older
// cursor) makes the leader abort the poll in flight and send it again with the
// same cursor (a subscription no member needs any more just stays in until
// the poll next ends). When the leader goes away another tab is elected and
// polls from the cursors every tab has seen the old leader share: nothing is
// missed, and a member drops an event at or before its own cursor, so nothing
// applies twice. A member whose cursor is of another epoch than the leader's
// is left out of the poll; the first batch it hears of, answered in the
// leader's epoch, tells it that its copy is of a stream that is gone, and it
// reloads (member.js, isStranded).
//
// One poll at a time, as the server sees it: the browser closes an aborted
// request's connection a few milliseconds after fetch() gives up on it, so a
// re-sent poll, and a new leader's first poll, wait RESEND_SETTLE_MS first
// (poller.js). Leaving the page, also into the back/forward cache where a
// frozen page would keep its poll open and its lock held, shuts the tab down:
// poll aborted, locks released, 'leave' sent; a page restored from it reloads.
//
// Election (election.js): Web Locks, else a lease in localStorage. Messages
// (transports.js): BroadcastChannel, else localStorage 'storage' events. With
// neither, each tab polls alone. `?tabs=single` or `?tabs=storage` in the page
// URL forces a mode (for tests). Tabs share only with tabs acting for the
// same identity (`identity`, syncNames()); a tab whose identity has no key
// (null) polls alone. What the leader polls for and who gets which
// event is decided in plan.js; cursors are ordered in cursors.js.
//
// Messages (all carry `from`, the sender's tab id):
//   {type:'hello'}                              a tab started: members re-join, the leader sends its status
//   {type:'leader'}                             a tab became leader: members re-join
//   {type:'join', member, tab, subs, keyField, cursor, at}
//                                               a member, its subscriptions, its table's key
//                                               column and its cursor (`at`: when its
//                                               snapshot was started)
//   {type:'leave', member}                      a member went away
//   {type:'batch', cursor, covered, events}     a poll's answer: `covered` lists the members the
//                                               poll was made for (their cursor moves to `cursor`),
//                                               each event lists in `to` the members it matched
//   {type:'status', state}                      the leader's connection state
//   {type:'resync', at}                         the stream was reset: every member reloads its snapshot

import { isAbort } from './poller.js';
import * as defaultApi from './api.js';
import { compareCursors, subscriptionKey } from './cursors.js';
import { newId } from './ids.js';
import { enrol, readSnapshot, joinMessage, deliver, isStranded } from './member.js';
import { openTransport } from './transports.js';
import { openElection } from './election.js';
import { MemberRegistry } from './registry.js';
import { Leadership } from './leader.js';
import { showAlive } from './liveness.js';

export { compareCursors, subscriptionKey };

const CHANNEL_NAME = 'pbp';
const LOCK_NAME = 'pbp-leader';

/**
 * The channel and lock names of the tabs that act for one identity (its key,
 * token.js: '' for anonymous). Tabs of different tokens never hear each
 * other nor share a leader, so no tab is served by a poll made with another
 * identity's token. The localStorage fallbacks derive their keys from them.
 */
export function syncNames(identity) {
  return identity ? { channel: `${CHANNEL_NAME}:${identity}`, lock: `${LOCK_NAME}:${identity}` } : { channel: CHANNEL_NAME, lock: LOCK_NAME };
}

export class TabSync {
  /**
   * onStatus(state) and onRole(role) report to the page. `mode`: 'auto'
   * (default), 'single' or 'storage'. `identity`: the key of the token the
   * tab acts for ('' anonymous; null: unknown, then it polls alone). The view
   * is given with setMember().
   */
  constructor({ onStatus = () => {}, onRole = () => {}, api = defaultApi, mode = 'auto', identity = '' } = {}) {
    this.onStatus = onStatus;
    this.onRole = onRole;
    this.api = api;
    this.identity = identity;
    this.mode = identity === null ? 'single' : mode;
    this.id = newId();
    this.role = null;
    this.roleHistory = [];       // [{role, at}] (for the curious and the tests)
    this.leaderState = 'connecting';
    this.member = null;          // this tab's member
    this.registry = new MemberRegistry();   // every member of the browser
    this.leading = null;         // a Leadership while this tab is the leader
    this.transport = null;
    this.election = null;
    this.liveness = 'none';
    this._electing = false;
  }

  /** When the stream was last reset (members loaded before must reload). */
  get resetAt() { return this.registry.resetAt; }

  /** The leader's poll loop (poller.js), while this tab leads. */
  get poller() { return this.leading?.poller ?? null; }

  // ---- the page's side ------------------------------------------------------

  /**
   * Show a view (null: one that watches nothing): `member` is {subscriptions, keyField, load(signal) →
   * {cursor}, apply(events)} (watch.js makes them; member.js says what is
   * added to it). load() reads the snapshot into the view's replica and
   * resolves to the cursor taken before it; apply() gets the events that
   * matched the member's subscriptions, in order, each at most once.
   */
  setMember(member) {
    const old = this.member;
    if (old) this._leave(old);
    this.member = member ? enrol(member) : null;   // null: a view that watches nothing (the list of tables)
    if (member && this.started) this._load(member, 'connecting');
    else this._showStatus();
    return member;
  }

  start() {
    this.started = true;
    const names = syncNames(this.identity);
    this.transport = openTransport(this.mode, names.channel);
    this.election = openElection(this.mode, names.lock, this.id);
    if (!this.transport || !this.election) {
      this.transport = null;   // alone: this tab polls for itself
      this.election = null;
    } else {
      this.transport.onmessage = (msg) => this._onMessage(msg);
      // The leader drops the members of tabs that are gone: this one shows it lives.
      this.liveness = this.election.kind === 'weblocks' ? 'locks' : 'heartbeat';
      this._stopShowingAlive = showAlive(this.liveness, this.id, () => this._rejoin());
      this._post({ type: 'hello' });
    }
    // Leaving the page, also into the back/forward cache, where a frozen page
    // would keep its poll open and its lock held: step out for good. A page
    // restored from that cache starts afresh.
    if (typeof addEventListener === 'function') {   // a page (Node has none)
      addEventListener('pagehide', () => this.shutdown());
      addEventListener('pageshow', (e) => { if (e.persisted) location.reload(); });
    }
    this._showStatus();
    if (this.member) this._load(this.member, 'connecting');
  }

  /** Stop: leave, stop polling, give up the leadership and the locks. */
  shutdown() {
    if (this.down) return;
    this.down = true;
    if (this.member) {
      this.member.abort?.abort();
      this._post({ type: 'leave', member: this.member.id });
    }
    this._stepDown();
    this.election?.release();
    this._stopShowingAlive?.();
  }

  /** A copy of what a person or a test may want to see. */
  debugState() {
    return {
      id: this.id,
      identity: this.identity,
      role: this.role,
      leaderState: this.leaderState,
      transport: this.transport?.kind ?? 'none',
      election: this.election?.kind ?? 'none',
      member: this.member && { id: this.member.id, subscriptions: this.member.subscriptions, keyField: this.member.keyField, cursor: this.member.cursor, ready: this.member.ready, received: this.member.received },
      registry: this.registry.list().map(({ member, tab, subs, keyField, cursor }) => ({ member, tab, subs, keyField, cursor })),
      poll: this.poller?.current ? { cursor: this.poller.current.cursor, subscriptions: this.poller.current.subscriptions } : null,
      sent: this.poller?.sent ?? [],
      claiming: Boolean(this.election?._claiming),
    };
  }

  // ---- this tab's member ------------------------------------------------------

  _showStatus() {
    // A tab that watches nothing still shows the browser's connection once it takes part in it.
    if (!this.member) { this.onStatus(this.role ? this.leaderState : 'idle'); return; }
    this.onStatus(this.member?.loading ?? (this.member?.ready ? this.leaderState : 'connecting'));
  }

  _setRole(role) {
    this.role = role;
    this.roleHistory.push({ role, at: Date.now() });
    this.onRole(role);
  }

  _post(msg) {
    this.transport?.post({ ...msg, from: this.id });
  }

  /** Load (or reload, after a reset) the member's snapshot, then join. */
  async _load(member, reason) {
    member.abort?.abort();
    const controller = new AbortController();
    member.abort = controller;
    member.ready = false;
    member.loading = reason;
    this._forget(member.id);
    this._showStatus();
    let loaded;
    try {
      loaded = await readSnapshot(member, {
        signal: controller.signal,
        resetAt: () => this.resetAt,
        onFailure: () => { member.loading = 'reconnecting'; this._showStatus(); },
        wanted: () => this.member === member,
      });
    } catch (err) {
      if (!isAbort(err)) console.error('pbp: loading the snapshot failed', err);
      return;
    }
    if (!loaded || this.down) return;
    Object.assign(member, { cursor: loaded.cursor, at: loaded.at, ready: true, loading: null });
    this._join(member);
    this._showStatus();
    if (!this._electing) this._elect();
  }

  _join(member) {
    const msg = joinMessage(member, this.id);
    this._register(msg);
    this._post(msg);
  }

  _rejoin() {
    const m = this.member;
    if (m?.ready) this._post(joinMessage(m, this.id));
  }

  _leave(member) {
    member.abort?.abort();
    member.ready = false;
    this._forget(member.id);
    this._post({ type: 'leave', member: member.id });
  }

  _forget(memberId) {
    if (this.registry.forget(memberId)) this.leading?.replanIfNeeded();
  }

  // ---- messages -----------------------------------------------------------------

  _onMessage(msg) {
    if (this.down || !msg || typeof msg !== 'object' || msg.from === this.id) return;
    switch (msg.type) {
      case 'hello':
        this._rejoin();
        if (this.poller) this._post({ type: 'status', state: this.leaderState });
        break;
      case 'leader':
        this._rejoin();
        break;
      case 'join':
        this._register(msg);
        break;
      case 'leave':
        this._forget(msg.member);
        break;
      case 'batch':
        this._onBatchMessage(msg);
        break;
      case 'status':
        if (!this.poller) { this.leaderState = msg.state; this._showStatus(); }
        break;
      case 'resync':
        this._onResync(msg.at);
        break;
      default:
        break;
    }
  }

  /** A member's join (or re-join): every tab keeps the registry, so any can take over. */
  _register(msg) {
    if (this.registry.register(msg)) this.leading?.replanIfNeeded();
  }

  _onBatchMessage(msg) {
    const covered = new Set(msg.covered ?? []);
    this.registry.advance(covered, msg.cursor);
    const m = this.member;
    if (!m?.ready) return;
    if (covered.has(m.id)) {
      deliver(m, (msg.events ?? []).filter((ev) => ev.to?.includes(m.id)), msg.cursor);
    } else if (isStranded(m, msg)) {
      // Its copy is from an older epoch than the leader's stream: reload.
      this._load(m, 'resyncing');
    } else if (Date.now() - (m.rejoinedAt ?? 0) > 1000) {
      // The leader polled without us (it started after we joined, or dropped us): join again.
      m.rejoinedAt = Date.now();
      this._rejoin();
    }
  }

  _onResync(at) {
    this.registry.reset(at);
    const m = this.member;
    if (m && (m.ready ? m.at < at : !m.loading)) this._load(m, 'resyncing');
    // A member loading already notices resetAt and loads again.
  }

  // ---- leading ------------------------------------------------------------------

  _elect() {
    this._electing = true;
    if (!this.election) { this._lead(); return; }
    this.election.elect({
      onFollow: () => this._setRole('follower'),
      onLead: () => this._lead(),
      onDemote: () => {
        this._stepDown();
        this._setRole('follower');
        this._post({ type: 'hello' });
      },
    });
  }

  _lead() {
    if (this.down) return;
    const takingOver = this.role === 'follower';
    this._setRole('leader');
    this._post({ type: 'leader' });
    // Taking over a live stream: stay 'live' unless the poll fails.
    const initial = this.leaderState === 'live' ? 'live' : 'connecting';
    this.leaderState = initial;
    this.leading = new Leadership({
      api: this.api,
      registry: this.registry,
      tabId: this.id,
      ownMember: () => this.member?.id,
      liveness: this.liveness,
      initialState: initial,
      post: (msg) => this._post(msg),
      deliver: (events, cursor) => { if (this.member?.ready) deliver(this.member, events, cursor); },
      onReset: () => this._reset(),
      onStatus: (state) => {
        this.leaderState = state;
        this._showStatus();
        this._post({ type: 'status', state });
      },
    });
    this.leading.start({ settle: takingOver });
    this._post({ type: 'status', state: initial });
  }

  _stepDown() {
    this.leading?.stop();
    this.leading = null;
  }

  _reset() {
    const at = Date.now();
    this._post({ type: 'resync', at });
    this._onResync(at);
  }
}
