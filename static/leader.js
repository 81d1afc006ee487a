// leader.js: what the leader tab does. It polls once for every member of the
// browser (plan.js decides what the poll asks for and who gets which event),
// shares each answer with the other tabs, and drops the members of tabs that
// went away without a word (a crash sends no 'leave').

import { Poller } from './poller.js';
import { planPoll, needsReplan, routeBatch, advance } from './plan.js';
import { goneTabs } from './liveness.js';

const PRUNE_MS = 3000;   // how often the leader drops members of tabs that are gone

export class Leadership {
  /**
   * `registry`: the browser's members (registry.js); `tabId`: this tab;
   * `ownMember()`: this tab's member id, if any; `liveness`: how to tell the
   * tabs that are gone, 'locks' or 'heartbeat' (liveness.js).
   * post(msg) sends to the other tabs; onStatus(state) reports the poll's
   * state; deliver(events, cursor) hands this tab's member its events;
   * onReset() follows a reset of the stream.
   */
  constructor({ api, registry, tabId, ownMember, liveness, initialState, post, onStatus, deliver, onReset }) {
    Object.assign(this, { registry, tabId, ownMember, liveness, post, deliver });
    this.poller = new Poller({
      api,
      initialState,
      plan: () => this.plan(),
      onBatch: (batch) => this._onBatch(batch),
      onReset,
      onStatus,
    });
  }

  /** `settle`: wait for the old leader's poll to close first (poller.js). */
  start({ settle }) {
    this.poller.start({ settle });
    clearInterval(this._pruneTimer);
    this._pruneTimer = setInterval(() => this._prune(), PRUNE_MS);
    this._prune();
  }

  stop() {
    this.poller.stop();
    clearInterval(this._pruneTimer);
  }

  /** What to poll for: this tab's member is the pivot when it has joined. */
  plan() {
    const id = this.ownMember();
    const own = id ? this.registry.get(id) : null;
    return planPoll(this.registry.list(), { own, resetAt: this.registry.resetAt });
  }

  /** Re-send the poll in flight if it lacks a subscription or starts too late. */
  replanIfNeeded() {
    if (needsReplan(this.poller.current, this.plan())) this.poller.replan();
  }

  /** The poll answered: work out who gets what, share it, deliver ours. */
  _onBatch({ plan, cursor, events }) {
    const routed = routeBatch(this.registry.list(), plan, events, { resetAt: this.registry.resetAt });
    advance(routed.covered, cursor);
    const ids = routed.covered.map((e) => e.member);
    this.post({ type: 'batch', cursor, covered: ids, events: routed.events });
    const mine = this.ownMember();
    if (mine && ids.includes(mine)) this.deliver(routed.events.filter((ev) => ev.to.includes(mine)), cursor);
  }

  async _prune() {
    const gone = await goneTabs(this.liveness);
    if (gone) this.registry.prune((e) => e.tab !== this.tabId && gone(e));
  }
}
