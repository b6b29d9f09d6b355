/**
 * The page's connection to the relay, over the npm package's RelayClient
 * (postwire.v1, docs/protocol.md): sign-in waits for `ready`; each message
 * resolves on `accepted` and then reports its per-recipient events (also
 * those that arrived before `accepted`); bulk goes through `sendBulk`, which
 * keeps the relay's window full. Upload progress comes from the socket's
 * `bufferedAmount`: the client is given a WebSocket subclass that remembers
 * its instance, through its public `WebSocket` option.
 */

import * as postwire from 'postwire';

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
  | { type: 'deferred'; id: string; rcpt: string; reason: string; attempts: number; retryAt?: number }
  | { type: 'failed'; id: string; rcpt: string; reason: string };

/** A refusal or failure, with the relay's or the client's code. */
export class RelayError extends Error {
  /** Machine-readable code (codes.ts explains each). */
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'RelayError';
    this.code = code;
  }
}

/** Turns whatever the client threw into a RelayError. */
export function asRelayError(e: unknown): RelayError {
  if (e instanceof RelayError) return e;
  if (e && typeof e === 'object' && 'code' in e) {
    return new RelayError(String((e as { code: unknown }).code), String((e as { message?: unknown }).message ?? ''));
  }
  return new RelayError('connection_failed', String(e));
}

