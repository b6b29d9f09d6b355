//! The admin API: operator access to the spool's queue over HTTP
//! (`/admin/v1/...`, see docs/relay.md "Queue and admin API"), with its own
//! tokens (`admin-tokens.toml`), separate from the submission tokens.
//!
//! [`tokens`] owns the admin token file, [`view`] the JSON shapes, ids,
//! filters and cursors, [`api`] the routes and their authentication.

pub mod api;
pub mod tokens;
pub mod view;
