// The relay's admin API (/admin/v1, issue 17) as the operator view uses it:
// one fetch per call with `Authorization: Bearer <admin token>`, same origin
// only (the page's CSP allows connect-src 'self'), JSON in and out.

export type RecipientState =
  | 'queued' | 'delivering' | 'deferred' | 'delivered' | 'failed' | 'bounced' | 'complained' | 'held';
export type MessageState = 'queued' | 'held' | 'delivered' | 'failed' | 'partial';

export interface HistoryEntry {
  at: string;
  state: string;
  reply?: string | null;
  smtpCode?: number | null;
}

export interface Recipient {
  address: string;
  state: RecipientState;
  attempts: number;
  lastReply?: string | null;
  nextAttempt?: string | null;
  history?: HistoryEntry[];
}

export interface Message {
  id: string;
  token: string;
  clientId?: string | null;
  from: string;
  recipients: Recipient[];
  size: number;
  acceptedAt: string;
  state: MessageState;
  headers?: [string, string][];
}

export interface MessagePage {
  messages: Message[];
  next: string | null;
}

export interface Summary {
  depth: Record<string, number>;
  counts: Record<string, number>;
}

export interface Filters {
  token?: string;
  sender?: string;
  recipient?: string;
  state?: string;
  since?: string;
  until?: string;
  limit?: number;
  cursor?: string;
}

export type Action = 'retry' | 'hold' | 'release' | 'cancel' | 'delete';

/** An answer of the admin API that was not a success, or no answer at all. */
export class AdminError extends Error {
  constructor(
    /** HTTP status; 0 when the relay could not be reached. */
    readonly status: number,
    /** The API's error code (`unauthorized`, `not_found`, `conflict`, ...), or `network`/`http`. */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'AdminError';
  }

  get unauthorized(): boolean {
    return this.status === 401 || this.code === 'unauthorized';
  }
}

/** Builds the query string of a list call, leaving empty filters out. */
export function listQuery(f: Filters): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) {
    if (v === undefined || v === null || v === '') continue;
    q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

const NO_API =
  'the relay has no admin API here (no admin token yet: postwire admin-token add NAME; or the API is on --admin-listen)';

export class AdminApi {
  constructor(
    private readonly secret: string,
    private readonly base = '',
  ) {}

  /** One call; `notFound` is what a 404 means for it (no message, or no admin API at all). */
  private async call<T>(method: string, path: string, notFound = NO_API): Promise<T> {
    let resp: Response;
    try {
      resp = await fetch(`${this.base}${path}`, {
        method,
        headers: { Authorization: `Bearer ${this.secret}`, Accept: 'application/json' },
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch (e) {
      throw new AdminError(0, 'network', `the relay cannot be reached (${(e as Error).message})`);
    }
    const text = await resp.text();
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    if (!resp.ok) {
      const b = (body ?? {}) as { code?: string; message?: string };
      const code = b.code ?? 'http';
      let msg = b.message ?? '';
      if (!msg) {
        if (resp.status === 401) msg = 'the admin token was not accepted';
        else if (resp.status === 404) msg = notFound;
        else msg = `HTTP ${resp.status}`;
      }
      throw new AdminError(resp.status, code, msg);
    }
    return body as T;
  }

  list(f: Filters): Promise<MessagePage> {
    return this.call('GET', `/admin/v1/messages${listQuery(f)}`);
  }

  show(id: string): Promise<Message> {
    return this.call('GET', `/admin/v1/messages/${encodeURIComponent(id)}`, 'no such message');
  }

  summary(): Promise<Summary> {
    return this.call('GET', '/admin/v1/summary');
  }

  /** One action; `force` deletes even a message being delivered (DELETE ?force=true). */
  async act(id: string, action: Action, force = false): Promise<Message | null> {
    const path = `/admin/v1/messages/${encodeURIComponent(id)}`;
    const r = await this.call<{ ok: boolean; message?: Message }>(
      action === 'delete' ? 'DELETE' : 'POST',
      action === 'delete' ? `${path}${force ? '?force=true' : ''}` : `${path}/${action}`,
      'no such message',
    );
    return r?.message ?? null;
  }
}
