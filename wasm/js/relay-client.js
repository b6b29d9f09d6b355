// RelayClient: sends finished messages to a postwire relay over its
// WebSocket protocol (postwire.v1, docs/protocol.md) and reports what became
// of them. Works with the browser's WebSocket and in Node.js 20, which has
// none: there the package's own dependency `ws` is used (or pass `WebSocket`
// in the options).
//
//   const client = new RelayClient('wss://relay.example/v1/submit', { token });
//   const msg = await client.send(bytes, { envelope: { mailFrom, rcptTo } });
//   msg.on('delivered', (e) => console.log(e.rcpt, e.response));
//   const results = await msg.done; // one entry per recipient, when all are final
//
// Every message has an id (given, or a random UUID): it is the relay's
// idempotency key. After a dropped connection the client reconnects, submits
// again every message not yet accepted (the relay never sends one twice) and
// asks for the status of accepted messages whose delivery is not yet known.

const PROTOCOL = 'postwire.v1';

/** Codes after which reconnecting cannot help. */
const FATAL_CODES = new Set(['unauthorized', 'auth_required', 'protocol']);

/** An error reported by the relay or by the client, with a machine-readable `code`. */
export class RelayError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {string} [id]
   */
  constructor(code, message, id) {
    super(message);
    this.name = 'RelayError';
    this.code = code;
    if (id !== undefined) this.id = id;
  }
}

/** Extracts the bare address from `Name <addr>` or `addr`. */
function bareAddress(s) {
  const m = /<([^<>]*)>\s*$/.exec(String(s));
  return (m ? m[1] : String(s)).trim();
}

/** The envelope of a message spec: sender or from, then to + cc + bcc. */
export function envelopeOfSpec(spec) {
  const from = spec.sender ?? spec.from;
  if (!from) throw new RelayError('no_envelope', 'the spec has neither sender nor from');
  const seen = new Set();
  const rcptTo = [];
  for (const r of [...(spec.to ?? []), ...(spec.cc ?? []), ...(spec.bcc ?? [])]) {
    const a = bareAddress(r);
    if (!seen.has(a.toLowerCase())) {
      seen.add(a.toLowerCase());
      rcptTo.push(a);
    }
  }
  const envelope = { mailFrom: bareAddress(from), rcptTo };
  // Envelope-only requests of the spec travel to the relay with the envelope.
  if (spec.dsn) envelope.dsn = spec.dsn;
  if (spec.requireTls) envelope.requireTls = true;
  return envelope;
}

/**
 * The postwire package this file ships in, loaded on first use so that a
 * client sending only bytes never loads the WebAssembly module: its Node
 * entry under Node.js, its browser entry elsewhere (the same module instance
 * a page that imported `postwire` already has).
 */
let packagePromise = null;
function loadPackage() {
  if (!packagePromise) {
    const isNode = typeof process !== 'undefined' && Boolean(process.versions?.node);
    const entry = isNode ? '../node.js' : '../browser.js';
    packagePromise = import(/* @vite-ignore */ entry).catch((e) => {
      packagePromise = null;
      throw new RelayError('no_builder', `cannot build a spec: pass { build } or use the postwire package (${e.message})`);
    });
  }
  return packagePromise;
}

/**
 * A spec whose attachment contents that are `Blob`s (a `File` is one) have
 * been read into `Uint8Array`s, for `buildEml`, which is synchronous. The
 * spec itself is not changed: when any content is a Blob, a shallow copy is
 * returned; otherwise the spec as it is.
 * @param {object} spec
 * @returns {Promise<object>}
 */
export async function readBlobs(spec) {
  const list = spec?.attachments;
  if (!Array.isArray(list) || !list.some((a) => isBlob(a?.content))) return spec;
  const attachments = await Promise.all(
    list.map(async (a) => (isBlob(a?.content) ? { ...a, content: new Uint8Array(await a.content.arrayBuffer()) } : a)),
  );
  return { ...spec, attachments };
}

