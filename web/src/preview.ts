/**
 * The message preview: HTML (or text) rendered in a sandboxed frame with no
 * scripts and nothing remote (inline `cid:` images shown from their parts),
 * and the raw .eml with its size.
 */

import { escapeHtml } from './template';
import type { MessageSpec } from './spec';

const FRAME_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'";
/** The raw view shows at most this many characters of a large message. */
const RAW_LIMIT = 256 * 1024;

/** The srcdoc of a frame that shows a spec's body. */
export function previewDocument(spec: MessageSpec): string {
  const cids = new Map<string, string>();
  for (const a of spec.attachments ?? []) {
    if (a.contentId) cids.set(a.contentId.replace(/^<|>$/g, ''), `data:${a.contentType};base64,${a.content.replace(/\s+/g, '')}`);
  }
  let body: string;
  if (spec.html) {
    body = spec.html.replace(/(["'(])cid:([^"')\s>]+)/gi, (m, q: string, id: string) => {
      const url = cids.get(id) ?? cids.get(decodeURIComponent(id));
      return url ? `${q}${url}` : m;
    });
    // Nothing remote is loaded (no tracking pixels, no CSP noise): sources
    // that are not data: URLs are kept only as an inert attribute.
    body = body.replace(/(\s)src\s*=\s*(["'])(?!data:)([^"']*)\2/gi, '$1data-blocked-src=$2$3$2');
  } else {
    body = `<pre style="white-space:pre-wrap;font:14px/1.4 monospace">${escapeHtml(spec.text ?? '')}</pre>`;
  }
  return `<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="${FRAME_CSP}"><style>body{font:15px/1.45 system-ui,sans-serif;margin:12px;color:#111;background:#fff}img{max-width:100%}blockquote{border-left:3px solid #ccc;margin-left:0;padding-left:10px;color:#444}</style></head><body>${body}</body></html>`;
}

/** The raw message as text for display (cut after RAW_LIMIT characters). */
export function rawText(bytes: Uint8Array): string {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(0, RAW_LIMIT));
  return bytes.length > RAW_LIMIT ? `${text}\n… (${bytes.length - RAW_LIMIT} more bytes; download the .eml to see all)` : text;
}
