/**
 * Bulk mail merge: a CSV of recipients, one personalised message per row
 * made from the composer's From, Subject, Message and Attachments with
 * `{{column}}` placeholders filled in. Before sending: the CSV's first rows
 * as a table, the message exactly as row 1 will receive it, and "Send a test
 * to me" (row 1's message to From only). Then the messages go through the
 * relay with its window kept full, a progress bar, and a results table (one
 * row per CSV row, updated as delivery events arrive) that can be downloaded
 * as CSV. Stop ends the run cleanly: no new message is submitted, those in
 * flight get their answer, and what the relay accepted stays accepted.
 */

import { parseAddress, quoteName } from './address';
import { describeCode } from './codes';
import type { Composer } from './compose';
import { parseCsv, toCsv, type CsvTable } from './csv';
import { byId, download, h, randomId, say } from './dom';
import { buildEml, describeError, envelopeOf } from './engine';
import { previewDocument } from './preview';
import { asRelayError, RelayError, type Envelope } from './relay';
import type { Session } from './session';
import { assembleSpec, type ComposerState, type MessageSpec } from './spec';
import { checkTemplate, merge } from './template';

interface Result {
  row: number;
  rcpt: string;
  id: string;
  status: string;
  detail: string;
  /** The relay accepted or refused it (or it never left the page). */
  answered: boolean;
  cells: { status: HTMLElement; detail: HTMLElement };
}

/** Rows of the CSV shown before sending. */
const SHOWN_ROWS = 5;

/** The recipient of a row (`name` column as display name), or why there is none. */
function rowRecipient(row: Record<string, string>, col: string, nameCol: string | undefined): { ok: true; rcpt: string } | { ok: false; rcpt: string; error: string } {
  const addr = parseAddress(row[col] ?? '');
  if (!addr.ok) return { ok: false, rcpt: row[col] ?? '', error: `"${row[col] ?? ''}" is not a valid address: ${addr.error}` };
  return { ok: true, rcpt: nameCol && row[nameCol] && !addr.name ? `${quoteName(row[nameCol])} <${addr.email}>` : addr.text };
}

/** The message of one row: the composer's, addressed to the row's recipient, placeholders filled. */
function rowSpec(base: ComposerState, row: Record<string, string>, rcpt: string): MessageSpec {
  return assembleSpec({
    ...base,
    to: [rcpt],
    cc: [],
    bcc: [],
    subject: merge(base.subject, row, 'The Subject'),
    html: merge(base.html, row, 'The Message', true),
  });
}

/** The Bulk panel. */
export class Bulk {
  private table: CsvTable | null = null;
  private results: Result[] = [];
  private running = false;
  private stopRequested = false;
  private stopBtn = byId<HTMLButtonElement>('bulk-stop');
  private testBtn = byId<HTMLButtonElement>('bulk-test');
  private fileInput = byId<HTMLInputElement>('bulk-csv');
  private column = byId<HTMLSelectElement>('bulk-email-col');
  private sendBtn = byId<HTMLButtonElement>('bulk-send');
  private info = byId('bulk-info');
  private error = byId('bulk-error');

  constructor(private session: Session, private composer: Composer) {
    this.fileInput.addEventListener('change', () => {
      const f = this.fileInput.files?.[0];
      if (f) void f.text().then((t) => this.load(t, f.name));
    });
    this.sendBtn.addEventListener('click', () => void this.run());
    this.stopBtn.addEventListener('click', () => this.stop());
    this.testBtn.addEventListener('click', () => void this.sendTest());
    this.column.addEventListener('change', () => this.showSample());
    composer.onChange(() => this.showSample());
    byId('tab-bulk').addEventListener('click', () => this.showSample());
    byId('bulk-download').addEventListener('click', () => this.downloadResults());
  }

  private nameColumn(): string | undefined {
    return this.table?.headers.find((c) => /^(full[ _]?)?name$/i.test(c) && c !== this.column.value);
  }

