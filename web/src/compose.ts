/**
 * The composer: From, To/Cc/Bcc chips, Subject, the editor, attachments, the
 * meeting-request panel and the TNEF switch; the live preview (rendered and
 * raw, with the size); and Send, with upload progress and a status per
 * recipient as the relay's events arrive.
 */

import { parseAddress } from './address';
import { Attachments } from './attachments';
import { CalendarPanel } from './calendar-panel';
import { CalendarError } from './calendar';
import { ChipInput } from './chips';
import { describeCode } from './codes';
import { byId, download, formatSize, h, randomId, say } from './dom';
import { deleteDraft, draftKey, DRAFT_ATTACHMENTS_LIMIT, isEmptyDraft, keepAttachments, loadDraft, saveDraft, type DraftRecord } from './drafts';
import { Editor } from './editor';
import { buildEml, describeError, envelopeOf } from './engine';
import { htmlToText } from './html-text';
import { previewDocument, rawText } from './preview';
import { asRelayError, type DeliveryEvent } from './relay';
import type { Session } from './session';
import { assembleSpec, contentBase64, isBlankHtml, type ComposerState, type MessageSpec, type SpecAttachment } from './spec';

/** The sender the preview uses while From is empty (never sent). */
const PLACEHOLDER_FROM = 'you@example.invalid';

/** A field that stops the message from being built, named for the person. */
export class ComposeError extends Error {
  /** The control to focus. */
  readonly control: HTMLElement | null;
  constructor(message: string, control: HTMLElement | null) {
    super(message);
    this.name = 'ComposeError';
    this.control = control;
  }
}

/** What a reply or forward puts into the composer. */
export interface Draft {
  to?: string[];
  cc?: string[];
  subject?: string;
  html?: string;
  attachments?: SpecAttachment[];
  inline?: SpecAttachment[];
  inReplyTo?: string;
  references?: string[];
}

/** The composer and its preview. */
export class Composer {
  readonly from = byId<HTMLInputElement>('from');
  readonly to = new ChipInput(byId<HTMLInputElement>('to'), 'To');
  readonly cc = new ChipInput(byId<HTMLInputElement>('cc'), 'Cc');
  readonly bcc = new ChipInput(byId<HTMLInputElement>('bcc'), 'Bcc');
  readonly subject = byId<HTMLInputElement>('subject');
  readonly editor = new Editor(byId('editor'), byId('toolbar'));
  readonly attachments = new Attachments(
    byId<HTMLInputElement>('attachments'),
    byId('compose'),
    byId('attachment-list'),
    byId('attachment-error'),
    () => this.session.maxSize,
  );
  readonly calendar = new CalendarPanel({ to: this.to, cc: this.cc, from: this.from });
  readonly tnef = byId<HTMLInputElement>('tnef');
  private threading: { inReplyTo?: string; references?: string[] } = {};
  private lastEml: Uint8Array | null = null;
  private previewTimer = 0;
  private sending = false;
  /** Bytes of the message as it will be sent, from the last preview; null when it cannot be built. */
  private lastSize: number | null = null;
  private draftTimer = 0;
  private changeListeners: (() => void)[] = [];
  /** Drafts are written one after the other, in this chain. */
  private draftChain: Promise<void> = Promise.resolve();
  /** The content last saved (or 'empty' once no draft is kept), to skip writing the same again. */
  private savedKey: string | null = null;
  /** The content the relay accepted: not kept as a draft. */
  private sentKey: string | null = null;