/** The WebSocket URL of the relay that served this page. */
export function relayUrl(loc: Location = location): string {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/v1/submit`;
}

/** The shape of the package's SentMessage that the page uses. */
interface SentMessage {
  id: string;
  duplicate: boolean;
  rcptTo: string[];
  recipients: Map<string, { rcpt: string; state: string; response?: string; reason?: string; attempts?: number }>;
  on(type: string, fn: (frame: DeliveryEvent) => void): () => void;
}

/** The part of the package's RelayClient that the page uses (wasm/js/relay-client.js). */
interface Client {
  connect(): Promise<unknown>;
  on(type: string, fn: (frame: never) => void): () => void;
  send(bytes: Uint8Array, options: { envelope?: Envelope; id?: string }): Promise<unknown>;
  sendBulk(
    items: Iterable<{ message: Uint8Array; envelope: Envelope; id: string }>,
    options: { onProgress?: (p: { submitted: number; accepted: number; rejected: number }) => void },
  ): Promise<unknown>;
  close(): void;
}

type ClientCtor = new (url: string, options: { token: string; WebSocket: typeof WebSocket }) => Client;
const RelayClient = (postwire as unknown as { RelayClient: ClientCtor }).RelayClient;

/** One result of a bulk send, in input order. */
export interface BulkResult {
  id: string;
  ok: boolean;
  error?: RelayError;
}

/** One authenticated client of the relay. */
export class RelayConnection {
  readonly ready: Ready;
  private socket: { current: WebSocket | null };
  private client: Client;
  private closed = false;
  /** Called when the connection ends for good. */
  onClose: ((e: RelayError) => void) | null = null;

  private constructor(client: Client, ready: Ready, socket: { current: WebSocket | null }) {
    this.client = client;
    this.ready = ready;
    this.socket = socket;
    client.on('close', (ev: { error?: unknown }) => {
      const err = asRelayError(ev.error ?? new RelayError('connection_closed', 'connection closed'));
      if (['unauthorized', 'auth_required', 'protocol'].includes(err.code)) {
        this.closed = true;
        this.onClose?.(err);
      }
    });
  }

  /** Connects and authenticates; rejects with the relay's code on refusal. */
  static async open(url: string, token: string): Promise<RelayConnection> {
    const socket: { current: WebSocket | null } = { current: null };
    class TrackedWebSocket extends WebSocket {
      constructor(u: string | URL, protocols?: string | string[]) {
        super(u, protocols);
        socket.current = this;
      }
    }
    const client = new RelayClient(url, { token, WebSocket: TrackedWebSocket });
    try {
      const frame = (await client.connect()) as { token?: string; window?: number; maxSize?: number };
      return new RelayConnection(
        client,
        { token: String(frame.token ?? ''), window: Number(frame.window) || 1, maxSize: Number(frame.maxSize) || 0 },
        socket,
      );
    } catch (e) {
      client.close();
      throw asRelayError(e);
    }
  }

  /** Whether the connection can still be used. */
  get open(): boolean {
    return !this.closed;
  }

  /**
   * Submits one message. Resolves with `duplicate` once the relay accepted it
   * (durably spooled); rejects with the relay's code. `onUpload` gets the
   * fraction of the bytes handed to the network; `onEvent` every
   * per-recipient event, including those that came before `accepted`.
   */
  async submit(
    id: string,
    bytes: Uint8Array,
    envelope: Envelope | null,
    opts: { onUpload?: (fraction: number) => void; onEvent?: (e: DeliveryEvent) => void } = {},
  ): Promise<{ duplicate: boolean; rcptTo: string[] }> {
    let settled = false;
    if (opts.onUpload) {
      const report = opts.onUpload;
      const total = Math.max(1, bytes.length);
      const tick = () => {
        if (settled) return;
        const left = Math.max(0, Math.min(total, this.socket.current?.bufferedAmount ?? total));
        report((total - left) / total);
        setTimeout(tick, 50);
      };
      setTimeout(tick, 0);
    }
    try {
      const msg = (await this.client.send(bytes, envelope ? { envelope, id } : { id })) as SentMessage;
      settled = true;
      opts.onUpload?.(1);
      if (opts.onEvent) {
        const cb = opts.onEvent;
        for (const r of msg.recipients.values()) {
          if (r.state === 'delivered') cb({ type: 'delivered', id, rcpt: r.rcpt, response: r.response ?? '' });
          else if (r.state === 'failed') cb({ type: 'failed', id, rcpt: r.rcpt, reason: r.reason ?? '' });
          else if (r.state === 'deferred') cb({ type: 'deferred', id, rcpt: r.rcpt, reason: r.reason ?? '', attempts: r.attempts ?? 0 });
        }
        for (const t of ['delivered', 'deferred', 'failed']) msg.on(t, cb);
      }
      return { duplicate: msg.duplicate, rcptTo: msg.rcptTo };
    } catch (e) {
      settled = true;
      throw asRelayError(e);
    }
  }

  /**
   * Sends many messages with the window kept full (the client's sendBulk).
   * `onAnswer` hears each id once answered (with the refusal, or null when
   * accepted), `onEvent` each later delivery event; resolves with one result
   * per message, in order.
   */
  async bulk(
    items: Iterable<{ message: Uint8Array; envelope: Envelope; id: string }>,
    on: {
      onAnswer: (id: string, refusal: RelayError | null, duplicate: boolean) => void;
      onEvent: (e: DeliveryEvent) => void;
      onProgress?: (p: { submitted: number; accepted: number; rejected: number }) => void;
    },
  ): Promise<BulkResult[]> {
    const off = [
      this.client.on('accepted', (f: { id: string; duplicate: boolean }) => on.onAnswer(f.id, null, f.duplicate)),
      this.client.on('rejected', (f: { id: string; code: string; message: string }) =>
        on.onAnswer(f.id, new RelayError(f.code, f.message), false),
      ),
      ...['delivered', 'deferred', 'failed'].map((t) => this.client.on(t, (f: DeliveryEvent) => on.onEvent(f))),
    ];
    try {
      const results = (await this.client.sendBulk(items, { onProgress: on.onProgress })) as {
        id: string;
        ok: boolean;
        error?: unknown;
      }[];
      return results.map((r) => ({ id: r.id, ok: r.ok, error: r.error ? asRelayError(r.error) : undefined }));
    } finally {
      // Delivery events keep coming after the last answer: keep listening to
      // those, stop listening to answers.
      off[0]();
      off[1]();
    }
  }

  /** Closes the connection. */
  close(): void {
    this.closed = true;
    this.client.close();
  }
}