  /** The first rows of the CSV as a table. */
  private showRows(name: string): void {
    const t = this.table;
    const box = byId('bulk-preview');
    if (!t) {
      box.hidden = true;
      return;
    }
    const table = byId<HTMLTableElement>('bulk-rows');
    const shown = t.rows.slice(0, SHOWN_ROWS);
    byId('bulk-rows-caption').textContent =
      t.rows.length > shown.length ? `${name}: the first ${shown.length} of ${t.rows.length} rows` : `${name}: all ${t.rows.length} rows`;
    table.tHead?.replaceChildren(h('tr', {}, h('th', { scope: 'col', text: 'Line' }), ...t.headers.map((c) => h('th', { scope: 'col', text: c }))));
    table.tBodies[0].replaceChildren(
      ...shown.map((r, i) => h('tr', {}, h('td', { text: String(t.lines[i]) }), ...t.headers.map((c) => h('td', { text: r[c] ?? '' })))),
    );
    box.hidden = false;
  }

  /**
   * The message as row 1 will receive it: recipient, subject and body with
   * the fields filled in (before From is filled, with a stand-in sender).
   */
  showSample(): void {
    const t = this.table;
    const err = byId('bulk-sample-error');
    const frame = byId<HTMLIFrameElement>('bulk-sample-frame');
    if (!t || !t.rows.length) return;
    const row = t.rows[0];
    let spec: MessageSpec;
    let rcpt: string;
    try {
      const base = this.composer.state(false, 'you@example.invalid', false);
      checkTemplate(base.subject, t.headers, 'The Subject');
      checkTemplate(base.html, t.headers, 'The Message');
      const r = rowRecipient(row, this.column.value, this.nameColumn());
      if (!r.ok) throw new Error(`Row 1 (line ${t.lines[0]}): ${r.error}`);
      rcpt = r.rcpt;
      spec = rowSpec(base, row, rcpt);
    } catch (e) {
      err.textContent = e instanceof Error ? e.message : String(e);
      return;
    }
    err.textContent = '';
    byId('bulk-sample-to').textContent = rcpt;
    byId('bulk-sample-subject').textContent = spec.subject ?? '';
    frame.srcdoc = previewDocument(spec);
  }

  /** Sends row 1's message to From alone ("[Test]" before the subject). */
  async sendTest(): Promise<void> {
    const t = this.table;
    const status = byId('bulk-test-status');
    if (!t || !t.rows.length) return;
    let spec: MessageSpec;
    let me: string;
    try {
      const base = this.composer.state(false);
      checkTemplate(base.subject, t.headers, 'The Subject');
      checkTemplate(base.html, t.headers, 'The Message');
      me = parseAddress(base.from).ok ? base.from : '';
      const s = rowSpec(base, t.rows[0], me);
      spec = { ...s, subject: `[Test] ${s.subject ?? ''}` };
    } catch (e) {
      say(status, `No test sent: ${e instanceof Error ? e.message : String(e)}`, 'error');
      return;
    }
    this.testBtn.disabled = true;
    try {
      const bytes = buildEml(spec);
      const envelope = envelopeOf(spec);
      say(status, `Sending a test of row 1 to ${me}…`);
      const conn = await this.session.connection();
      await conn.submit(`bulktest-${randomId()}`, bytes, envelope, {
        onEvent: (ev) => {
          if (ev.type === 'delivered') say(status, `Test delivered to ${ev.rcpt}: ${ev.response}`, 'ok');
          else if (ev.type === 'failed') say(status, `Test to ${ev.rcpt} failed: ${ev.reason}`, 'error');
          else say(status, `Test to ${ev.rcpt} deferred: ${ev.reason}`);
        },
      });
      if (!/^Test (delivered|to .* failed)/.test(status.textContent ?? '')) say(status, `Test accepted by the relay for ${me}; delivering…`, 'ok');
    } catch (e) {
      const err = asRelayError(e);
      say(status, `Test not sent: ${describeCode(err.code, err.message)}`, 'error');
    } finally {
      this.testBtn.disabled = false;
    }
  }

