/**
 * What the page tells a person for each code the relay can answer with
 * (docs/protocol.md: `rejected` and `error` frames), and for the page's own
 * connection failures. Every code the relay sends has a message here; an
 * unknown code still shows the relay's own text.
 */

/** Codes of `rejected` and `error` frames (relay/src/server/protocol.rs). */
export const RELAY_CODES = [
  'auth_required', 'unauthorized', 'protocol', 'too_large', 'size_mismatch', 'bad_id',
  'bad_envelope', 'invalid_address', 'no_envelope', 'sender_not_allowed',
  'too_many_recipients', 'rate_limited', 'storage', 'shutting_down', 'timeout', 'invalid_dsn',
] as const;

/** Codes the package's RelayClient adds for what happens on the client's side. */
export const CLIENT_CODES = ['connection_failed', 'connection_closed', 'closed', 'no_websocket', 'no_builder', 'bad_input'] as const;

/** One relay code. */
export type RelayCode = (typeof RELAY_CODES)[number];

const MESSAGES: Record<RelayCode | (typeof CLIENT_CODES)[number], string> = {
  auth_required: 'The relay needs a token first. Sign in with your relay token.',
  unauthorized: 'The relay does not know this token. Check it, or ask the operator for a new one (postwire token add).',
  protocol: 'The relay did not understand the request (protocol error). Reload the page; if it happens again, report it.',
  too_large: 'The message is larger than this token may send. Remove or shrink attachments.',
  size_mismatch: 'The message arrived incomplete (size mismatch). Send it again.',
  bad_id: 'The message id was refused by the relay. Send it again.',
  bad_envelope: 'An address contains a line break or another control character.',
  invalid_address: 'An address is not valid, or there is no recipient.',
  no_envelope: 'The relay could not find a sender and recipients. Fill in From and To.',
  sender_not_allowed: 'This token may not send from this From address. Use an address the token allows.',
  too_many_recipients: 'Too many recipients for one message. Split them, or use Bulk.',
  rate_limited: 'This token has sent too much for now (rate limit). Wait a moment and send again.',
  storage: 'The relay could not store the message, so it was not accepted. Try again later.',
  shutting_down: 'The relay is restarting. Send again in a moment; nothing that was not accepted is lost.',
  timeout: 'The relay closed the connection because nothing arrived in time. Send again.',
  invalid_dsn: 'The delivery notification request (dsn) is not valid. Check its notify, ret and envid.',
  connection_failed: 'Cannot reach the relay, or it refused this page (Origin not allowed). Check that `postwire serve` is running and allows this address.',
  connection_closed: 'The connection to the relay closed before the relay answered. Send again; nothing is sent twice.',
  closed: 'The connection to the relay was closed. Sign in again.',
  no_websocket: 'This browser has no WebSocket support, which the relay needs.',
  no_builder: 'The message could not be built before sending (the postwire package did not load). Reload the page.',
  bad_input: 'The page handed the relay client something that is not a message. Reload the page; if it happens again, report it.',
};

/** The message for a code, with the relay's own detail when it adds something. */
export function describeCode(code: string, detail?: string): string {
  const base = (MESSAGES as Record<string, string>)[code];
  if (!base) return `The relay refused: ${detail || code} (${code})`;
  return detail ? `${base} (${code}: ${detail})` : `${base} (${code})`;
}
