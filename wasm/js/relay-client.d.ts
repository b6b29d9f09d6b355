// Types of wasm/js/relay-client.js: the client of the postwire relay's
// WebSocket protocol (postwire.v1, docs/protocol.md).

/** SMTP envelope: MAIL FROM and RCPT TO, bare addresses. */
export interface Envelope {
  mailFrom: string;
  rcptTo: string[];
  /** Delivery status notifications to ask the upstream for (RFC 3461); refused `invalid_dsn` when malformed. */
  dsn?: {
    notify?: ('never' | 'success' | 'failure' | 'delay')[];
    ret?: 'full' | 'hdrs';
    envid?: string;
    recipients?: { address: string; notify?: ('never' | 'success' | 'failure' | 'delay')[]; orcpt?: string }[];
  };
  /** REQUIRETLS (RFC 8689) toward the upstream. */
  requireTls?: boolean;
}

/** Codes of the relay (docs/protocol.md) and of the client itself. */
export type RelayErrorCode =
  | 'auth_required'
  | 'unauthorized'
  | 'protocol'
  | 'too_large'
  | 'size_mismatch'
  | 'bad_id'
  | 'bad_envelope'
  | 'invalid_dsn'
  | 'invalid_address'
  | 'no_envelope'
  | 'sender_not_allowed'
  | 'too_many_recipients'
  | 'rate_limited'
  | 'storage'
  | 'shutting_down'
  | 'timeout'
  | 'connection_failed'
  | 'connection_closed'
  | 'closed'
  | 'no_websocket'
  | 'no_builder'
  | 'bad_input';

/** An error of the relay or the client, with a machine-readable code. */
export class RelayError extends Error {
  constructor(code: RelayErrorCode | string, message: string, id?: string);
  readonly name: 'RelayError';
  readonly code: RelayErrorCode | string;
  /** The message id, for per-message errors. */
  readonly id?: string;
}

export interface DeliveredEvent {
  type: 'delivered';
  id: string;
  rcpt: string;
  /** The upstream's reply, e.g. "250 2.0.0 OK queued as 17". */
  response: string;
  /** The reply's code (e.g. 550), when the text is a server's reply. */
  smtpCode?: number;
  /** The reply's RFC 3463 enhanced status code (e.g. "5.1.1"), when it has one. */
  enhancedCode?: string;
}

export interface DeferredEvent {
  type: 'deferred';
  id: string;
  rcpt: string;
  reason: string;
  attempts: number;
  /** Next attempt, milliseconds since the Unix epoch. */
  retryAt: number;
  /** The reply's code (e.g. 550), when the text is a server's reply. */
  smtpCode?: number;
  /** The reply's RFC 3463 enhanced status code (e.g. "5.1.1"), when it has one. */
  enhancedCode?: string;
}

export interface FailedEvent {
  type: 'failed';
  id: string;
  rcpt: string;
  reason: string;
  /** The reply's code (e.g. 550), when the text is a server's reply. */
  smtpCode?: number;
  /** The reply's RFC 3463 enhanced status code (e.g. "5.1.1"), when it has one. */
  enhancedCode?: string;
}

/** A delivered recipient's server sent a delivery status notification back (relay with a bounce domain). */
export interface BouncedEvent {
  type: 'bounced';
  id: string;
  rcpt: string;
  /** `hard` (5.x.x: the recipient is now suppressed) or `soft` (4.x.x). */
  bounce: 'hard' | 'soft';
  /** The report's RFC 3463 status (e.g. "5.1.1"). */
  status: string;
  /** The report's diagnostic code, when it has one. */
  diagnostic?: string;
}

/** An abuse report (ARF) came back for a delivered recipient; it is now suppressed. */
export interface ComplainedEvent {
  type: 'complained';
  id: string;
  rcpt: string;
  /** The report's feedback type (e.g. "abuse"), when it has one. */
  feedbackType?: string;
}

export type DeliveryEvent = DeliveredEvent | DeferredEvent | FailedEvent | BouncedEvent | ComplainedEvent;

/** The state of one recipient. */
export type RecipientState =
  | { rcpt: string; state: 'queued' }
  | { rcpt: string; state: 'deferred'; reason: string; attempts: number }
  | { rcpt: string; state: 'delivered'; response: string }
  | { rcpt: string; state: 'failed'; reason: string }
  | { rcpt: string; state: 'bounced'; bounce: 'hard' | 'soft'; status: string; diagnostic?: string; atMs?: number }
  | { rcpt: string; state: 'complained'; feedbackType?: string; atMs?: number };

/** A message the relay has accepted (durably spooled). */
export class SentMessage {
  /** The message id (the relay's idempotency key). */
  readonly id: string;
  /** The id was already known to the relay: nothing was stored or sent again. */
  duplicate: boolean;
  /** The envelope recipients as the relay normalised them. */
  rcptTo: string[];
  /** The latest state of each recipient. */
  readonly recipients: Map<string, RecipientState>;
  /** Every event received so far. */
  readonly events: DeliveryEvent[];
  /** One final state ('delivered' or 'failed') per recipient, once all are final. */
  readonly done: Promise<RecipientState[]>;
  /** Whether every recipient is final. */
  readonly settled: boolean;
  /** Listens for delivery events; earlier events are replayed first. Returns a remover. */
  on(type: 'delivered', fn: (e: DeliveredEvent) => void): () => void;
  on(type: 'deferred', fn: (e: DeferredEvent) => void): () => void;
  on(type: 'failed', fn: (e: FailedEvent) => void): () => void;
  on(type: 'bounced', fn: (e: BouncedEvent) => void): () => void;
  on(type: 'complained', fn: (e: ComplainedEvent) => void): () => void;
}