  /** Ends a running bulk: nothing more is submitted; what was accepted stays accepted. */
  stop(): void {
    if (!this.running) return;
    this.stopRequested = true;
    this.stopBtn.disabled = true;
    say(this.info, 'Stopping: no more messages are submitted; those already on their way get their answer…');
  }

  /** Reads a CSV. */
  load(text: string, name: string): void {
    this.error.textContent = '';
    try {
      this.table = parseCsv(text);
    } catch (e) {
      this.table = null;
      this.sendBtn.disabled = true;
      this.testBtn.disabled = true;
      this.showRows(name);
      this.error.textContent = `${name}: ${e instanceof Error ? e.message : String(e)}`;
      return;
    }
    const t = this.table;
    const guess =
      t.headers.find((c) => /^e-?mail$|^to$|^address$/i.test(c)) ??
      t.headers.find((c) => t.rows.length > 0 && t.rows.every((r) => r[c].includes('@'))) ??
      t.headers[0];
    this.column.replaceChildren(...t.headers.map((c) => h('option', { value: c, text: c, selected: c === guess })));
    this.sendBtn.disabled = t.rows.length === 0;
    this.testBtn.disabled = t.rows.length === 0;
    say(this.info, `${name}: ${t.rows.length} recipients; columns: ${t.headers.join(', ')}`);
    this.showRows(name);
    this.showSample();
  }

  private state(): ComposerState {
    return this.composer.state(false);
  }

