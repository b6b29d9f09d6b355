/**
 * The automatic plain-text alternative of the editor's HTML (pure, no DOM, so
 * it runs the same in tests as in the page): paragraphs and block elements
 * become lines, `<br>` a line break, list items `- ` lines, links
 * `text <href>` (when the text is not already the address), images their alt
 * text; scripts and styles are dropped and entities decoded.
 */

const BLOCK = new Set([
  'p', 'div', 'section', 'article', 'header', 'footer', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6',
  'ul', 'ol', 'table', 'tr', 'blockquote', 'pre', 'hr', 'li', 'dl', 'dt', 'dd', 'figure',
]);

const NAMED: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0', copy: '©', reg: '®',
  hellip: '…', mdash: '—', ndash: '–', lsquo: '‘', rsquo: '’', ldquo: '“', rdquo: '”', euro: '€',
};

/** Decodes HTML character references. */
export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === '#') {
      const n = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return Number.isFinite(n) && n > 0 && n <= 0x10ffff ? String.fromCodePoint(n) : m;
    }
    return NAMED[e.toLowerCase()] ?? m;
  });
}

function attr(tag: string, name: string): string | null {
  const m = new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i').exec(tag);
  if (!m) return null;
  return decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
}

/** Converts an HTML fragment to readable plain text. */
export function htmlToText(html: string): string {
  const src = html.replace(/<(script|style|head|title)\b[^]*?<\/\1\s*>/gi, '').replace(/<!--[^]*?-->/g, '');
  let out = '';
  let pre = 0;
  const quote: number[] = [];
  const links: (string | null)[] = [];
  let linkTextStart = 0;
  const lists: { ordered: boolean; n: number }[] = [];
  const newline = (n = 1) => {
    out = out.replace(/[ \t]+$/, '');
    const have = /\n*$/.exec(out)?.[0].length ?? 0;
    if (out.length === 0) return;
    if (have < n) out += '\n'.repeat(n - have);
  };
  const re = /<\/?([a-z][a-z0-9]*)\b[^>]*>|[^<]+|</gi;
  for (const m of src.matchAll(re)) {
    const tok = m[0];
    if (tok[0] !== '<' || tok === '<') {
      let t = decodeEntities(tok);
      if (!pre) {
        t = t.replace(/[\s]+/g, ' ');
        if (/[ \n]$/.test(out) || out.length === 0) t = t.replace(/^ /, '');
      }
      out += t.replace(/\u00a0/g, ' ');
      continue;
    }
    const name = (m[1] ?? '').toLowerCase();
    const closing = tok[1] === '/';
    if (name === 'br') {
      out = out.replace(/ $/, '');
      out += '\n';
    } else if (name === 'img' && !closing) {
      const alt = attr(tok, 'alt');
      if (alt) out += `[${alt}]`;
    } else if (name === 'a') {
      if (!closing) {
        links.push(attr(tok, 'href'));
        linkTextStart = out.length;
      } else {
        const href = links.pop();
        const text = out.slice(linkTextStart).trim();
        if (href && !href.startsWith('#') && text !== href && `mailto:${text}` !== href) out += ` <${href}>`;
      }
    } else if (name === 'pre') {
      newline(closing ? 2 : 2);
      pre += closing ? -1 : 1;
      if (pre < 0) pre = 0;
    } else if (name === 'ul' || name === 'ol') {
      if (!closing) lists.push({ ordered: name === 'ol', n: 0 });
      else lists.pop();
      newline(lists.length === 0 ? 2 : 1);
    } else if (name === 'li') {
      if (!closing) {
        newline(1);
        const l = lists[lists.length - 1];
        const indent = '  '.repeat(Math.max(0, lists.length - 1));
        if (l) l.n++;
        out += indent + (l?.ordered ? `${l.n}. ` : '- ');
      } else newline(1);
    } else if (name === 'blockquote') {
      newline(1);
      if (!closing) quote.push(out.length);
      else {
        const start = quote.pop() ?? out.length;
        const body = out.slice(start).replace(/\n+$/, '');
        out = out.slice(0, start) + body.split('\n').map((l) => (l ? `> ${l}` : '>')).join('\n');
        newline(1);
      }
    } else if (name === 'hr') {
      newline(1);
      out += '----';
      newline(1);
    } else if (name === 'td' || name === 'th') {
      if (closing) out += '\t';
    } else if (BLOCK.has(name)) {
      newline(/^h[1-6]$|^p$/.test(name) ? 2 : 1);
    }
  }
  return out
    .split('\n')
    .map((l) => l.replace(/[ \t]+$/, ''))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim() + '\n';
}
