/**
 * The message preview: HTML (or text) rendered in a sandboxed frame with no
 * scripts and nothing remote (inline `cid:` images shown from their parts),
 * the attachments listed under it, and the raw .eml with its size.
 */

import { escapeHtml } from './template';
import { contentBase64, contentSize, type MessageSpec } from './spec';

const FRAME_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'";
/** The raw view shows at most this many characters of a large message. */
const RAW_LIMIT = 256 * 1024;

/** The srcdoc of a frame that shows a spec's body. */
export function previewDocument(spec: MessageSpec): string {
  const cids = new Map<string, string>();
  for (const a of spec.attachments ?? []) {
    if (a.contentId) cids.set(a.contentId.replace(/^<|>$/g, ''), `data:${a.contentType};base64,${contentBase64(a.content)}`);
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
  return `<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="${FRAME_CSP}"><style>body{font:15px/1.45 system-ui,sans-serif;margin:12px;color:#111;background:#fff}img{max-width:100%}blockquote{border-left:3px solid #ccc;margin-left:0;padding-left:10px;color:#444}.attachments{border-top:1px solid #ddd;margin-top:16px;padding:8px 0 0;list-style:none;color:#333;font-size:13px}</style></head><body>${body}${attachmentList(spec, cids)}</body></html>`;
}

function humanSize(n: number): string {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / (1024 * 1024)).toFixed(2)} MB`;
}

/**
 * The attachments a reader will see under the message, as mail clients list
 * them: every part but the inline images the HTML shows by `cid:`.
 */
function attachmentList(spec: MessageSpec, shownInline: Map<string, string>): string {
  const items = (spec.attachments ?? [])
    .filter((a) => !(a.inline && a.contentId && spec.html && shownInline.has(a.contentId.replace(/^<|>$/g, ''))))
    .map((a) => `<li><b>${escapeHtml(a.filename ?? 'attachment')}</b> <small>(${escapeHtml(a.contentType || 'application/octet-stream')}, ${humanSize(contentSize(a.content))})</small></li>`);
  const heading = items.length === 1 ? '1 attachment' : `${items.length} attachments`;
  return items.length ? `<ul class="attachments" aria-label="Attachments"><li>${heading}:</li>${items.join('')}</ul>` : '';
}

/** The raw message as text for display (cut after RAW_LIMIT characters). */
export function rawText(bytes: Uint8Array): string {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(0, RAW_LIMIT));
  return bytes.length > RAW_LIMIT ? `${text}\n… (${bytes.length - RAW_LIMIT} more bytes; download the .eml to see all)` : text;
}
