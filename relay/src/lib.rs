//! postwire-relay: SMTP delivery, the durable spool, the WebSocket relay server
//! and the command-line interface behind the `postwire` binary.

pub mod admin;
pub mod bounces;
pub mod cli;
pub mod client;
pub mod config;
pub mod delivery;
pub mod dkim;
pub mod inbound;
pub mod pickup;
pub mod server;
pub mod smtp;
pub mod spool;
pub mod token;
pub mod web_assets;
pub mod webhooks;
