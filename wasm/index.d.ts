// Types of the package `postwire` (both the Node and the browser entry).
// The interfaces and function signatures are generated from the Rust crate
// (wasm-bindgen, typescript_custom_section) into pkg/postwire_wasm.d.ts;
// this file picks the public ones.
export { buildEml, envelopeOf, toIcs, parseIcs, parseCalendar, replyEml, encodeTnef, parseReport } from './pkg/postwire_wasm.js';
import type { MessageSpec, ParseOptions, TnefDecodeOptions } from './pkg/postwire_wasm.js';

/**
 * Parses message bytes into a spec (lenient: best effort on broken input).
 * Attachment `content` is base64 text, or a `Uint8Array` with `{ bytes: true }`.
 *
 * Throws a `PostwireError` (`INVALID_ARGUMENT` for a non-`Uint8Array`,
 * `EMPTY_INPUT`, `NOT_A_MESSAGE`, `INVALID_OPTIONS`).
 */
export function parseEml(bytes: Uint8Array, options: ParseOptions & { bytes: true }): MessageSpec<Uint8Array>;
export function parseEml(bytes: Uint8Array, options?: ParseOptions & { bytes?: false }): MessageSpec;
export function parseEml(bytes: Uint8Array, options?: ParseOptions): MessageSpec<string | Uint8Array>;

/**
 * Reads a winmail.dat (the bytes of an `application/ms-tnef` attachment)
 * into a spec. Attachment `content` is base64 text, or a `Uint8Array` with
 * `{ bytes: true }`.
 *
 * Throws a `PostwireError` (`INVALID_ARGUMENT`, `INVALID_TNEF`, `INVALID_OPTIONS`).
 */
export function decodeTnef(bytes: Uint8Array, options: TnefDecodeOptions & { bytes: true }): MessageSpec<Uint8Array>;
export function decodeTnef(bytes: Uint8Array, options?: TnefDecodeOptions & { bytes?: false }): MessageSpec;
export function decodeTnef(bytes: Uint8Array, options?: TnefDecodeOptions): MessageSpec<string | Uint8Array>;
export type {
  Alarm,
  Alternate,
  Answer,
  Appointment,
  Attachment,
  Attendee,
  BinaryInput,
  Calendar,
  BuildOptions,
  Dsn,
  DsnNotify,
  DsnRecipient,
  Envelope,
  ErrorCode,
  Feedback,
  Mailbox,
  Method,
  MessageSpec,
  ParseOptions,
  PostwireError,
  PartStat,
  Priority,
  Report,
  ReportAction,
  ReportKind,
  ReportRecipient,
  TnefDecodeOptions,
  Token,
} from './pkg/postwire_wasm.js';
export { RelayClient, readBlobs } from './js/relay-client.js';