  /** Sends one message per row. */
  async run(): Promise<void> {
    if (this.running || !this.table) return;
    const t = this.table;
    this.error.textContent = '';
    let base: ComposerState;
    try {
      base = this.state();
      checkTemplate(base.subject, t.headers, 'The Subject');
      checkTemplate(base.html, t.headers, 'The Message');
    } catch (e) {
      this.error.textContent = e instanceof Error ? e.message : String(e);
      return;
    }
    const col = this.column.value;
    const nameCol = this.nameColumn();
    const progress = byId<HTMLProgressElement>('bulk-progress');
    const count = byId('bulk-count');
    const body = byId<HTMLTableElement>('bulk-table').tBodies[0];
    body.replaceChildren();
    this.results = [];
    progress.max = t.rows.length;
    progress.value = 0;
    this.running = true;
    this.stopRequested = false;
    this.sendBtn.disabled = true;
    this.stopBtn.disabled = false;
    byId<HTMLButtonElement>('bulk-download').disabled = true;
    // Counters kept as rows change, so that a bulk of thousands stays cheap.
    let answered = 0;
    const counts = new Map<string, number>();
    const n = (k: string) => counts.get(k) ?? 0;
    const tally = () => {
      const stopped = n('stopped') ? `, ${n('stopped')} stopped` : '';
      count.textContent = `${answered} of ${t.rows.length} answered: ${n('accepted') + n('delivered') + n('deferred') + n('failed')} accepted, ${n('delivered')} delivered, ${n('rejected') + n('error')} not sent, ${n('failed')} failed${stopped}`;
      progress.value = answered;
    };
    const set = (r: Result, status: string, detail: string) => {
      counts.set(r.status, n(r.status) - 1);
      counts.set(status, n(status) + 1);
      r.status = status;
      r.detail = detail;
      r.cells.status.textContent = status;
      r.cells.status.dataset.state = status;
      r.cells.detail.textContent = detail;
    };
    const answer = (r: Result) => {
      if (r.answered) return;
      r.answered = true;
      answered++;
    };
    const byId_ = new Map<string, Result>();
    const rows = t.rows;
    const built = function* (this: Bulk): Generator<{ message: Uint8Array; envelope: Envelope; id: string }> {
      for (let i = 0; i < rows.length; i++) {
        if (this.stopRequested) {
          // Stopped: the rows not submitted are listed as such, and the run ends.
          for (let k = i; k < rows.length; k++) {
            const why = 'not sent: the bulk was stopped';
            const status = h('td', { class: 'state', 'data-state': 'stopped', text: 'stopped' });
            const detail = h('td', { text: why });
            body.append(h('tr', {}, h('td', { text: String(t.lines[k]) }), h('td', { text: rows[k][col] ?? '' }), status, detail));
            this.results.push({ row: t.lines[k], rcpt: rows[k][col] ?? '', id: '', status: 'stopped', detail: why, answered: true, cells: { status, detail } });
            counts.set('stopped', n('stopped') + 1);
            answered++;
          }
          tally();
          return;
        }
        const row = rows[i];
        const who = rowRecipient(row, col, nameCol);
        const rcpt = who.rcpt;
        const status = h('td', { class: 'state', text: 'waiting' });
        const detail = h('td', {});
        body.append(h('tr', {}, h('td', { text: String(t.lines[i]) }), h('td', { text: rcpt }), status, detail));
        const r: Result = { row: t.lines[i], rcpt, id: '', status: 'waiting', detail: '', answered: false, cells: { status, detail } };
        counts.set('waiting', n('waiting') + 1);
        this.results.push(r);
        if (!who.ok) {
          set(r, 'error', `line ${t.lines[i]}: ${who.error}`);
          answer(r);
          tally();
          continue;
        }
        try {
          const spec = rowSpec(base, row, rcpt);
          const message = buildEml(spec);
          const envelope = envelopeOf(spec);
          r.id = `bulk-${runId}-${i + 1}`;
          byId_.set(r.id, r);
          set(r, 'sending', '');
          yield { message, envelope, id: r.id };
        } catch (e) {
          set(r, 'error', `cannot build: ${describeError(e)}`);
          answer(r);
          tally();
        }
      }
    };
    const runId = randomId();
    try {
      const conn = await this.session.connection();
      const results = await conn.bulk(built.call(this), {
        onAnswer: (id, err, duplicate) => {
          const r = byId_.get(id);
          if (!r || r.answered) return;
          answer(r);
          // A delivery event may have come first: keep the later state.
          if (err) set(r, 'rejected', describeCode(err.code, err.message));
          else if (r.status === 'sending') set(r, 'accepted', duplicate ? 'already accepted before (not sent twice)' : 'stored by the relay');
          tally();
        },
        onEvent: (ev) => {
          const r = byId_.get(ev.id);
          if (!r) return;
          if (ev.type === 'delivered') set(r, 'delivered', ev.response);
          else if (ev.type === 'failed') set(r, 'failed', ev.reason);
          else set(r, 'deferred', ev.reason);
          tally();
        },
      });
      // Anything the client could not submit at all (connection lost for good).
      for (const res of results) {
        const r = byId_.get(res.id);
        if (r && !res.ok && !r.answered) {
          const err = res.error ?? new RelayError('connection_closed', 'not answered');
          answer(r);
          set(r, 'rejected', describeCode(err.code, err.message));
        }
      }
    } catch (e) {
      const err = asRelayError(e);
      this.error.textContent = `Bulk stopped: ${describeCode(err.code, err.message)}`;
      for (const r of this.results) {
        if (!r.answered) {
          answer(r);
          set(r, 'error', describeCode(err.code, err.message));
        }
      }
    }
    this.running = false;
    this.sendBtn.disabled = false;
    this.stopBtn.disabled = true;
    byId<HTMLButtonElement>('bulk-download').disabled = false;
    tally();
    if (this.stopRequested) {
      const sent = this.results.filter((r) => r.id && ['accepted', 'delivered', 'deferred', 'failed'].includes(r.status)).length;
      const notSent = this.results.length - sent;
      say(this.info, `Stopped: ${sent} accepted by the relay (they stay accepted and are delivered), ${notSent} not sent.`);
    }
  }

  /** The results as CSV. */
  resultsCsv(): string {
    return toCsv(['row', 'recipient', 'id', 'status', 'detail'], this.results.map((r) => [String(r.row), r.rcpt, r.id, r.status, r.detail]));
  }

  private downloadResults(): void {
    download('postwire-bulk-results.csv', this.resultsCsv(), 'text/csv');
  }
}
