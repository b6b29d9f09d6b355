//! Webhooks: every event of a message (accepted, delivered, deferred,
//! failed, and any kind the spool adds later) POSTed as signed JSON to the
//! HTTP endpoints an operator registered for its token (or for every token),
//! from a durable outbox, with retries.
//!
//! - [`store`]: the endpoints (`DATA_DIR/webhooks.toml`) and their signing
//!   secrets (`DATA_DIR/webhook-secrets/NAME`, mode 0600);
//! - [`sign`]: the `Postwire-Signature` header (docs/webhooks.md);
//! - [`mark`]: how far the outbox has caught up with the spool's events
//!   (`DATA_DIR/webhooks/watermark`), for reading them again after a crash;
//! - [`outbox`]: the durable queue of deliveries ([`outbox::Outbox`], one
//!   fsynced file per delivery in `DATA_DIR/webhooks/outbox`);
//! - [`http`]: one POST, with the address checks that keep the relay from
//!   being a way into private networks;
//! - [`dispatch`]: turns spool events into outbox entries and delivers them
//!   with backoff; [`hooked::HookedSpool`] adds the `accepted` event;
//! - [`stats`]: the per-endpoint metrics;
//! - [`pg`] and [`shared`]: on the PostgreSQL spool, the endpoints and the
//!   outbox in its database (written with the events, in their
//!   transactions) and the dispatcher every relay runs on it.

#[cfg(test)]
mod catchup_tests;
pub mod dispatch;
pub mod hooked;
pub mod http;
pub mod mark;
pub mod outbox;
pub mod pg;
pub mod shared;
pub mod sign;
pub mod stats;
pub mod store;

pub use dispatch::{Options, Webhooks};
pub use hooked::{AcceptHook, HookedSpool};
pub use shared::SharedWebhooks;
pub use store::{Endpoint, StoreError};
