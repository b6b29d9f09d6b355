//! postwire-wasm: the WebAssembly bindings of postwire-core, shipped as the
//! npm package `postwire`.
//!
//! Thin by design: every function here converts JavaScript values to core
//! types, calls core, and converts the answer back. The logic lives in core.
//!
//! | module | owns | JavaScript |
//! |---|---|---|
//! | [`mime`] | building and parsing messages | `buildEml`, `parseEml` |
//! | [`ical`] | meeting requests (iCalendar, iTIP) | `toIcs`, `parseIcs`, `parseCalendar`, `replyEml` |
//! | [`tnef`] | TNEF (winmail.dat) | `encodeTnef`, `decodeTnef` |
//! | [`report`] | delivery and abuse reports (RFC 3464, RFC 5965, bounce texts) | `parseReport` |
//! | [`envelope`] | the SMTP envelope of a spec or message | `envelopeOf` |
//! | [`spec`] | JS object <-> `MessageSpec`, the TypeScript interfaces of the spec | types |
//! | [`options`] | `BuildOptions` from JS (`now`, `seed`) | type `BuildOptions` |
//! | [`fields`] | serde field lists (unknown-key checks, TS drift test) | |
//! | [`host`] | time and entropy from the JS host (`Date.now`, `crypto.getRandomValues`) | |
//! | [`errors`] | one helper turning every error into a JS `Error` with `code` and `path` | type `PostwireError` |
//!
//! Adding a binding (TNEF, calendar, ...) is one new file: a module with its
//! `#[wasm_bindgen]` functions, its TypeScript section and an [`errors::Coded`]
//! impl for its error type, plus its name in `wasm/api.js` and `wasm/index.d.ts`.
//!
//! Cargo features:
//!
//! | feature | default | effect |
//! |---|---|---|
//! | `full-encoding` | yes (the npm build, `scripts/build-wasm.sh`, leaves it out) | decode every charset mail-parser knows (encoding_rs, ~128 KB gzipped); see docs/perf.md |

pub mod envelope;
pub mod errors;
pub mod fields;
pub mod host;
pub mod ical;
pub mod mime;
pub mod options;
pub mod report;
pub mod spec;
pub mod tnef;

#[cfg(test)]
mod ts_drift;
