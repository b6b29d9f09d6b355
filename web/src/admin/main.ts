// The operator view (web/admin.html, served at /admin; issue 17): sign in with
// an admin token (kept in sessionStorage only), watch the queue (polled every
// 2.5 s), filter it, open one message's history, act on it, and chart the
// relay's counters from /metrics.
import './admin.css';
import { AdminApi, AdminError, type Action, type Filters, type Message } from './api';
import { MetricHistory, SERIES, parsePrometheus } from './metrics';
import { renderChart } from './chart';

const POLL_MS = 2500;
const PAGE = 50;
const STORAGE_KEY = 'postwire-admin-token';

function $<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing from admin.html`);
  return e as T;
}

function h<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

/** A time of the API (RFC 3339 or epoch ms/s) for people: local date and time. */
function when(v: string | number | null | undefined): string {
  if (v === null || v === undefined || v === '') return '—';
  let d: Date;
  if (typeof v === 'number') d = new Date(v < 1e12 ? v * 1000 : v);
  else d = new Date(v);
  if (Number.isNaN(d.getTime())) return String(v);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function size(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

const els = {
  signin: $<HTMLFormElement>('signin'),
  token: $<HTMLInputElement>('admin-token'),
  signinBtn: $<HTMLButtonElement>('signin-btn'),
  signout: $<HTMLButtonElement>('signout-btn'),
  authStatus: $('auth-status'),
  authError: $('auth-error'),
  app: $('app'),
  summary: $('summary'),
  filters: $<HTMLFormElement>('filters'),
  clear: $<HTMLButtonElement>('clear-filters'),
  live: $<HTMLInputElement>('live'),
  queueStatus: $('queue-status'),
  queueNotice: $('queue-notice'),
  queueError: $('queue-error'),
  queueBody: $<HTMLTableElement>('queue').tBodies[0],
  more: $<HTMLButtonElement>('more'),
  detail: $('detail'),
  detailH: $('detail-h'),
  detailId: $('detail-id'),
  detailMeta: $('detail-meta'),
  detailRcpts: $('detail-recipients'),
  detailHeaders: $<HTMLTableElement>('detail-headers').tBodies[0],
  actionStatus: $('action-status'),
  actionError: $('action-error'),
  close: $<HTMLButtonElement>('detail-close'),
  charts: $('charts'),
  metricsError: $('metrics-error'),
  confirm: $<HTMLDialogElement>('confirm'),
  confirmText: $('confirm-text'),
  confirmYes: $<HTMLButtonElement>('confirm-yes'),
};

let api: AdminApi | null = null;
let filters: Filters = {};
let limit = PAGE;
let openId: string | null = null;
let timer: number | undefined;
let polling = false;
let pollAgain = false;
let history = new MetricHistory();

function filtersFromForm(): Filters {
  const f = new FormData(els.filters);
  const get = (k: string) => String(f.get(k) ?? '').trim();
  const since = get('since');
  let sinceIso = '';
  if (since) {
    const d = new Date(since);
    if (!Number.isNaN(d.getTime())) sinceIso = d.toISOString();
  }
  return { token: get('token'), sender: get('sender'), recipient: get('recipient'), state: get('state'), since: sinceIso };
}

function showAuthError(msg: string): void {
  els.authError.textContent = msg;
}

function signedOut(msg = 'Not signed in'): void {
  api = null;
  sessionStorage.removeItem(STORAGE_KEY);
  window.clearTimeout(timer);
  els.app.hidden = true;
  els.signout.hidden = true;
  els.signinBtn.hidden = false;
  els.token.disabled = false;
  els.authStatus.textContent = msg;
  openId = null;
  els.detail.hidden = true;
  history = new MetricHistory();
}

/** An error of a call: signs out on 401, otherwise shows it where it belongs. */
function failed(e: unknown, where: HTMLElement): void {
  if (e instanceof AdminError && e.unauthorized) {
    signedOut('Signed out');
    showAuthError('The admin token was not accepted (401 unauthorized). Sign in again.');
    return;
  }
  where.textContent = e instanceof Error ? e.message : String(e);
}

async function signIn(secret: string, remembered: boolean): Promise<void> {
  showAuthError('');
  const candidate = new AdminApi(secret);
  els.authStatus.textContent = 'Signing in…';
  try {
    await candidate.summary();
  } catch (e) {
    signedOut();
    if (remembered) return;
    if (e instanceof AdminError && e.unauthorized) showAuthError('The admin token was not accepted (401 unauthorized).');
    else showAuthError(`Cannot sign in: ${e instanceof Error ? e.message : String(e)}`);
    els.token.focus();
    return;
  }
  api = candidate;
  sessionStorage.setItem(STORAGE_KEY, secret);
  els.token.value = '';
  els.token.disabled = true;
  els.signinBtn.hidden = true;
  els.signout.hidden = false;
  els.authStatus.textContent = 'Signed in';
  els.app.hidden = false;
  await poll();
}

function stateBadge(state: string): HTMLElement {
  return h('span', state, `badge state-${state.replace(/[^a-z]/g, '')}`);
}

function renderQueue(messages: Message[]): void {
  const focusedId = (document.activeElement as HTMLElement | null)?.dataset?.open ?? null;
  const rows = messages.map((m) => {
    const tr = h('tr');
    if (m.id === openId) tr.className = 'selected';
    tr.append(h('td', when(m.acceptedAt)));
    const idCell = h('td');
    const open = h('button', m.id, 'link');
    open.type = 'button';
    open.dataset.open = m.id;
    open.setAttribute('aria-label', `Open message ${m.id}`);
    idCell.append(open);
    tr.append(idCell, h('td', m.token), h('td', m.from));
    const rc = h('td');
    for (const r of m.recipients) {
      const line = h('div', undefined, 'rcpt');
      line.append(`${r.address} `, stateBadge(r.state));
      rc.append(line);
    }
    tr.append(rc, h('td', size(m.size)));
    const st = h('td');
    st.append(stateBadge(m.state));
    tr.append(st);
    return tr;
  });
  els.queueBody.replaceChildren(...rows);
  if (!messages.length) {
    const tr = h('tr');
    const td = h('td', 'No messages match.');
    td.colSpan = 7;
    tr.append(td);
    els.queueBody.append(tr);
  }
  if (focusedId) els.queueBody.querySelector<HTMLButtonElement>(`button[data-open="${CSS.escape(focusedId)}"]`)?.focus();
}

function renderDetail(m: Message): void {
  els.detailId.textContent = m.id;
  const meta: [string, string | HTMLElement][] = [
    ['State', stateBadge(m.state)],
    ['Token', m.token],
    ['Client id', m.clientId ?? '—'],
    ['From', m.from],
    ['Size', size(m.size)],
    ['Accepted', when(m.acceptedAt)],
  ];
  els.detailMeta.replaceChildren(
    ...meta.flatMap(([k, v]) => {
      const dd = h('dd');
      dd.append(v);
      return [h('dt', k), dd];
    }),
  );
  els.detailRcpts.replaceChildren(
    ...m.recipients.map((r, i) => {
      const box = h('section', undefined, 'recipient');
      const head = h('h4');
      head.id = `rcpt-${i}`;
      head.append(`${r.address} `, stateBadge(r.state));
      box.setAttribute('aria-labelledby', head.id);
      const facts = h('p', undefined, 'facts');
      facts.textContent = `Attempts: ${r.attempts} · next attempt: ${when(r.nextAttempt)} · last reply: ${r.lastReply || '—'}`;
      const table = h('table', undefined, 'results history');
      const cap = h('caption', `History of ${r.address}`, 'sr-only');
      const thead = h('thead');
      const hr = h('tr');
      for (const c of ['Time', 'State', 'Code', 'Reply']) {
        const th = h('th', c);
        th.scope = 'col';
        hr.append(th);
      }
      thead.append(hr);
      const tbody = h('tbody');
      for (const e of r.history ?? []) {
        const tr = h('tr');
        const st = h('td');
        st.append(stateBadge(e.state));
        tr.append(h('td', when(e.at)), st, h('td', e.smtpCode ? String(e.smtpCode) : '—'), h('td', e.reply || '—', 'reply'));
        tbody.append(tr);
      }
      if (!tbody.children.length) {
        const tr = h('tr');
        const td = h('td', 'No attempts yet.');
        td.colSpan = 4;
        tr.append(td);
        tbody.append(tr);
      }
      table.append(cap, thead, tbody);
      box.append(head, facts, table);
      return box;
    }),
  );
  els.detailHeaders.replaceChildren(
    ...(m.headers ?? []).map(([k, v]) => {
      const tr = h('tr');
      const th = h('th', k);
      th.scope = 'row';
      tr.append(th, h('td', v));
      return tr;
    }),
  );
  const held = m.state === 'held';
  const final = m.state === 'delivered' || m.state === 'failed';
  $<HTMLButtonElement>('act-hold').disabled = held || final;
  $<HTMLButtonElement>('act-release').disabled = !held;
  $<HTMLButtonElement>('act-retry').disabled = final;
  $<HTMLButtonElement>('act-cancel').disabled = final;
}

async function openMessage(id: string, focus: boolean): Promise<void> {
  if (!api) return;
  const changed = openId !== id;
  openId = id;
  if (changed) {
    els.actionStatus.textContent = '';
    els.actionError.textContent = '';
  }
  try {
    const m = await api.show(id);
    if (openId !== id) return;
    renderDetail(m);
    els.detail.hidden = false;
    if (focus) els.detailH.focus();
  } catch (e) {
    if (e instanceof AdminError && e.code === 'not_found') {
      els.actionError.textContent = `Message ${id} is no longer in the queue.`;
      return;
    }
    failed(e, els.actionError);
  }
}

/** Asks for confirmation in a modal dialog; resolves true on Confirm. */
function confirmDialog(text: string, yes: string): Promise<boolean> {
  els.confirmText.textContent = text;
  els.confirmYes.textContent = yes;
  return new Promise((resolve) => {
    els.confirm.addEventListener('close', () => resolve(els.confirm.returnValue === 'ok'), { once: true });
    els.confirm.returnValue = '';
    els.confirm.showModal();
    $<HTMLButtonElement>('confirm-no').focus();
  });
}

const DONE: Record<Action, string> = {
  retry: 'Retry scheduled now',
  hold: 'Held: not delivered until released',
  release: 'Released',
  cancel: 'Cancelled: failed with "cancelled by operator"',
  delete: 'Deleted',
};

async function act(action: Action): Promise<void> {
  if (!api || !openId) return;
  const id = openId;
  els.actionError.textContent = '';
  els.actionStatus.textContent = '';
  els.queueNotice.textContent = '';
  if (action === 'cancel' && !(await confirmDialog(`Cancel message ${id}? Its recipients that are not delivered yet fail for good with "cancelled by operator".`, 'Cancel the message'))) return;
  if (action === 'delete' && !(await confirmDialog(`Delete message ${id} from the spool? This cannot be undone.`, 'Delete the message'))) return;
  try {
    let m: Message | null;
    try {
      m = await api.act(id, action);
    } catch (e) {
      if (action === 'delete' && e instanceof AdminError && e.code === 'conflict') {
        if (!(await confirmDialog(`${e.message}. Delete message ${id} anyway?`, 'Delete anyway'))) return;
        m = await api.act(id, action, true);
      } else throw e;
    }
    els.actionStatus.textContent = `${DONE[action]} (${id}).`;
    if (action === 'delete') {
      openId = null;
      els.detail.hidden = true;
      els.queueNotice.textContent = `Deleted message ${id}.`;
    } else if (m) renderDetail(m);
    else await openMessage(id, false);
    await refreshQueue();
  } catch (e) {
    failed(e, els.actionError);
  }
}

async function refreshQueue(): Promise<void> {
  if (!api) return;
  try {
    const [page, summary] = await Promise.all([api.list({ ...filters, limit }), api.summary()]);
    renderQueue(page.messages);
    els.more.hidden = page.next === null;
    const c = summary.counts ?? {};
    els.summary.textContent = ['queued', 'held', 'deferred', 'delivered', 'failed']
      .map((k) => `${k} ${c[k] ?? 0}`)
      .join(' · ');
    els.queueStatus.textContent = `${page.messages.length} message${page.messages.length === 1 ? '' : 's'}, updated ${when(Date.now())}`;
    els.queueError.textContent = '';
  } catch (e) {
    failed(e, els.queueError);
  }
}

async function sampleMetrics(): Promise<void> {
  try {
    const resp = await fetch('/metrics', { cache: 'no-store', credentials: 'omit' });
    if (!resp.ok) throw new Error(`/metrics answered HTTP ${resp.status}`);
    history.add(Date.now(), parsePrometheus(await resp.text()));
    els.metricsError.textContent = '';
  } catch (e) {
    els.metricsError.textContent = `Metrics: ${e instanceof Error ? e.message : String(e)}`;
  }
  els.charts.replaceChildren(...SERIES.map((s) => renderChart(s.metric, s.label, history.points.get(s.metric) ?? [])));
}

async function poll(): Promise<void> {
  window.clearTimeout(timer);
  if (!api) return;
  if (polling) {
    // A poll is running with the old filters: one more right after it.
    pollAgain = true;
    return;
  }
  polling = true;
  try {
    await Promise.all([refreshQueue(), sampleMetrics(), openId ? openMessage(openId, false) : Promise.resolve()]);
  } finally {
    polling = false;
  }
  if (pollAgain) {
    pollAgain = false;
    return poll();
  }
  if (api && els.live.checked) timer = window.setTimeout(() => void poll(), POLL_MS);
}

els.signin.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const secret = els.token.value.trim();
  if (!secret) {
    showAuthError('Enter an admin token (postwire admin-token add NAME prints one).');
    els.token.focus();
    return;
  }
  void signIn(secret, false);
});
els.signout.addEventListener('click', () => {
  signedOut();
  els.token.focus();
});
els.filters.addEventListener('submit', (ev) => {
  ev.preventDefault();
  filters = filtersFromForm();
  limit = PAGE;
  els.queueStatus.textContent = 'Loading…';
  void poll();
});
els.clear.addEventListener('click', () => {
  els.filters.reset();
  filters = {};
  limit = PAGE;
  void poll();
});
els.live.addEventListener('change', () => {
  if (els.live.checked) void poll();
  else window.clearTimeout(timer);
});
els.more.addEventListener('click', () => {
  limit += PAGE;
  void poll();
});
els.queueBody.addEventListener('click', (ev) => {
  const b = (ev.target as HTMLElement).closest<HTMLButtonElement>('button[data-open]');
  if (b?.dataset.open) void openMessage(b.dataset.open, true);
});
els.close.addEventListener('click', () => {
  const id = openId;
  openId = null;
  els.detail.hidden = true;
  if (id) els.queueBody.querySelector<HTMLButtonElement>(`button[data-open="${CSS.escape(id)}"]`)?.focus();
});
for (const b of document.querySelectorAll<HTMLButtonElement>('#detail button[data-action]')) {
  b.addEventListener('click', () => void act(b.dataset.action as Action));
}

const remembered = sessionStorage.getItem(STORAGE_KEY);
if (remembered) void signIn(remembered, true);