  constructor(private session: Session) {
    const later = () => {
      this.schedulePreview();
      this.scheduleDraft();
      for (const l of this.changeListeners) l();
    };
    for (const c of [this.to, this.cc, this.bcc, this.calendar.attendees]) c.onChange(later);
    this.editor.onChange(later);
    this.attachments.onChange(later);
    byId('compose').addEventListener('input', later);
    byId('compose').addEventListener('change', later);
    this.from.addEventListener('blur', () => this.checkFrom());
    // Ctrl+Enter (Cmd+Enter on a Mac) sends from anywhere in the composer.
    byId('panel-compose').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !e.altKey) {
        e.preventDefault();
        void this.send();
      }
    });
    // A plain Enter in a one-line field does not send (as in mail clients):
    // in From it moves on to To, in Subject to the message.
    byId('compose').addEventListener('keydown', (e) => {
      const t = e.target;
      if (e.key !== 'Enter' || e.ctrlKey || e.metaKey || e.defaultPrevented || !(t instanceof HTMLInputElement)) return;
      if (t.type === 'file') return;
      e.preventDefault();
      if (t === this.from) this.to.input.focus();
      else if (t === this.subject) this.editor.area.focus();
    });
    byId<HTMLFormElement>('compose').addEventListener('submit', (e) => {
      e.preventDefault();
      void this.send();
    });
    byId('new-message').addEventListener('click', () => this.load({}));
    const rendered = byId('show-rendered');
    const raw = byId('show-raw');
    const show = (r: boolean) => {
      rendered.setAttribute('aria-pressed', String(!r));
      raw.setAttribute('aria-pressed', String(r));
      byId('preview-frame').hidden = r;
      byId('raw-eml').hidden = !r;
    };
    rendered.addEventListener('click', () => show(false));
    raw.addEventListener('click', () => show(true));
    byId('download-eml').addEventListener('click', () => {
      this.updatePreview();
      if (this.lastEml) download(`${(this.subject.value || 'message').replace(/[^\w.-]+/g, '_').slice(0, 60)}.eml`, this.lastEml, 'message/rfc822');
    });
    session.onLimit(() => this.checkLimit());
    byId('discard-draft').addEventListener('click', () => void this.discardDraft());
    // A closed tab or a reload keeps the last keystrokes too.
    window.addEventListener('pagehide', () => this.saveDraftNow());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'hidden') this.saveDraftNow();
    });
    void this.restoreDraft();
    // The browser may put typed values back (reload, back/forward) without
    // input events; the preview follows the fields whenever the page shows.
    window.addEventListener('pageshow', () => this.updatePreview());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.updatePreview();
    });
    this.schedulePreview();
  }

  private checkFrom(): string | null {
    const err = byId('from-error');
    const v = this.from.value.trim();
    if (!v) {
      err.textContent = '';
      this.from.removeAttribute('aria-invalid');
      return null;
    }
    const p = parseAddress(v);
    err.textContent = p.ok ? '' : `From: ${p.error}`;
    this.from.setAttribute('aria-invalid', String(!p.ok));
    return p.ok ? p.text : null;
  }

  /**
   * The composer's fields; throws ComposeError naming the first problem.
   * With `placeholderFrom`, an empty From is replaced by it (preview only);
   * with `commit` false, addresses being typed are read, not made chips.
   */
  state(requireRecipients: boolean, placeholderFrom?: string, commit = true): ComposerState {
    const fromText = this.from.value.trim();
    if (placeholderFrom && !fromText) return this.fields(requireRecipients, placeholderFrom, commit);
    if (!fromText) throw new ComposeError('From is empty: type your address, e.g. Ann <ann@example.com>', this.from);
    const from = this.checkFrom();
    if (!from) throw new ComposeError(`From is not a valid address: ${byId('from-error').textContent?.replace(/^From: /, '')}`, this.from);
    return this.fields(requireRecipients, from, commit);
  }

  private fields(requireRecipients: boolean, from: string, commit: boolean): ComposerState {
    for (const c of [this.to, this.cc, this.bcc]) {
      const bad = c.invalid(commit);
      if (bad.length) throw new ComposeError(`${c.label}: "${bad[0].input}" is not a valid address: ${bad[0].error}`, c.input);
    }
    const to = this.to.values(commit);
    const cc = this.cc.values(commit);
    const bcc = this.bcc.values(commit);
    if (requireRecipients && to.length + cc.length + bcc.length === 0) {
      throw new ComposeError('Add at least one recipient in To, Cc or Bcc', this.to.input);
    }
    const html = this.editor.html();
    let calendar;
    try {
      calendar = this.calendar.value(from, this.subject.value, htmlToText(html).trim(), commit);
    } catch (e) {
      if (e instanceof CalendarError) {
        const id = { start: 'start', end: 'end', timeZone: 'tz', attendees: 'attendees', organizer: 'from' }[e.field] ?? 'meeting';
        throw new ComposeError(e.message, document.getElementById(id));
      }
      throw e;
    }
    return {
      from,
      to,
      cc,
      bcc,
      subject: this.subject.value,
      html,
      attachments: [...this.attachments.parts(), ...this.editor.inlineParts()],
      calendar,
      tnef: this.tnef.checked,
      ...this.threading,
    };
  }

  /** The spec of the message as it stands. */
  spec(requireRecipients = true, placeholderFrom?: string, commit = true): MessageSpec {
    return assembleSpec(this.state(requireRecipients, placeholderFrom, commit));
  }

  private schedulePreview(): void {
    clearTimeout(this.previewTimer);
    this.previewTimer = window.setTimeout(() => this.updatePreview(), 250);
  }

  /**
   * Rebuilds the preview now, from the fields as they are. Every path ends
   * with the preview, its error line and the size describing the same
   * moment: nothing of an earlier state is left behind.
   */
  updatePreview(): void {
    clearTimeout(this.previewTimer);
    const errEl = byId('preview-error');
    const frame = byId<HTMLIFrameElement>('preview-frame');
    const size = byId('eml-size');
    const raw = byId<HTMLTextAreaElement>('raw-eml');
    const fromEmpty = !this.from.value.trim();
    // How many times the preview was rebuilt (tests wait for it).
    size.dataset.builds = String(Number(size.dataset.builds ?? 0) + 1);
    let spec: MessageSpec;
    try {
      // Without From the message cannot be built as it will be sent; its
      // body and size are still shown, with a stand-in sender.
      spec = this.spec(false, fromEmpty ? PLACEHOLDER_FROM : undefined, false);
    } catch (e) {
      errEl.textContent = e instanceof Error ? e.message : String(e);
      this.lastEml = null;
      return;
    }
    try {
      const bytes = buildEml(spec);
      this.lastSize = bytes.length;
      this.checkLimit();
      frame.srcdoc = previewDocument(spec);
      size.textContent = `Size: ${formatSize(bytes.length)} (${bytes.length} bytes)`;
      if (fromEmpty) {
        this.lastEml = null;
        raw.value = '';
        errEl.textContent = 'Fill in From to see the message as it will be sent.';
      } else {
        this.lastEml = bytes;
        raw.value = rawText(bytes);
        errEl.textContent = '';
      }
    } catch (e) {
      this.lastEml = null;
      errEl.textContent = `Cannot build the message: ${describeError(e)}`;
    }
  }

  /**
   * Compares the message as it will be sent with the token's limit: over
   * it, Send is disabled and says why (the button is described by the
   * reason); under it, the room left is shown.
   */
  private checkLimit(): void {
    const max = this.session.maxSize;
    const reason = byId('size-limit');
    const allowed = byId('size-allowed');
    const over = max > 0 && this.lastSize !== null && this.lastSize > max;
    allowed.textContent = max > 0 ? `This token may send up to ${formatSize(max)} a message.` : '';
    reason.textContent = over
      ? `Too large to send: the message is ${formatSize(this.lastSize ?? 0)} as sent (attachments grow by about a third when encoded for mail), over this token's limit of ${formatSize(max)}. Remove or shrink attachments.`
      : '';
    byId<HTMLButtonElement>('send').disabled = over || this.sending;
  }

  /** Builds and sends the message, reporting each step and each recipient. */
  async send(): Promise<void> {
    if (this.sending) return;
    const status = byId('send-status');
    const progress = byId<HTMLProgressElement>('send-progress');
    byId<HTMLTableElement>('rcpt-table').hidden = true;
    progress.value = 0;
    let spec: MessageSpec;
    try {
      spec = this.spec(true);
    } catch (e) {
      say(status, e instanceof Error ? e.message : String(e), 'error');
      if (e instanceof ComposeError) e.control?.focus();
      return;
    }
    let bytes: Uint8Array;
    let envelope;
    try {
      bytes = buildEml(spec);
      envelope = envelopeOf(spec);
    } catch (e) {
      say(status, `Cannot build the message: ${describeError(e)}`, 'error');
      return;
    }
    this.lastSize = bytes.length;
    this.checkLimit();
    const max = this.session.maxSize;
    if (max > 0 && bytes.length > max) {
      say(status, byId('size-limit').textContent ?? 'The message is too large for this token.', 'error');
      return;
    }
    this.sending = true;
    const sendBtn = byId<HTMLButtonElement>('send');
    sendBtn.disabled = true;
    progress.value = 0;
    const table = new RecipientTable(byId<HTMLTableElement>('rcpt-table'), envelope.rcptTo);
    try {
      say(status, 'Connecting to the relay…');
      const conn = await this.session.connection();
      say(status, `Uploading ${formatSize(bytes.length)}…`);
      const id = `web-${randomId()}`;
      const { duplicate: dup } = await conn.submit(id, bytes, envelope, {
        onUpload: (f) => {
          progress.value = f;
        },
        onEvent: (ev) => table.event(ev),
      });
      progress.value = 1;
      table.accepted();
      // Accepted is durable: the draft of this message is no longer needed.
      this.sentKey = draftKey(this.draft());
      void this.saveDraftNow();
      say(status, dup ? 'The relay already had this message; it will not be sent twice.' : 'Accepted by the relay (stored safely). Delivering…', 'ok');
      table.onAllSettled = (counts) =>
        say(status, `Done: ${counts.delivered} delivered, ${counts.failed} failed.`, counts.failed ? 'error' : 'ok');
    } catch (e) {
      const err = asRelayError(e);
      table.rejected(describeCode(err.code, err.message));
      say(status, `Not sent: ${describeCode(err.code, err.message)}`, 'error');
    } finally {
      this.sending = false;
      sendBtn.disabled = false;
      this.updatePreview();
      this.checkLimit();
    }
  }

  /** Called on every change of the composer's fields. */
  onChange(cb: () => void): void {
    this.changeListeners.push(cb);
  }

  /** The composer's content as a draft record (attachments up to the draft limit). */
  draft(): DraftRecord {
    const texts = (c: ChipInput) => [
      ...c.entries().map((p) => (p.ok ? p.text : p.input)),
      ...(c.input.value.trim() ? [c.input.value.trim()] : []),
    ];
    const { kept, skipped } = keepAttachments(this.attachments.parts());
    const d: DraftRecord = {
      version: 1,
      savedAt: Date.now(),
      from: this.from.value,
      to: texts(this.to),
      cc: texts(this.cc),
      bcc: texts(this.bcc),
      subject: this.subject.value,
      html: this.editor.html(),
      inline: this.editor.inlineParts(),
      attachments: kept,
      skipped,
      meeting: this.calendar.snapshot(),
      tnef: this.tnef.checked,
    };
    if (this.threading.inReplyTo) d.inReplyTo = this.threading.inReplyTo;
    if (this.threading.references?.length) d.references = [...this.threading.references];
    return d;
  }

  private scheduleDraft(): void {
    clearTimeout(this.draftTimer);
    byId('draft-status').dataset.state = 'pending';
    this.draftTimer = window.setTimeout(() => this.saveDraftNow(), 400);
  }

  /** Writes the draft now (or deletes it when there is nothing, or only what was sent). */
  saveDraftNow(): Promise<void> {
    clearTimeout(this.draftTimer);
    const status = byId('draft-status');
    const d = this.draft();
    const key = draftKey(d);
    const empty = isEmptyDraft(d, isBlankHtml) || key === this.sentKey;
    const run = async () => {
      if (empty) {
        if (this.savedKey !== 'empty') {
          await deleteDraft();
          this.savedKey = 'empty';
          if (key === this.sentKey) say(status, 'Sent: the draft was deleted.');
        }
      } else if (key !== this.savedKey) {
        await saveDraft(d);
        this.savedKey = key;
        const note = d.skipped.length
          ? ` (without ${d.skipped.join(', ')}: a draft keeps attachments up to ${formatSize(DRAFT_ATTACHMENTS_LIMIT)})`
          : '';
        say(status, `Draft saved at ${new Date(d.savedAt).toLocaleTimeString()}${note}`);
      }
      status.dataset.state = 'saved';
    };
    this.draftChain = this.draftChain.then(run).catch((e: unknown) => {
      status.dataset.state = 'error';
      say(status, `The draft could not be saved in this browser: ${e instanceof Error ? e.message : String(e)}`, 'error');
    });
    return this.draftChain;
  }

  /** Puts back the draft of an earlier visit, unless the composer already has content. */
  private async restoreDraft(): Promise<void> {
    let d: DraftRecord | null = null;
    try {
      d = await loadDraft();
    } catch {
      // No IndexedDB (private mode of some browsers): the page works without drafts.
    }
    byId('draft-status').dataset.restore = 'done';
    if (!d || !isEmptyDraft(this.draft(), isBlankHtml)) return;
    this.load({
      to: d.to,
      cc: d.cc,
      subject: d.subject,
      html: d.html,
      attachments: d.attachments,
      inline: d.inline,
      inReplyTo: d.inReplyTo,
      references: d.references,
    });
    this.bcc.set(d.bcc);
    this.from.value = d.from;
    this.tnef.checked = d.tnef;
    this.calendar.restore(d.meeting);
    this.savedKey = draftKey(this.draft());
    clearTimeout(this.draftTimer);
    const status = byId('draft-status');
    status.dataset.state = 'saved';
    const note = d.skipped.length ? `; not kept: ${d.skipped.join(', ')} (attach again)` : '';
    say(status, `Draft restored, saved ${new Date(d.savedAt).toLocaleString()}${note}`);
    this.updatePreview();
  }

  /** Deletes the draft and empties the composer (From stays). */
  async discardDraft(): Promise<void> {
    clearTimeout(this.draftTimer);
    await this.draftChain;
    this.load({});
    await this.saveDraftNow();
    say(byId('draft-status'), 'Draft discarded');
    byId('draft-status').dataset.state = 'saved';
  }

  /** Replaces the composer's content with a draft (reply, forward, new message). */
  load(d: Draft): void {
    this.to.set(d.to ?? []);
    this.cc.set(d.cc ?? []);
    this.bcc.set([]);
    this.subject.value = d.subject ?? '';
    this.attachments.clear();
    if (d.attachments?.length) this.attachments.addParts(d.attachments);
    this.editor.setHtml(
      d.html ?? '<p><br></p>',
      (d.inline ?? []).flatMap((p) =>
        p.contentId ? [{ cid: p.contentId.replace(/^<|>$/g, ''), filename: p.filename ?? 'image', contentType: p.contentType, base64: contentBase64(p.content) }] : [],
      ),
    );
    this.calendar.enabled.checked = false;
    this.calendar.enabled.dispatchEvent(new Event('change'));
    this.calendar.reset();
    this.tnef.checked = false;
    this.threading = { inReplyTo: d.inReplyTo, references: d.references };
    byId('send-status').textContent = '';
    byId<HTMLTableElement>('rcpt-table').hidden = true;
    this.schedulePreview();
  }
}

