/**
 * The composer page's entry point: wires the sign-in, the composer, the
 * "Open message" panel and Bulk together, and the tab bar between them
 * (arrow keys move between tabs, as the ARIA tabs pattern says).
 */

import './style.css';
import { Bulk } from './bulk';
import { Composer } from './compose';
import { byId } from './dom';
import { Opener } from './open';
import { Session } from './session';

const tabs = ['compose', 'open', 'bulk'] as const;
type Tab = (typeof tabs)[number];

function select(tab: Tab, focus = false): void {
  for (const t of tabs) {
    const btn = byId(`tab-${t}`);
    const on = t === tab;
    btn.setAttribute('aria-selected', String(on));
    btn.tabIndex = on ? 0 : -1;
    byId(`panel-${t}`).hidden = !on;
    if (on && focus) btn.focus();
  }
}

tabs.forEach((t, i) => {
  const btn = byId(`tab-${t}`);
  btn.addEventListener('click', () => select(t));
  btn.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
      const next = tabs[(i + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
      select(next, true);
      e.preventDefault();
    }
  });
});

const session = new Session();
const composer = new Composer(session);
new Opener(session, composer, () => select('compose'), () => select('open'));
new Bulk(session, composer);

// Every handler is attached: tests (and scripts driving the page) wait for
// this before typing. Until then the sign-in form is inert (method="dialog"
// outside a dialog), so an early Enter cannot put the token in the URL.
document.documentElement.dataset.ready = 'true';
