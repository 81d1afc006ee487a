// ids.js: identifiers for tabs, members and messages, unique across the tabs
// of a browser (crypto.randomUUID where there is one).

export const newId = () => (globalThis.crypto?.randomUUID?.()
  ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`);
