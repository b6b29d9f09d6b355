//! Choosing the upstream from the settings: the pickup directory under the
//! data directory when no SMTP server is configured (the embedded default),
//! else the SMTP pool.

use std::sync::Arc;

use super::ServeError;
use crate::config::Settings;
use crate::spool::deliver::{Deliver, PickupDeliver};

/// The deliverer the settings ask for.
pub fn from_settings(settings: &Settings) -> Result<Arc<dyn Deliver>, ServeError> {
    match &settings.smtp {
        None => {
            let dir = settings.data_dir.join("pickup");
            let p = PickupDeliver::new(&dir).map_err(|e| {
                ServeError::Upstream(format!("cannot create {}: {e}", dir.display()))
            })?;
            tracing::info!(dir = %dir.display(),
                "no SMTP upstream configured (--smtp / POSTWIRE_SMTP): delivering into the pickup directory");
            eprintln!(
                "postwire: no --smtp given; messages are delivered into {}",
                dir.display()
            );
            Ok(Arc::new(p))
        }
        Some(_) => Err(ServeError::Upstream(
            "SMTP delivery is not wired in yet".into(),
        )),
    }
}