function isBlob(value) {
  if (typeof Blob !== 'undefined' && value instanceof Blob) return true;
  return Boolean(value) && typeof value === 'object' && typeof value.arrayBuffer === 'function' && typeof value.size === 'number' && typeof value.slice === 'function';
}

function newId() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

/** A tiny event emitter, the same in browsers and Node. */
class Emitter {
  constructor() {
    this._handlers = new Map();
  }
  /** Adds a listener; returns a function that removes it. */
  on(type, fn) {
    if (!this._handlers.has(type)) this._handlers.set(type, new Set());
    this._handlers.get(type).add(fn);
    return () => this._handlers.get(type)?.delete(fn);
  }
  _emit(type, payload) {
    for (const fn of this._handlers.get(type) ?? []) {
      try {
        fn(payload);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }
}

/**
 * A message the relay accepted. Its delivery events arrive later:
 * `on('delivered' | 'deferred' | 'failed', fn)`, and `done` resolves with one
 * result per recipient once every recipient is final.
 */
export class SentMessage extends Emitter {
  constructor(id) {
    super();
    /** Every event so far, replayed to listeners added later. */
    this.events = [];
    this.id = id;
    this.duplicate = false;
    /** @type {string[]} */
    this.rcptTo = [];
    /** @type {Map<string, object>} */
    this.recipients = new Map();
    this.done = new Promise((resolve) => {
      this._resolveDone = resolve;
    });
    this._finished = false;
  }

  /**
   * Adds a listener for 'delivered', 'deferred' or 'failed'. Events that
   * arrived before the listener was added (even before `send` resolved) are
   * replayed to it first, so none is missed.
   */
  on(type, fn) {
    for (const e of this.events) if (e.type === type) fn(e);
    return super.on(type, fn);
  }

  _event(frame) {
    const { type, rcpt } = frame;
    this.events.push(frame);
    if (type === 'deferred') {
      this.recipients.set(rcpt, { rcpt, state: 'deferred', reason: frame.reason, attempts: frame.attempts });
    } else {
      this.recipients.set(rcpt, {
        rcpt,
        state: type,
        ...(type === 'delivered' ? { response: frame.response } : { reason: frame.reason }),
      });
    }
    this._emit(type, frame);
    this._check();
  }

  _status(recipients) {
    for (const r of recipients) {
      const prev = this.recipients.get(r.rcpt);
      const changed = !prev || prev.state !== r.state;
      this.recipients.set(r.rcpt, r);
      if (changed && (r.state === 'delivered' || r.state === 'failed')) {
        const e = { type: r.state, id: this.id, ...r };
        this.events.push(e);
        this._emit(r.state, e);
      }
    }
    if (this.rcptTo.length === 0) this.rcptTo = recipients.map((r) => r.rcpt);
    this._check();
  }

  _check() {
    if (this._finished || this.rcptTo.length === 0) return;
    const all = this.rcptTo.map((r) => this.recipients.get(r));
    const final = ['delivered', 'failed', 'bounced', 'complained'];
    if (all.every((r) => r && final.includes(r.state))) {
      this._finished = true;
      this._resolveDone(all);
    }
  }

  /** Whether every recipient is final. */
  get settled() {
    return this._finished;
  }
}

/**
 * A client of a postwire relay.
 */
export class RelayClient extends Emitter {
  /**
   * @param {string} url  ws:// or wss:// URL of the relay's /v1/submit endpoint
   * @param {object} options
   * @param {string} options.token  the relay token's secret
   * @param {Function} [options.WebSocket]  a WebSocket constructor (default: the global one, else the `ws` package)
   * @param {(spec: object) => Uint8Array | Promise<Uint8Array>} [options.build]  turns a spec into bytes (default: buildEml of the postwire package)
   * @param {boolean} [options.reconnect=true]  reconnect after a dropped connection
   * @param {number} [options.maxReconnectDelay=10000]  ms
   * @param {object} [options.webSocketOptions]  third constructor argument for Node's `ws` (e.g. { headers, origin })
   */
  constructor(url, options = {}) {
    super();
    if (!options.token) throw new RelayError('unauthorized', 'RelayClient needs { token }');
    this.url = url;
    this._token = options.token;
    this._WebSocket = options.WebSocket;
    this._build = options.build;
    this._reconnect = options.reconnect ?? true;
    this._maxDelay = options.maxReconnectDelay ?? 10000;
    this.window = 1;
    this.maxSize = Infinity;
    /** Messages waiting to be submitted, in order. */
    this._queue = [];
    /** Submitted, not yet answered: id -> entry. */
    this._inflight = new Map();
    /** Accepted, delivery not final: id -> SentMessage. */
    this._tracked = new Map();
    this._ws = null;
    this._ready = null;
    this._closed = false;
    this._attempt = 0;
    this._isReady = false;
    this._everReady = false;
    this._wsOptions = options.webSocketOptions;
  }

  async _ctor() {
    if (this._WebSocket) return this._WebSocket;
    if (globalThis.WebSocket) return globalThis.WebSocket;
    try {
      // A variable specifier that bundlers leave alone: a literal 'ws' makes
      // Vite/Rollup fail to build any page that imports the package.
      const wsPackage = 'ws';
      const mod = await import(/* @vite-ignore */ wsPackage);
      return mod.WebSocket ?? mod.default;
    } catch {
      throw new RelayError(
        'no_websocket',
        'no WebSocket available: pass { WebSocket }, or install the "ws" package (a dependency of postwire that is missing here)',
      );
    }
  }

  /** Connects (once); resolves when the relay said `ready`. */
  connect() {
    if (this._closed) return Promise.reject(new RelayError('closed', 'the client is closed'));
    if (!this._ready) {
      this._ready = this._open();
      this._ready.catch(() => {});
    }
    return this._ready;
  }

  async _open() {
    const WS = await this._ctor();
    return new Promise((resolve, reject) => {
      let ready = false;
      let lastError = null;
      const ws = this._wsOptions ? new WS(this.url, [PROTOCOL], this._wsOptions) : new WS(this.url, [PROTOCOL]);
      ws.binaryType = 'arraybuffer';
      this._ws = ws;
      ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token: this._token }));
      ws.onmessage = (ev) => {
        if (typeof ev.data !== 'string') return;
        let frame;
        try {
          frame = JSON.parse(ev.data);
        } catch {
          return;
        }
        if (frame.type === 'ready') {
          ready = true;
          this._isReady = true;
          this._everReady = true;
          this._attempt = 0;
          this.window = Math.max(1, frame.window | 0);
          this.maxSize = frame.maxSize;
          this._emit('ready', frame);
          resolve(frame);
          this._resume();
          return;
        }
        if (frame.type === 'error') {
          lastError = new RelayError(frame.code, frame.message);
          this._emit('error', lastError);
          return;
        }
        this._frame(frame);
      };
      let transportError = '';
      ws.onerror = (ev) => {
        transportError = ev?.message ?? ev?.error?.message ?? '';
      };
      ws.onclose = (ev) => {
        if (this._ws === ws) this._ws = null;
        this._isReady = false;
        const err =
          lastError ??
          (ready || this._everReady
            ? new RelayError('connection_closed', `connection closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ''})`)
            : new RelayError(
                'connection_failed',
                `cannot connect to ${this.url}${transportError ? `: ${transportError}` : ` (close code ${ev.code})`}`,
              ));
        this._emit('close', { code: ev.code, reason: ev.reason, error: err });
        if (!ready) reject(err);
        this._lost(err);
      };
    });
  }

  /** The connection is gone: requeue what was not answered, then reconnect or fail. */
  _lost(err) {
    this._ready = null;
    const unanswered = [...this._inflight.values()];
    this._inflight.clear();
    this._queue.unshift(...unanswered);
    // A first connection that fails (refused, 403 for a foreign Origin, TLS)
    // is reported at once; after a session existed, the client keeps trying.
    const fatal = FATAL_CODES.has(err.code) || !this._everReady;
    if (this._closed || fatal || !this._reconnect) {
      for (const e of this._queue.splice(0)) e.reject(err);
      return;
    }
    if (this._queue.length === 0 && this._tracked.size === 0) return;
    const delay = Math.min(this._maxDelay, 100 * 2 ** this._attempt++);
    this._emit('reconnect', { delay, pending: this._queue.length, tracked: this._tracked.size });
    setTimeout(() => {
      if (!this._closed) this.connect().catch(() => {});
    }, delay);
  }

  /** After (re)connecting: ask for the state of tracked messages, resubmit the rest. */
  _resume() {
    for (const id of this._tracked.keys()) {
      this._ws?.send(JSON.stringify({ type: 'status', id }));
    }
    this._pump();
  }

  _pump() {
    const ws = this._ws;
    if (!ws || !this._readyResolved()) return;
    while (this._inflight.size < this.window && this._queue.length > 0) {
      const e = this._queue.shift();
      // maxSize is known only after `ready`: a message queued before it is
      // checked here, and refused once, without uploading it.
      if (e.bytes.byteLength > this.maxSize) {
        const err = new RelayError('too_large', `message of ${e.bytes.byteLength} bytes exceeds the relay's limit of ${this.maxSize}`, e.id);
        e.reject(err);
        this._emit('rejected', { type: 'rejected', id: e.id, code: err.code, message: err.message });
        continue;
      }
      this._inflight.set(e.id, e);
      const submit = { type: 'submit', id: e.id, size: e.bytes.byteLength };
      if (e.envelope) submit.envelope = e.envelope;
      ws.send(JSON.stringify(submit));
      ws.send(e.bytes);
    }
  }

  _readyResolved() {
    return this._ws !== null && this._ws.readyState === 1 && this._isReady;
  }

  _frame(frame) {
    const { id } = frame;
    switch (frame.type) {
      case 'accepted': {
        const e = this._inflight.get(id);
        if (!e) break;
        this._inflight.delete(id);
        const msg = e.message;
        msg.duplicate = frame.duplicate;
        msg.rcptTo = frame.rcptTo ?? [];
        this._tracked.set(id, msg);
        // Events may have come before the accepted frame; apply them now.
        for (const early of e.early) msg._event(early);
        if (frame.duplicate) this._ws?.send(JSON.stringify({ type: 'status', id }));
        msg.done.then(() => this._tracked.delete(id));
        msg._check();
        e.resolve(msg);
        this._emit('accepted', frame);
        this._pump();
        break;
      }
      case 'rejected': {
        const e = this._inflight.get(id);
        if (!e) break;
        this._inflight.delete(id);
        e.reject(new RelayError(frame.code, frame.message, id));
        this._emit('rejected', frame);
        this._pump();
        break;
      }
      case 'delivered':
      case 'deferred':
      case 'failed': {
        const msg = this._tracked.get(id);
        if (msg) msg._event(frame);
        else this._inflight.get(id)?.early.push(frame);
        this._emit(frame.type, frame);
        break;
      }
      // Reports after delivery (docs/bounces.md): on the client, and on the
      // message while it is still tracked (its `done` has usually resolved).
      case 'bounced':
      case 'complained': {
        const msg = this._tracked.get(id);
        if (msg) {
          msg.events.push(frame);
          msg.recipients.set(frame.rcpt, { ...frame, state: frame.type });
          msg._emit(frame.type, frame);
        }
        this._emit(frame.type, frame);
        break;
      }
      case 'status': {
        const msg = this._tracked.get(id);
        if (msg && frame.known) msg._status(frame.recipients);
        this._emit('status', frame);
        break;
      }
      default:
        break;
    }
  }

  async _bytesOf(bytesOrSpec, options) {
    if (bytesOrSpec instanceof Uint8Array) return { bytes: bytesOrSpec, envelope: options.envelope };
    if (bytesOrSpec instanceof ArrayBuffer) return { bytes: new Uint8Array(bytesOrSpec), envelope: options.envelope };
    if (typeof bytesOrSpec === 'string') return { bytes: new TextEncoder().encode(bytesOrSpec), envelope: options.envelope };
    if (bytesOrSpec && typeof bytesOrSpec === 'object') {
      // Attachment contents may be Blobs/Files here (send is async); read
      // them once into bytes, which buildEml copies into WebAssembly once.
      bytesOrSpec = await readBlobs(bytesOrSpec);
      if (this._build) {
        const bytes = await this._build(bytesOrSpec);
        return { bytes, envelope: options.envelope ?? envelopeOfSpec(bytesOrSpec) };
      }
      const pkg = await loadPackage();
      return { bytes: pkg.buildEml(bytesOrSpec), envelope: options.envelope ?? pkg.envelopeOf(bytesOrSpec) };
    }
    throw new RelayError('bad_input', 'send() takes a Uint8Array, a string or a message spec');
  }

  /**
   * Sends one message. Resolves with a SentMessage once the relay has it
   * durably (`accepted`); rejects with a RelayError carrying the relay's code.
   * @param {Uint8Array | ArrayBuffer | string | object} bytesOrSpec
   * @param {{ envelope?: { mailFrom: string, rcptTo: string[] }, id?: string }} [options]
   */
  async send(bytesOrSpec, options = {}) {
    const { bytes, envelope } = await this._bytesOf(bytesOrSpec, options);
    if (bytes.byteLength > this.maxSize) {
      throw new RelayError('too_large', `message of ${bytes.byteLength} bytes exceeds the relay's limit of ${this.maxSize}`);
    }
    const id = options.id ?? newId();
    const message = new SentMessage(id);
    const accepted = new Promise((resolve, reject) => {
      this._queue.push({ id, bytes, envelope, message, resolve, reject, early: [] });
    });
    await this._ensure();
    this._pump();
    return accepted;
  }

  /** Connects if needed. Never throws: a failed connection rejects the queued sends. */
  async _ensure() {
    if (this._isReady) return;
    await this.connect().catch(() => {});
  }

  /**
   * Sends many messages, keeping the relay's window full. `messages` is an
   * iterable or async iterable of bytes, specs or `{ message, envelope, id }`.
   * Resolves when every message was accepted or rejected, with one result per
   * message in input order: `{ id, ok, message?, error? }`.
   * @param {Iterable<any> | AsyncIterable<any>} messages
   * @param {{ onProgress?: (p: { submitted: number, accepted: number, rejected: number }) => void }} [options]
   */
  async sendBulk(messages, options = {}) {
    const results = [];
    const progress = { submitted: 0, accepted: 0, rejected: 0 };
    const active = new Set();
    await this._ensure();
    const limit = () => Math.max(1, this.window * 2);
    let index = 0;
    for await (const item of messages) {
      const i = index++;
      const isWrapped = item && typeof item === 'object' && 'message' in item && !(item instanceof Uint8Array);
      const body = isWrapped ? item.message : item;
      const opts = isWrapped ? { envelope: item.envelope, id: item.id } : {};
      progress.submitted++;
      const tracked = this.send(body, opts)
        .then(
          (message) => {
            results[i] = { id: message.id, ok: true, message };
            progress.accepted++;
          },
          (error) => {
            results[i] = { id: error.id ?? opts.id, ok: false, error };
            progress.rejected++;
          },
        )
        .then(() => {
          active.delete(tracked);
          options.onProgress?.({ ...progress });
        });
      active.add(tracked);
      if (active.size >= limit()) await Promise.race(active);
    }
    await Promise.all(active);
    return results;
  }

  /** Closes the connection; unanswered sends are rejected. */
  close() {
    this._closed = true;
    this._ws?.close(1000, 'bye');
  }
}

export default RelayClient;