/**
 * A message spec as the postwire package's buildEml takes it. For `send`,
 * attachment `content` may also be a `Blob` or `File` (read before building),
 * next to a `Uint8Array`, `ArrayBuffer` or base64 string.
 */
export type MessageSpec = Record<string, unknown> & {
  from?: string;
  sender?: string | null;
  to?: string[];
  cc?: string[];
  bcc?: string[];
};

export interface RelayClientOptions {
  /** The token's secret (pw_...). */
  token: string;
  /** A WebSocket constructor; default: globalThis.WebSocket, else the `ws` package. */
  WebSocket?: unknown;
  /** Turns a spec into message bytes; default: buildEml of the postwire package. */
  build?: (spec: MessageSpec) => Uint8Array | Promise<Uint8Array>;
  /** Reconnect after a dropped connection, resubmitting by id (default true). */
  reconnect?: boolean;
  /** Longest delay between reconnection attempts, in ms (default 10000). */
  maxReconnectDelay?: number;
  /** Third argument of Node's `ws` constructor (e.g. { headers, origin }). */
  webSocketOptions?: object;
}

export interface SendOptions {
  /** Explicit envelope; default: from the spec, or the relay derives it from the headers. */
  envelope?: Envelope;
  /** The message id; default: a random UUID. */
  id?: string;
}

export interface BulkItem {
  message: Uint8Array | ArrayBuffer | string | MessageSpec;
  envelope?: Envelope;
  id?: string;
}

export type BulkResult =
  | { id: string; ok: true; message: SentMessage }
  | { id: string | undefined; ok: false; error: RelayError };

export interface BulkProgress {
  submitted: number;
  accepted: number;
  rejected: number;
}

/** Frames the relay sends, as received (see docs/protocol.md). */
export interface ReadyFrame {
  type: 'ready';
  protocol: 'postwire.v1';
  token: string;
  window: number;
  maxSize: number;
}

export class RelayClient {
  constructor(url: string, options: RelayClientOptions);
  readonly url: string;
  /** Most unanswered submissions at once, as the relay announced. */
  window: number;
  /** Largest message for this token, as the relay announced. */
  maxSize: number;
  /** Connects and authenticates; resolves on the relay's `ready`. */
  connect(): Promise<ReadyFrame>;
  /** Sends one message; resolves once the relay has it durably (`accepted`). */
  send(bytesOrSpec: Uint8Array | ArrayBuffer | string | MessageSpec, options?: SendOptions): Promise<SentMessage>;
  /** Sends many messages keeping the window full; one result per message, in input order. */
  sendBulk(
    messages: Iterable<BulkItem | Uint8Array | string | MessageSpec> | AsyncIterable<BulkItem | Uint8Array | string | MessageSpec>,
    options?: { onProgress?: (p: BulkProgress) => void },
  ): Promise<BulkResult[]>;
  /** Client-wide events: every delivery event, accepted/rejected frames, connection changes. */
  on(type: 'delivered', fn: (e: DeliveredEvent) => void): () => void;
  on(type: 'deferred', fn: (e: DeferredEvent) => void): () => void;
  on(type: 'failed', fn: (e: FailedEvent) => void): () => void;
  on(type: 'bounced', fn: (e: BouncedEvent) => void): () => void;
  on(type: 'complained', fn: (e: ComplainedEvent) => void): () => void;
  on(type: 'accepted', fn: (e: { type: 'accepted'; id: string; duplicate: boolean; rcptTo: string[] }) => void): () => void;
  on(type: 'rejected', fn: (e: { type: 'rejected'; id: string; code: string; message: string }) => void): () => void;
  on(type: 'status', fn: (e: { type: 'status'; id: string; known: boolean; recipients: RecipientState[] }) => void): () => void;
  on(type: 'ready', fn: (e: ReadyFrame) => void): () => void;
  on(type: 'error', fn: (e: RelayError) => void): () => void;
  on(type: 'close', fn: (e: { code: number; reason: string; error: RelayError }) => void): () => void;
  on(type: 'reconnect', fn: (e: { delay: number; pending: number; tracked: number }) => void): () => void;
  /** Closes the connection; sends not yet accepted are rejected. */
  close(): void;
}

/**
 * A spec with every attachment `content` that is a `Blob`/`File` read into a
 * `Uint8Array` (a shallow copy; the spec itself is unchanged). `send` does
 * this itself before building.
 */
export function readBlobs<S extends MessageSpec>(spec: S): Promise<S>;

/** The envelope of a spec: sender or from; to + cc + bcc, de-duplicated. */
export function envelopeOfSpec(spec: MessageSpec): Envelope;

export default RelayClient;
