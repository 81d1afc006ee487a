// transports.js: how the tabs of a browser send each other messages.
// BroadcastChannel where there is one; else localStorage 'storage' events
// (a write is seen by every other tab of the origin). Both deliver to
// `onmessage(msg)` and never back to the sender.

import { newId } from './ids.js';

export class BroadcastTransport {
  constructor(name) {
    this.kind = 'broadcastchannel';
    this.channel = new BroadcastChannel(name);
    this.channel.onmessage = (e) => this.onmessage?.(e.data);
  }
  post(msg) { this.channel.postMessage(msg); }
}

export class StorageTransport {
  constructor(name) {
    this.kind = 'localstorage';
    this.key = `${name}:msg`;
    addEventListener('storage', (e) => {
      if (e.key !== this.key || !e.newValue) return;
      let msg;
      try { msg = JSON.parse(e.newValue).msg; } catch { return; }
      this.onmessage?.(msg);
    });
  }
  post(msg) {
    // A fresh nonce makes every write a change, so every write is an event.
    try { localStorage.setItem(this.key, JSON.stringify({ nonce: newId(), msg })); } catch (err) {
      console.warn('pbp: cannot share a message through localStorage', err);
    }
  }
}

/**
 * The transport `mode` ('auto', 'storage' or 'single') allows here; null when
 * the tabs cannot talk (then each polls alone).
 */
export function openTransport(mode, name) {
  if (mode === 'single') return null;
  if (mode !== 'storage' && typeof BroadcastChannel === 'function') return new BroadcastTransport(name);
  return storageUsable() ? new StorageTransport(name) : null;
}

/** Whether localStorage can be written here (private modes and Node cannot). */
export function storageUsable() {
  try {
    const k = '__pbp_probe__';
    localStorage.setItem(k, k);
    localStorage.removeItem(k);
    return true;
  } catch {
    return false;
  }
}
