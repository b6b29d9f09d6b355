/**
 * Sign-in: the relay token typed once, kept in sessionStorage (so it is gone
 * when the tab closes), and the one authenticated connection to the relay
 * that sending and bulk share; reopened on demand when it was closed.
 */

import { describeCode } from './codes';
import { byId, formatSize, say } from './dom';
import { asRelayError, RelayConnection, RelayError, relayUrl } from './relay';

const KEY = 'postwire.token';

/** The signed-in state of the page. */
export class Session {
  private conn: RelayConnection | null = null;
  private opening: Promise<RelayConnection> | null = null;
  private status = byId('conn-status');
  private tokenInput = byId<HTMLInputElement>('token');
  private signout = byId<HTMLButtonElement>('signout-btn');
  private limitListeners: (() => void)[] = [];
  /** The largest message this token may send (the relay's `ready.maxSize`), in bytes; 0 while unknown. */
  maxSize = 0;

  constructor() {
    byId<HTMLFormElement>('signin').addEventListener('submit', (e) => {
      e.preventDefault();
      const t = this.tokenInput.value.trim();
      if (!t) {
        say(this.status, 'Type your relay token first (postwire token add NAME prints one).', 'error');
        this.tokenInput.focus();
        return;
      }
      void this.signIn(t);
    });
    this.signout.addEventListener('click', () => this.signOut());
    const saved = sessionStorage.getItem(KEY);
    if (saved) void this.signIn(saved);
  }

  /** Called when the token's size limit becomes known or changes. */
  onLimit(cb: () => void): void {
    this.limitListeners.push(cb);
  }

  private setLimit(n: number): void {
    if (n === this.maxSize) return;
    this.maxSize = n;
    for (const l of this.limitListeners) l();
  }

  /** The token in use, if any. */
  get token(): string | null {
    return sessionStorage.getItem(KEY);
  }

  /** Checks the token with the relay and keeps it for this tab. */
  async signIn(token: string): Promise<boolean> {
    say(this.status, 'Signing in…');
    this.conn?.close();
    this.conn = null;
    try {
      const conn = await RelayConnection.open(relayUrl(), token);
      sessionStorage.setItem(KEY, token);
      this.adopt(conn);
      this.tokenInput.value = '';
      this.signout.hidden = false;
      return true;
    } catch (e) {
      const err = asRelayError(e);
      if (err.code === 'unauthorized' || err.code === 'auth_required') sessionStorage.removeItem(KEY);
      say(this.status, `Sign-in failed: ${describeCode(err.code, err.message)}`, 'error');
      return false;
    }
  }

  /** Forgets the token and closes the connection. */
  signOut(): void {
    sessionStorage.removeItem(KEY);
    this.conn?.close();
    this.conn = null;
    this.signout.hidden = true;
    this.setLimit(0);
    say(this.status, 'Signed out');
  }

  /** The open connection, reopened with the kept token when needed. */
  async connection(): Promise<RelayConnection> {
    if (this.conn?.open) return this.conn;
    const token = this.token;
    if (!token) throw new RelayError('auth_required', 'not signed in');
    if (!this.opening) {
      this.opening = RelayConnection.open(relayUrl(), token).finally(() => (this.opening = null));
    }
    const conn = await this.opening;
    this.adopt(conn);
    return conn;
  }

  private adopt(conn: RelayConnection): void {
    this.conn = conn;
    this.setLimit(conn.ready.maxSize);
    const limit = conn.ready.maxSize ? `, up to ${formatSize(conn.ready.maxSize)} a message` : '';
    say(this.status, `Signed in as ${conn.ready.token}${limit}`, 'ok');
    conn.onClose = (err) => {
      if (this.conn !== conn) return;
      this.conn = null;
      if (err.code !== 'connection_closed') say(this.status, `Connection ended: ${describeCode(err.code, err.message)}`, 'error');
      else if (this.token) say(this.status, 'Signed in (reconnects when you send)', 'ok');
    };
  }
}
