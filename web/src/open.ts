/**
 * Opening a message: an .eml or winmail.dat chosen or dropped is parsed in
 * the browser and shown (headers, HTML and text bodies in sandboxed views,
 * attachments to download, the invitation if any). From there it can be
 * forwarded unchanged to new recipients (the same bytes, a new envelope), or
 * become a reply or a forward as a new message in the composer.
 */

import { ChipInput } from './chips';
import { describeCode } from './codes';
import type { Composer } from './compose';
import { byId, download, fileBytes, formatSize, h, randomId, say } from './dom';
import { attachmentBytes, describeError, isTnef, parseEml, parseTnef } from './engine';
import { fromCalendar, readIcs, type InvitationView } from './invitation';
import { parseAddress } from './address';
import { previewDocument } from './preview';
import { asRelayError } from './relay';
import { sanitizeHtml } from './sanitize';
import type { Session } from './session';
import type { MessageSpec } from './spec';
import { escapeHtml } from './template';

/** The "Open message" panel. */
export class Opener {
  private spec: MessageSpec | null = null;
  private bytes: Uint8Array | null = null;
  private forwardTo = new ChipInput(byId<HTMLInputElement>('forward-to'), 'Forward to');

  constructor(
    private session: Session,
    private composer: Composer,
    private showCompose: () => void,
    private showOpen: () => void,
  ) {
    const input = byId<HTMLInputElement>('open-file');
    input.addEventListener('change', () => {
      const f = input.files?.[0];
      if (f) void this.open(f);
    });
    // Dropping an .eml or winmail.dat anywhere outside the composer opens it.
    const drop = (e: DragEvent) => {
      const f = e.dataTransfer?.files?.[0];
      if (!f) return;
      // Never let the browser navigate away to a dropped file.
      e.preventDefault();
      if (/\.(eml|dat)$/i.test(f.name) || /rfc822|tnef/.test(f.type)) void this.open(f);
      else byId('open-error').textContent = `${f.name}: only .eml and winmail.dat files open here (drop attachments on the composer).`;
    };
    document.addEventListener('dragover', (e) => {
      if (e.dataTransfer?.types.includes('Files')) e.preventDefault();
    });
    document.addEventListener('drop', (e) => {
      if ((e.target as HTMLElement).closest?.('#compose') && !(e.target as HTMLElement).closest?.('#open-drop')) {
        e.preventDefault();
        return;
      }
      drop(e);
    });
    byId('opened-show-html').addEventListener('click', () => this.body(true));
    byId('opened-show-text').addEventListener('click', () => this.body(false));
    byId('forward-unchanged').addEventListener('click', () => void this.forwardUnchanged());
    byId('reply').addEventListener('click', () => this.reply());
    byId('forward-new').addEventListener('click', () => this.forwardNew());
  }

  /** Parses and shows a file. */
  async open(f: File): Promise<void> {
    const err = byId('open-error');
    err.textContent = '';
    this.showOpen();
    const bytes = await fileBytes(f);
    try {
      if (isTnef(bytes)) {
        this.spec = parseTnef(bytes);
        this.bytes = null;
      } else {
        this.spec = parseEml(bytes);
        this.bytes = bytes;
      }
    } catch (e) {
      byId('opened').hidden = true;
      err.textContent = `Cannot read ${f.name}: ${describeError(e)}`;
      return;
    }
    this.show(this.spec, f.name, bytes.length);
  }

  private show(spec: MessageSpec, name: string, size: number): void {
    byId('opened').hidden = false;
    byId('opened-subject').textContent = spec.subject || '(no subject)';
    const rows: [string, string][] = [
      ['File', `${name} (${formatSize(size)})`],
      ['From', spec.from ?? ''],
      ['To', (spec.to ?? []).join(', ')],
      ['Cc', (spec.cc ?? []).join(', ')],
      ['Date', spec.date ?? ''],
      ['Message-ID', spec.messageId ?? ''],
    ];
    for (const [k, v] of spec.headers ?? []) if (rows.length < 30) rows.push([k, v]);
    byId<HTMLTableElement>('opened-headers').tBodies[0].replaceChildren(
      ...rows.filter(([, v]) => v).map(([k, v]) => h('tr', {}, h('th', { scope: 'row', text: k }), h('td', { text: v }))),
    );
    const list = byId('opened-attachments');
    const parts = spec.attachments ?? [];
    list.replaceChildren(
      ...(parts.length
        ? parts.map((a, i) => {
            const fname = a.filename || `part-${i + 1}`;
            return h(
              'li',
              {},
              h('span', { class: 'att-name', text: fname }),
              h('span', { class: 'att-meta', text: ` ${a.contentType}${a.inline ? ', inline' : ''}, ${formatSize(attachmentBytes(a.content).length)} ` }),
              h('button', {
                type: 'button',
                text: 'Download',
                'aria-label': `Download ${fname}`,
                onclick: () => download(fname, attachmentBytes(a.content), a.contentType),
              }),
            );
          })
        : [h('li', { text: 'none' })]),
    );
    this.invitation(spec);
    byId<HTMLIFrameElement>('opened-frame').srcdoc = previewDocument(spec);
    byId('opened-text').textContent = spec.text ?? '';
    this.body(Boolean(spec.html));
    byId<HTMLButtonElement>('forward-unchanged').disabled = this.bytes === null;
    byId('forward-status').textContent = this.bytes ? '' : 'A winmail.dat alone is not a message: use Forward as new message.';
  }