type State = 'sending' | 'queued' | 'delivered' | 'deferred' | 'failed' | 'rejected';

/** The per-recipient status table of one send. */
class RecipientTable {
  private rows = new Map<string, { state: State; status: HTMLElement; detail: HTMLElement }>();
  onAllSettled: ((c: { delivered: number; failed: number }) => void) | null = null;

  constructor(table: HTMLTableElement, rcpts: string[]) {
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const r of rcpts) {
      const status = h('td', { class: 'state', 'data-state': 'sending', text: 'sending' });
      const detail = h('td', {});
      body.append(h('tr', { 'data-rcpt': r }, h('td', { text: r }), status, detail));
      this.rows.set(r.toLowerCase(), { state: 'sending', status, detail });
    }
    table.hidden = false;
  }

  private set(rcpt: string, state: State, detail: string): void {
    const row = this.rows.get(rcpt.toLowerCase());
    if (!row) return;
    row.state = state;
    row.status.textContent = state;
    row.status.dataset.state = state;
    row.detail.textContent = detail;
  }

  accepted(): void {
    for (const [r, row] of this.rows) if (row.state === 'sending') this.set(r, 'queued', 'accepted by the relay');
    this.check();
  }

  rejected(why: string): void {
    for (const [r] of this.rows) this.set(r, 'rejected', why);
  }

  event(e: DeliveryEvent): void {
    if (e.type === 'delivered') this.set(e.rcpt, 'delivered', e.response);
    else if (e.type === 'failed') this.set(e.rcpt, 'failed', e.reason);
    else {
      const when = e.retryAt ? `, retry at ${new Date(e.retryAt).toLocaleTimeString()}` : '';
      this.set(e.rcpt, 'deferred', `${e.reason} (attempt ${e.attempts}${when})`);
    }
    this.check();
  }

  private check(): void {
    const states = [...this.rows.values()].map((r) => r.state);
    if (states.every((s) => s === 'delivered' || s === 'failed')) {
      this.onAllSettled?.({
        delivered: states.filter((s) => s === 'delivered').length,
        failed: states.filter((s) => s === 'failed').length,
      });
    }
  }
}
