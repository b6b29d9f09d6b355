//! postwire-relay: SMTP delivery, the durable spool, the WebSocket relay server
//! and the command-line interface behind the `postwire` binary.

pub mod cli;
pub mod web_assets;