  private invitation(spec: MessageSpec): void {
    let v: InvitationView | null = spec.calendar ? fromCalendar(spec.calendar) : null;
    if (!v) {
      const alt = (spec.alternates ?? []).find((a) => /^text\/calendar/i.test(a.contentType));
      if (alt) v = readIcs(alt.content);
    }
    if (!v) {
      const ics = (spec.attachments ?? []).find((a) => /^text\/calendar/i.test(a.contentType) || /\.ics$/i.test(a.filename ?? ''));
      if (ics) v = readIcs(new TextDecoder().decode(attachmentBytes(ics.content)));
    }
    const box = byId('opened-invitation');
    box.hidden = !v;
    if (!v) return;
    const line = (k: string, val: string) => (val ? h('div', {}, h('strong', { text: `${k}: ` }), val) : null);
    const lines = [
      line('Start', `${v.start}${v.timeZone ? ` (${v.timeZone})` : ''}`),
      line('End', v.end),
      line('Location', v.location),
      line('Organizer', v.organizer),
      line('Attendees', v.attendees.join(', ')),
    ].filter((x): x is HTMLDivElement => x !== null);
    box.replaceChildren(
      h('h3', { text: `Invitation${v.method ? ` (${v.method})` : ''}: ${v.summary || '(no title)'}` }),
      ...lines,
    );
  }

  private body(html: boolean): void {
    byId('opened-show-html').setAttribute('aria-pressed', String(html));
    byId('opened-show-text').setAttribute('aria-pressed', String(!html));
    byId('opened-frame').hidden = !html;
    byId('opened-text').hidden = html;
  }

  /** Sends the opened bytes as they are to the "Forward to" recipients. */
  private async forwardUnchanged(): Promise<void> {
    const status = byId('forward-status');
    if (!this.bytes) return;
    const bad = this.forwardTo.invalid();
    if (bad.length) return say(status, `Forward to: "${bad[0].input}" is not a valid address: ${bad[0].error}`, 'error');
    const rcpts = this.forwardTo.values().flatMap((t) => {
      const p = parseAddress(t);
      return p.ok ? [p.email] : [];
    });
    if (!rcpts.length) {
      this.forwardTo.input.focus();
      return say(status, 'Add at least one address in Forward to', 'error');
    }
    const from = parseAddress(this.composer.from.value);
    if (!from.ok) {
      return say(status, 'Fill in From in Compose: the relay sends the forward on your behalf, from that address.', 'error');
    }
    try {
      say(status, 'Forwarding…');
      const conn = await this.session.connection();
      const id = `fwd-${randomId()}`;
      let delivered = 0;
      await conn.submit(id, this.bytes, { mailFrom: from.email, rcptTo: rcpts }, {
        onEvent: (e) => {
          if (e.type === 'delivered') delivered++;
          if (e.type === 'failed') say(status, `Forward to ${e.rcpt} failed: ${e.reason}`, 'error');
          else if (delivered === rcpts.length) say(status, `Forwarded unchanged: delivered to ${rcpts.join(', ')}`, 'ok');
        },
      });
      say(status, `Forward accepted by the relay for ${rcpts.join(', ')}; delivering…`, 'ok');
    } catch (e) {
      const err = asRelayError(e);
      say(status, `Not forwarded: ${describeCode(err.code, err.message)}`, 'error');
    }
  }

  private quoteHeader(spec: MessageSpec): string {
    const rows = [['From', spec.from], ['Date', spec.date], ['Subject', spec.subject], ['To', (spec.to ?? []).join(', ')]];
    return rows.filter(([, v]) => v).map(([k, v]) => `${k}: ${escapeHtml(v ?? '')}`).join('<br>');
  }

  private originalHtml(spec: MessageSpec): string {
    if (spec.html) return sanitizeHtml(spec.html);
    return `<p>${escapeHtml(spec.text ?? '').replace(/\n/g, '<br>')}</p>`;
  }

  private reply(): void {
    const s = this.spec;
    if (!s) return;
    const to = s.replyTo?.length ? s.replyTo : s.from ? [s.from] : [];
    const refs = [...(s.references ?? []), ...(s.messageId ? [s.messageId] : [])];
    this.composer.load({
      to,
      subject: /^re:/i.test(s.subject ?? '') ? s.subject : `Re: ${s.subject ?? ''}`,
      html: `<p><br></p><p>${escapeHtml(s.from ?? '')} wrote:</p><blockquote>${this.originalHtml(s)}</blockquote>`,
      inline: (s.attachments ?? []).filter((a) => a.inline && a.contentId),
      inReplyTo: s.messageId,
      references: refs,
    });
    this.showCompose();
  }

  private forwardNew(): void {
    const s = this.spec;
    if (!s) return;
    this.composer.load({
      to: this.forwardTo.values(),
      subject: /^fwd?:/i.test(s.subject ?? '') ? s.subject : `Fwd: ${s.subject ?? ''}`,
      html: `<p><br></p><p>---------- Forwarded message ----------<br>${this.quoteHeader(s)}</p>${this.originalHtml(s)}`,
      // A winmail.dat's content is already among the attachments: not the raw file again.
      attachments: (s.attachments ?? []).filter((a) => !(a.inline && a.contentId) && !/^application\/(vnd\.)?ms-tnef/i.test(a.contentType)),
      inline: (s.attachments ?? []).filter((a) => a.inline && a.contentId),
    });
    this.showCompose();
  }
}
