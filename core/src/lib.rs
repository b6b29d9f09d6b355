//! postwire-core: the message model and the format engines of postwire.
//!
//! Sans-IO and deterministic: bytes in, bytes out. No clock, no randomness,
//! no filesystem: time and entropy are passed in by the caller, so that the
//! same input gives the same bytes natively and in WebAssembly.

pub mod tnef;
