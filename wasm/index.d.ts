// Types of the package `postwire` (both the Node and the browser entry).
// The interfaces and function signatures are generated from the Rust crate
// (wasm-bindgen, typescript_custom_section) into pkg/postwire_wasm.d.ts;
// this file picks the public ones.
export { buildEml, parseEml, envelopeOf } from './pkg/postwire_wasm.js';
export type {
  Alternate,
  Attachment,
  BuildOptions,
  Envelope,
  ErrorCode,
  Mailbox,
  MessageSpec,
  PostwireError,
  Priority,
} from './pkg/postwire_wasm.js';
export { RelayClient } from './js/relay-client.js';
