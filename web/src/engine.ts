/**
 * The one place the page touches the npm package `postwire` (wasm/): building
 * and parsing messages and deriving envelopes run in WebAssembly, the same
 * code as the Rust crates. Everything else imports these wrappers, so that
 * the package's shape is known in one file.
 */

import * as postwire from 'postwire';
import { base64ToBytes, bytesToBase64 } from './base64';
import type { MessageSpec } from './spec';
import type { Envelope } from './relay';

type Pkg = Record<string, unknown>;
const pkg = postwire as unknown as Pkg;

/** An error from the package, with its stable code and field path when it has them. */
export function describeError(e: unknown): string {
  if (e && typeof e === 'object') {
    const o = e as { message?: unknown; code?: unknown; path?: unknown };
    const msg = String(o.message ?? e);
    const path = o.path ? ` (at ${String(o.path)})` : '';
    return o.code ? `${msg}${path} [${String(o.code)}]` : `${msg}${path}`;
  }
  return String(e);
}

/** Builds RFC 5322 bytes from a spec. */
export function buildEml(spec: MessageSpec): Uint8Array {
  return postwire.buildEml(spec as never);
}

/**
 * Parses RFC 5322 bytes into a spec, attachment contents as bytes
 * (`Uint8Array`): downloads, forwarding and drafts use them as they are,
 * with no base64 in between.
 */
export function parseEml(bytes: Uint8Array): MessageSpec {
  return postwire.parseEml(bytes, { bytes: true }) as unknown as MessageSpec;
}

/** The SMTP envelope of a spec (From; To, Cc and Bcc). */
export function envelopeOf(spec: MessageSpec): Envelope {
  return postwire.envelopeOf(spec as never) as unknown as Envelope;
}

/** Whether bytes start with the TNEF signature (0x223E9F78, little-endian). */
export function isTnef(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x78 && bytes[1] === 0x9f && bytes[2] === 0x3e && bytes[3] === 0x22;
}

/**
 * Reads a winmail.dat into a spec. With no TNEF function in the package, the
 * file is carried as the only part of a minimal MIME message (no headers of
 * its own, so that winmail.dat's subject, sender and recipients show) and
 * parsed: the core's parser decodes a carried winmail.dat into the spec
 * (`tnef: true`, its bodies and attachments, the raw file kept last).
 */
export function parseTnef(bytes: Uint8Array): MessageSpec {
  const direct = (pkg.parseTnef ?? pkg.tnefToSpec) as ((b: Uint8Array) => unknown) | undefined;
  if (typeof direct === 'function') return direct(bytes) as MessageSpec;
  const b64 = bytesToBase64(bytes).replace(/.{76}/g, '$&\r\n');
  const carrier =
    'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="postwire-tnef-carrier"\r\n\r\n' +
    '--postwire-tnef-carrier\r\nContent-Type: application/ms-tnef; name="winmail.dat"\r\n' +
    'Content-Disposition: attachment; filename="winmail.dat"\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
    `${b64}\r\n--postwire-tnef-carrier--\r\n`;
  const spec = parseEml(new TextEncoder().encode(carrier));
  if (spec.tnef !== true) {
    throw new Error('This winmail.dat could not be decoded (not valid TNEF, or this build of postwire cannot read TNEF).');
  }
  return spec;
}

/** The bytes of a spec attachment. */
export function attachmentBytes(content: string | Uint8Array): Uint8Array {
  return typeof content === 'string' ? base64ToBytes(content) : content;
}
