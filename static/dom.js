// dom.js: the small DOM tools both views use: building elements, the
// change highlight, a <time> for an mtime, and an alert box.

import { formatMtime } from './format.js';

/** An element: `attrs` are attributes, except class, text and on<event>. */
export const h = (tag, attrs = {}, ...children) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c != null) el.append(c);
  return el;
};

const reducedMotion = () => globalThis.matchMedia?.('(prefers-reduced-motion: reduce)').matches;

export function flash(el) { flashAll([el]); }

/**
 * Restarts the change highlight of every element with one forced layout for
 * the whole batch: a layout per row made a burst of changes to a long table
 * take seconds (quadratic in its rows).
 */
export function flashAll(elements) {
  if (elements.length === 0 || reducedMotion()) return;
  for (const el of elements) el.classList.remove('flash');
  void elements[0].offsetWidth; // restart the animations
  for (const el of elements) {
    el.classList.add('flash');
    clearTimeout(el._flashTimer);
    const end = () => { clearTimeout(el._flashTimer); el.classList.remove('flash'); };
    el.addEventListener('animationend', end, { once: true });
    el._flashTimer = setTimeout(end, 1500); // in case no animationend comes (hidden tab)
  }
}

/** Shows `mtime` in a <time> element (untouched when it shows that already). */
export function setTime(time, mtime) {
  if (time.getAttribute('datetime') === (mtime ?? '')) return;
  time.setAttribute('datetime', mtime ?? '');
  time.title = mtime ?? '';
  time.textContent = formatMtime(mtime);
}

/** An alert box (role=alert) with a Dismiss button. */
export class Alert {
  constructor(el) {
    this.el = el;
    el.addEventListener('click', (e) => {
      if (e.target.closest('[data-action="dismiss"]')) this.clear();
    });
  }

  show(message) {
    this.el.replaceChildren(
      h('p', { class: 'alert-text', text: message }),
      h('button', { type: 'button', class: 'btn ghost small', 'data-action': 'dismiss', text: 'Dismiss' }),
    );
    this.el.classList.add('shown');
  }

  clear() {
    this.el.replaceChildren();
    this.el.classList.remove('shown');
  }
}
