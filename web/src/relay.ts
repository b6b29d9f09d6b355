/**
 * The page's connection to the relay: the `postwire.v1` WebSocket protocol
 * (docs/protocol.md) as the browser speaks it: an `auth` frame first, then
 * `submit` frames each followed by the message bytes, and the relay's
 * `accepted` / `rejected` / `delivered` / `deferred` / `failed` / `error`
 * frames routed to the submission they name. Upload progress comes from the
 * socket's `bufferedAmount`, which the generic client cannot report.
 */

/** SMTP envelope (JSON `mailFrom`, `rcptTo`). */
export interface Envelope {
  mailFrom: string;
  rcptTo: string[];
}

/** What `ready` says about this token. */
export interface Ready {
  token: string;
  window: number;
  maxSize: number;
}

/** A per-recipient delivery event. */
export type DeliveryEvent =
  | { type: 'delivered'; id: string; rcpt: string; response: string }
  | { type: 'deferred'; id: string; rcpt: string; reason: string; attempts: number; retryAt: number }
  | { type: 'failed'; id: string; rcpt: string; reason: string };

/** A refusal or failure, with the relay's code (or `connection` / `closed`). */
export class RelayError extends Error {
  /** Machine-readable code (codes.ts explains each). */
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'RelayError';
    this.code = code;
  }
}

interface Pending {
  accept: (dup: boolean) => void;
  reject: (e: RelayError) => void;
  onEvent?: (e: DeliveryEvent) => void;
  settled: boolean;
}

/** The WebSocket URL of the relay that served this page. */
export function relayUrl(loc: Location = location): string {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/v1/submit`;
}

/** One authenticated connection to the relay. */
export class RelayConnection {
  readonly ready: Ready;
  private ws: WebSocket;
  private pending = new Map<string, Pending>();
  private closedError: RelayError | null = null;
  private inFlight = 0;
  private slotWaiters: (() => void)[] = [];
  /** Called once when the connection ends. */
  onClose: ((e: RelayError) => void) | null = null;

  private constructor(ws: WebSocket, ready: Ready) {
    this.ws = ws;
    this.ready = ready;
    ws.onmessage = (ev) => this.frame(ev.data);
    ws.onclose = (ev) => this.closed(ev);
  }

  /** Connects and authenticates; rejects with the relay's code on refusal. */
  static open(url: string, token: string): Promise<RelayConnection> {
    return new Promise((resolve, reject) => {
      let ws: WebSocket;
      try {
        ws = new WebSocket(url, 'postwire.v1');
      } catch (e) {
        reject(new RelayError('connection', String(e)));
        return;
      }
      ws.binaryType = 'arraybuffer';
      let done = false;
      ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token }));
      ws.onmessage = (ev) => {
        if (done) return;
        let f: Record<string, unknown>;
        try {
          f = JSON.parse(String(ev.data));
        } catch {
          done = true;
          reject(new RelayError('protocol', 'the relay sent a frame that is not JSON'));
          ws.close();
          return;
        }
        done = true;
        if (f.type === 'ready') {
          resolve(new RelayConnection(ws, { token: String(f.token), window: Number(f.window) || 1, maxSize: Number(f.maxSize) || 0 }));
        } else if (f.type === 'error') {
          reject(new RelayError(String(f.code), String(f.message ?? '')));
        } else {
          reject(new RelayError('protocol', `expected ready, got ${String(f.type)}`));
          ws.close();
        }
      };
      ws.onerror = () => {
        /* the close event that follows carries the outcome */
      };
      ws.onclose = (ev) => {
        if (done) return;
        done = true;
        reject(
          ev.code === 1006 && !ev.reason
            ? new RelayError('connection', `cannot connect to ${url}`)
            : new RelayError(ev.code === 4401 ? 'unauthorized' : 'closed', ev.reason || `closed with code ${ev.code}`),
        );
      };
    });
  }

  /** Whether the connection is still usable. */
  get open(): boolean {
    return this.closedError === null;
  }

  /** Waits until fewer than `window` submissions are unanswered. */
  async slot(): Promise<void> {
    while (this.inFlight >= this.ready.window && this.open) {
      await new Promise<void>((r) => this.slotWaiters.push(r));
    }
  }

  /**
   * Submits one message. Resolves with `duplicate` when the relay accepted it
   * (durably spooled); rejects with the relay's code. `onUpload` gets the
   * fraction of the bytes handed to the network; `onEvent` every later
   * per-recipient event.
   */
  submit(
    id: string,
    bytes: Uint8Array,
    envelope: Envelope | null,
    opts: { onUpload?: (fraction: number) => void; onEvent?: (e: DeliveryEvent) => void } = {},
  ): Promise<boolean> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.ready.maxSize && bytes.length > this.ready.maxSize) {
      return Promise.reject(
        new RelayError('too_large', `message of ${bytes.length} bytes exceeds this token's limit of ${this.ready.maxSize} bytes`),
      );
    }
    return new Promise<boolean>((resolve, reject) => {
      this.inFlight++;
      this.pending.set(id, { accept: resolve, reject, onEvent: opts.onEvent, settled: false });
      const frame: Record<string, unknown> = { type: 'submit', id, size: bytes.length };
      if (envelope) frame.envelope = envelope;
      this.ws.send(JSON.stringify(frame));
      this.ws.send(bytes as Uint8Array<ArrayBuffer>);
      if (opts.onUpload) {
        const report = opts.onUpload;
        const total = bytes.length;
        const tick = () => {
          const left = Math.max(0, Math.min(total, this.ws.bufferedAmount));
          report((total - left) / total);
          if (left > 0 && this.open && !this.pending.get(id)?.settled) setTimeout(tick, 50);
        };
        tick();
      }
    });
  }

  /** Closes the connection. */
  close(): void {
    this.ws.close(1000, 'bye');
  }

  private release(): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    const w = this.slotWaiters.shift();
    if (w) w();
  }

  private frame(data: unknown): void {
    if (typeof data !== 'string') return;
    let f: Record<string, unknown>;
    try {
      f = JSON.parse(data);
    } catch {
      return;
    }
    const id = typeof f.id === 'string' ? f.id : '';
    const p = this.pending.get(id);
    switch (f.type) {
      case 'accepted':
        if (p && !p.settled) {
          p.settled = true;
          this.release();
          p.accept(Boolean(f.duplicate));
        }
        break;
      case 'rejected':
        if (p && !p.settled) {
          p.settled = true;
          this.pending.delete(id);
          this.release();
          p.reject(new RelayError(String(f.code), String(f.message ?? '')));
        }
        break;
      case 'delivered':
      case 'deferred':
      case 'failed':
        p?.onEvent?.(f as unknown as DeliveryEvent);
        break;
      case 'error':
        this.closedError = new RelayError(String(f.code), String(f.message ?? ''));
        break;
    }
  }

  private closed(ev: CloseEvent): void {
    const err = this.closedError ?? new RelayError('closed', ev.reason || `the relay closed the connection (${ev.code})`);
    this.closedError = err;
    for (const p of this.pending.values()) {
      if (!p.settled) {
        p.settled = true;
        p.reject(err);
      }
    }
    this.pending.clear();
    for (const w of this.slotWaiters.splice(0)) w();
    this.onClose?.(err);
  }
}
