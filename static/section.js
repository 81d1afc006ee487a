// section.js: what both views share: a section of the page shown while it
// follows a Replica.

export class ReplicaSection {
  /** Render `this.replica` on every change it reports, and show the section. */
  _follow(onChange) {
    this._unsubscribe = this.replica.subscribe(onChange);
    this.section.hidden = false;
    this.render();
  }

  detach() {
    this._unsubscribe?.();
    this._unsubscribe = null;
    this.replica = null;
    this.section.hidden = true;
  }
}
