/**
 * Address parsing and validation for the address chips (pure, no DOM).
 *
 * Accepts what people type or paste: `a@b.example`, `Name <a@b.example>`,
 * `"Last, First" <a@b.example>`, and lists of them separated by commas,
 * semicolons or new lines (commas inside quotes or angle brackets do not split).
 * The relay and the core validate again; this gives the writer an early,
 * precise message about what is wrong with each address.
 */

/** One address as typed, parsed and checked. */
export type ParsedAddress =
  | { ok: true; name: string | null; email: string; text: string }
  | { ok: false; input: string; error: string };

const ATEXT = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\uFFFF-]+$/;

/** Splits a typed or pasted list into single address strings. */
export function splitAddressList(input: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let angle = false;
  for (let i = 0; i < input.length; i++) {
    const c = input[i];
    if (c === '\\' && quoted && i + 1 < input.length) {
      cur += c + input[++i];
      continue;
    }
    if (c === '"') quoted = !quoted;
    else if (!quoted && c === '<') angle = true;
    else if (!quoted && c === '>') angle = false;
    if (!quoted && !angle && (c === ',' || c === ';' || c === '\n' || c === '\r')) {
      if (cur.trim()) out.push(cur.trim());
      cur = '';
      continue;
    }
    cur += c;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** Checks a bare `local@domain` address; returns the reason when it is not valid. */
export function emailError(email: string): string | null {
  if (email.length === 0) return 'the address is empty';
  if (/[\u0000-\u001f\u007f]/.test(email)) return 'the address contains a control character (such as a line break)';
  if (/\s/.test(email)) return 'the address contains a space';
  const at = email.lastIndexOf('@');
  if (at < 0) return 'the address has no @';
  const local = email.slice(0, at);
  const domain = email.slice(at + 1);
  if (local.length === 0) return 'the part before @ is empty';
  if (local.length > 64) return 'the part before @ is longer than 64 characters';
  if (local.startsWith('"') && local.endsWith('"') && local.length >= 2) {
    // quoted local part: anything printable
  } else if (!local.split('.').every((atom) => atom.length > 0 && ATEXT.test(atom))) {
    return `the part before @ ("${local}") has a character that is not allowed or an empty dot segment`;
  }
  if (domain.length === 0) return 'the domain after @ is empty';
  if (domain.length > 253) return 'the domain is longer than 253 characters';
  if (domain.startsWith('[') && domain.endsWith(']')) return null; // address literal
  const labels = domain.split('.');
  if (labels.length < 2) return `the domain "${domain}" has no dot`;
  for (const label of labels) {
    if (label.length === 0) return `the domain "${domain}" has an empty label`;
    if (label.length > 63) return `the domain label "${label}" is longer than 63 characters`;
    if (!/^[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?$/u.test(label)) {
      return `the domain label "${label}" may only have letters, digits and inner hyphens`;
    }
  }
  return null;
}

/** Quotes a display name when it holds characters that RFC 5322 does not allow bare. */
export function quoteName(name: string): string {
  if (/^[\p{L}\p{N}!#$%&'*+/=?^_`{|}~ -]+$/u.test(name)) return name;
  return `"${name.replace(/(["\\])/g, '\\$1')}"`;
}

/** Parses one address in `addr`, `<addr>`, `Name <addr>` or `"Name" <addr>` form. */
export function parseAddress(input: string): ParsedAddress {
  const raw = input.trim();
  if (/[\r\n]/.test(raw)) return { ok: false, input, error: 'the address contains a line break' };
  let name: string | null = null;
  let email: string;
  const m = /^(.*?)<([^<>]*)>$/s.exec(raw);
  if (m) {
    let n = m[1].trim();
    if (n.startsWith('"') && n.endsWith('"') && n.length >= 2) n = n.slice(1, -1).replace(/\\(.)/g, '$1');
    name = n.length ? n : null;
    email = m[2].trim();
  } else if (/[<>]/.test(raw)) {
    return { ok: false, input, error: 'unbalanced < or >' };
  } else {
    email = raw;
  }
  const err = emailError(email);
  if (err) return { ok: false, input, error: err };
  const text = name ? `${quoteName(name)} <${email}>` : email;
  return { ok: true, name, email, text };
}

/** Parses a whole list; valid and invalid entries keep their order. */
export function parseAddressList(input: string): ParsedAddress[] {
  return splitAddressList(input).map(parseAddress);
}
