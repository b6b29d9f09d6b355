/**
 * Bulk mail merge: a CSV of recipients, one personalised message per row
 * made from the composer's From, Subject, Message and Attachments with
 * `{{column}}` placeholders filled in; the messages go through the relay with
 * its window kept full, a progress bar, and a results table (one row per CSV
 * row, updated as delivery events arrive) that can be downloaded as CSV.
 */

import { parseAddress, quoteName } from './address';
import { describeCode } from './codes';
import type { Composer } from './compose';
import { parseCsv, toCsv, type CsvTable } from './csv';
import { byId, download, h, randomId, say } from './dom';
import { buildEml, describeError, envelopeOf } from './engine';
import { asRelayError, RelayError, type Envelope } from './relay';
import type { Session } from './session';
import { assembleSpec, type ComposerState } from './spec';
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

/** The Bulk panel. */
export class Bulk {
  private table: CsvTable | null = null;
  private results: Result[] = [];
  private running = false;
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
    byId('bulk-download').addEventListener('click', () => this.downloadResults());
  }

  /** Reads a CSV. */
  load(text: string, name: string): void {
    this.error.textContent = '';
    try {
      this.table = parseCsv(text);
    } catch (e) {
      this.table = null;
      this.sendBtn.disabled = true;
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
    say(this.info, `${name}: ${t.rows.length} recipients; columns: ${t.headers.join(', ')}`);
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
    const nameCol = t.headers.find((c) => /^(full[ _]?)?name$/i.test(c) && c !== col);
    const progress = byId<HTMLProgressElement>('bulk-progress');
    const count = byId('bulk-count');
    const body = byId<HTMLTableElement>('bulk-table').tBodies[0];
    body.replaceChildren();
    this.results = [];
    progress.max = t.rows.length;
    progress.value = 0;
    this.running = true;
    this.sendBtn.disabled = true;
    byId<HTMLButtonElement>('bulk-download').disabled = true;
    // Counters kept as rows change, so that a bulk of thousands stays cheap.
    let answered = 0;
    const counts = new Map<string, number>();
    const n = (k: string) => counts.get(k) ?? 0;
    const tally = () => {
      count.textContent = `${answered} of ${t.rows.length} answered: ${n('accepted') + n('delivered') + n('deferred') + n('failed')} accepted, ${n('delivered')} delivered, ${n('rejected') + n('error')} not sent, ${n('failed')} failed`;
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
        const row = rows[i];
        const addr = parseAddress(row[col] ?? '');
        const rcpt = addr.ok ? (nameCol && row[nameCol] && !addr.name ? `${quoteName(row[nameCol])} <${addr.email}>` : addr.text) : row[col] ?? '';
        const status = h('td', { class: 'state', text: 'waiting' });
        const detail = h('td', {});
        body.append(h('tr', {}, h('td', { text: String(t.lines[i]) }), h('td', { text: rcpt }), status, detail));
        const r: Result = { row: t.lines[i], rcpt, id: '', status: 'waiting', detail: '', answered: false, cells: { status, detail } };
        counts.set('waiting', n('waiting') + 1);
        this.results.push(r);
        if (!addr.ok) {
          set(r, 'error', `line ${t.lines[i]}: "${row[col]}" is not a valid address: ${addr.error}`);
          answer(r);
          tally();
          continue;
        }
        try {
          const spec = assembleSpec({
            ...base,
            to: [rcpt],
            cc: [],
            bcc: [],
            subject: merge(base.subject, row, 'The Subject'),
            html: merge(base.html, row, 'The Message', true),
          });
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
    byId<HTMLButtonElement>('bulk-download').disabled = false;
    tally();
  }

  /** The results as CSV. */
  resultsCsv(): string {
    return toCsv(['row', 'recipient', 'id', 'status', 'detail'], this.results.map((r) => [String(r.row), r.rcpt, r.id, r.status, r.detail]));
  }

  private downloadResults(): void {
    download('postwire-bulk-results.csv', this.resultsCsv(), 'text/csv');
  }
}
