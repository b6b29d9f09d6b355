/**
 * Drafts: the message being written, kept in the browser's IndexedDB so that
 * it survives a reload, a crash or a closed tab. One draft (the composer's),
 * saved a moment after each change and when the page is hidden; deleted by
 * "Discard draft" and once the relay accepted the message.
 *
 * What is kept: every field of the composer, the inline images, and the
 * attachments up to DRAFT_ATTACHMENTS_LIMIT bytes in all (larger ones are
 * named in the draft, not kept). Never the relay token: that stays in
 * sessionStorage, for the tab only (session.ts).
 */

import type { MeetingSnapshot } from './calendar-panel';
import { contentSize, type SpecAttachment } from './spec';

/** Attachments kept in a draft, in all (decoded bytes). */
export const DRAFT_ATTACHMENTS_LIMIT = 10 * 1024 * 1024;

/** A saved draft. */
export interface DraftRecord {
  version: 1;
  /** When it was saved (ms since the epoch). */
  savedAt: number;
  from: string;
  to: string[];
  cc: string[];
  bcc: string[];
  subject: string;
  /** The editor's HTML, inline images as `cid:`. */
  html: string;
  inline: SpecAttachment[];
  attachments: SpecAttachment[];
  /** Attachments that were too large to keep (file names). */
  skipped: string[];
  meeting: MeetingSnapshot;
  tnef: boolean;
  inReplyTo?: string;
  references?: string[];
}

/** A stable name for each byte array (IndexedDB keeps them as they are; JSON would spell out every byte). */
const byteIds = new WeakMap<Uint8Array, number>();
let nextByteId = 0;
function bytesKey(b: Uint8Array): string {
  let id = byteIds.get(b);
  if (id === undefined) {
    id = ++nextByteId;
    byteIds.set(b, id);
  }
  return `bytes#${id}:${b.byteLength}`;
}

/** The attachments a draft keeps (in order, while they fit the limit), and the names of the others. */
export function keepAttachments(parts: SpecAttachment[], limit = DRAFT_ATTACHMENTS_LIMIT): { kept: SpecAttachment[]; skipped: string[] } {
  const kept: SpecAttachment[] = [];
  const skipped: string[] = [];
  let total = 0;
  for (const p of parts) {
    const n = contentSize(p.content);
    if (total + n > limit) skipped.push(p.filename ?? 'attachment');
    else {
      kept.push(p);
      total += n;
    }
  }
  return { kept, skipped };
}

/** Whether a draft holds nothing a person wrote (From alone is not a draft). */
export function isEmptyDraft(d: DraftRecord, blankHtml: (html: string) => boolean): boolean {
  return (
    d.to.length + d.cc.length + d.bcc.length === 0 &&
    !d.subject.trim() &&
    blankHtml(d.html) &&
    d.attachments.length + d.skipped.length === 0 &&
    !d.meeting.enabled
  );
}

/** The content of a draft, for comparing two drafts (the time left out). */
export function draftKey(d: DraftRecord): string {
  return JSON.stringify({ ...d, savedAt: 0 }, (_k, v: unknown) => (v instanceof Uint8Array ? bytesKey(v) : v));
}

const DB = 'postwire';
const STORE = 'drafts';
const KEY = 'composer';

function openDb(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => {
      if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE);
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB cannot be opened'));
    req.onblocked = () => reject(new Error('IndexedDB is blocked by another tab'));
  });
}

async function withStore<T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest<T> | null): Promise<T | undefined> {
  const db = await openDb();
  try {
    return await new Promise<T | undefined>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req ? (req.result as T) : undefined);
      tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted (storage full?)'));
    });
  } finally {
    db.close();
  }
}

/** Saves the draft (replacing the one before). */
export async function saveDraft(d: DraftRecord): Promise<void> {
  await withStore('readwrite', (s) => s.put(d, KEY));
}

/** The saved draft, if any. */
export async function loadDraft(): Promise<DraftRecord | null> {
  const d = await withStore<DraftRecord | undefined>('readonly', (s) => s.get(KEY));
  return d && d.version === 1 ? d : null;
}

/** Deletes the saved draft. */
export async function deleteDraft(): Promise<void> {
  await withStore('readwrite', (s) => s.delete(KEY));
}
