// indicators.js: the page's header: the connection state and this tab's
// role (it holds the connection for all tabs, or receives from the tab that
// does).

const STATUS_TEXT = {
  idle: 'This view watches no rows',
  connecting: 'Connecting to the server…',
  live: 'Live: changes appear as they happen',
  reconnecting: 'Connection lost: retrying',
  resyncing: 'Reloading the rows after a gap in the change stream',
};

const ROLE_TEXT = {
  leader: 'This tab holds the connection for all tabs of this browser',
  follower: 'Another tab holds the connection; this tab receives its changes',
};


export class Indicators {
  constructor(doc = document) {
    this.doc = doc;
    this.statusEl = doc.getElementById('status');
    this.roleEl = doc.getElementById('role');
  }

  setStatus(state) {
    this.statusEl.textContent = state;
    this.statusEl.dataset.state = state;
    this.statusEl.title = STATUS_TEXT[state] ?? state;
    this.doc.documentElement.dataset.state = state;
  }

  setRole(role) {
    this.roleEl.textContent = role;
    this.roleEl.dataset.role = role;
    this.roleEl.title = ROLE_TEXT[role] ?? role;
  }
}
