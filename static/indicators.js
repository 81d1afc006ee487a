// indicators.js: the page's header: the connection state, whom the page
// acts for (and its sign-out), and this tab's role (it holds the connection
// for all tabs, or receives from the tab that does).

const STATUS_TEXT = {
  idle: 'This view watches no rows',
  connecting: 'Connecting to the server…',
  live: 'Live: changes appear as they happen',
  reconnecting: 'Connection lost: retrying',
  resyncing: 'Reloading the rows after a gap in the change stream',
  'signed-out': 'The server refused this tab\'s token: sign out, or open a new sign-in link',
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
    this.identityEl = doc.getElementById('identity');
    this.signOutEl = doc.getElementById('sign-out');
    this.refused = false;
  }

  /**
   * Whom the page acts for: `text` (token.js signedInText()), `signedIn`
   * whether it has a token (then sign-out is offered and calls `onSignOut`).
   */
  setIdentity(text, { signedIn, onSignOut }) {
    this.identityEl.textContent = text;
    this.identityEl.dataset.state = signedIn ? 'signed-in' : 'anonymous';
    this.signOutEl.hidden = !signedIn;
    this.signOutEl.onclick = onSignOut ?? null;
  }

  /**
   * The server refused the token (401 invalid_token): said in the header for
   * good; the connection state stays 'signed-out' whatever retries report.
   */
  setRefused(message) {
    this.refused = true;
    this.identityEl.textContent = `token refused: ${message}`;
    this.identityEl.dataset.state = 'refused';
    this.setStatus('signed-out', { force: true });
  }

  /** The server needs a token (401 unauthorized: no anonymous role). */
  setSignInNeeded(message) {
    this.identityEl.textContent = `anonymous: ${message}`;
    this.identityEl.dataset.state = 'unauthorized';
  }

  setStatus(state, { force = false } = {}) {
    if (this.refused && !force) return;
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
