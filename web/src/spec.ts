/**
 * The message spec as the page builds it (pure, no DOM): the JSON contract of
 * core/src/spec.rs (camelCase, addresses as RFC 5322 strings, binary content
 * as base64), and the function that turns the composer's state into one.
 */

import { bytesToBase64 } from './base64';
import { htmlToText } from './html-text';

/** An attachment or inline part of the spec. */
export interface SpecAttachment {
  filename?: string;
  contentType: string;
  /**
   * The bytes of a file the composer attached (passed to buildEml as they
   * are: copied into WebAssembly once, never through base64), or base64
   * text (parts of an opened message, inline images).
   */
  content: string | Uint8Array;
  inline?: boolean;
  contentId?: string;
}

/** One attendee of a meeting request. */
export interface CalendarAttendee {
  email: string;
  name?: string;
  role?: string;
  partstat?: string;
  rsvp?: boolean;
}

/** The meeting request of a message (spec.calendar). */
export interface CalendarSpec {
  method: string;
  uid: string;
  sequence: number;
  /** Local date-time `YYYY-MM-DDTHH:MM:SS` in `timeZone`. */
  start: string;
  end: string;
  timeZone: string;
  allDay: boolean;
  summary: string;
  description?: string;
  location?: string;
  organizer: string;
  attendees: CalendarAttendee[];
}

/** The message spec (core/src/spec.rs). */
export interface MessageSpec {
  from?: string;
  sender?: string;
  to?: string[];
  cc?: string[];
  bcc?: string[];
  replyTo?: string[];
  subject?: string;
  date?: string;
  messageId?: string;
  inReplyTo?: string;
  references?: string[];
  text?: string;
  html?: string;
  alternates?: { contentType: string; content: string }[];
  attachments?: SpecAttachment[];
  headers?: [string, string][];
  priority?: 'low' | 'normal' | 'high';
  calendar?: CalendarSpec;
  tnef?: boolean;
}

/** Bytes of a part's content: its length, or the base64 text's decoded length. */
export function contentSize(content: string | Uint8Array): number {
  if (typeof content !== 'string') return content.byteLength;
  const c = content.replace(/\s+/g, '');
  return Math.max(0, Math.floor((c.length * 3) / 4) - (c.endsWith('==') ? 2 : c.endsWith('=') ? 1 : 0));
}

/** A part's content as base64 text (for `data:` URLs): bytes are encoded, text kept. */
export function contentBase64(content: string | Uint8Array): string {
  return typeof content === 'string' ? content.replace(/\s+/g, '') : bytesToBase64(content);
}

/** What the composer holds, before it becomes a spec. */
export interface ComposerState {
  from: string;
  to: string[];
  cc: string[];
  bcc: string[];
  subject: string;
  /** HTML from the editor, with inline images as `cid:` references. */
  html: string;
  attachments: SpecAttachment[];
  calendar?: CalendarSpec;
  tnef: boolean;
  inReplyTo?: string;
  references?: string[];
}

/** Whether the editor's HTML holds nothing but formatting and white space. */
export function isBlankHtml(html: string): boolean {
  return !/<img\b/i.test(html) && htmlToText(html).trim() === '';
}

/**
 * Builds the spec: the HTML body with its automatic plain-text alternative,
 * only the fields that have a value (the core rejects unknown or malformed
 * ones), and inline parts only when the HTML still refers to them.
 */
export function assembleSpec(s: ComposerState): MessageSpec {
  const spec: MessageSpec = {};
  if (s.from.trim()) spec.from = s.from.trim();
  if (s.to.length) spec.to = [...s.to];
  if (s.cc.length) spec.cc = [...s.cc];
  if (s.bcc.length) spec.bcc = [...s.bcc];
  if (s.subject) spec.subject = s.subject;
  if (!isBlankHtml(s.html)) {
    spec.html = s.html;
    spec.text = htmlToText(s.html);
  } else {
    spec.text = '';
  }
  const atts = s.attachments.filter(
    (a) => !a.inline || !a.contentId || (spec.html ?? '').includes(`cid:${a.contentId}`),
  );
  if (atts.length) spec.attachments = atts;
  if (s.calendar) spec.calendar = s.calendar;
  if (s.tnef) spec.tnef = true;
  if (s.inReplyTo) spec.inReplyTo = s.inReplyTo;
  if (s.references?.length) spec.references = [...s.references];
  return spec;
}
