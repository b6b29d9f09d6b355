//! Choosing the upstream from the settings: the pickup directory under the
//! data directory when no SMTP server is configured (the embedded default),
//! else the SMTP pool with its N connections; either wrapped in the DKIM
//! signer ([`crate::dkim::deliver::SigningDeliver`]), and, with a bounce
//! domain, in the VERP return path
//! ([`crate::bounces::deliver::VerpDeliver`], inside the signer so that a
//! message is signed once for all its recipients).

use std::sync::Arc;

use super::ServeError;
use crate::cli::smtp_args::Destination;
use crate::config::Settings;
use crate::pickup::Pickup;
use crate::smtp::SmtpPool;
use crate::spool::deliver::{Deliver, TransportDeliver};

/// Parallel writers into a pickup directory.
const PICKUP_WRITERS: usize = 2;

/// The deliverer the settings ask for, signing with the DKIM keys of the
/// settings and counting into `dkim`. The SMTP pool connects lazily, so
/// that the relay starts (and accepts) while its upstream is down.
pub fn from_settings(
    settings: &Settings,
    dkim: Arc<crate::dkim::Stats>,
) -> Result<Arc<dyn Deliver>, ServeError> {
    with_verp(settings, dkim, None)
}

/// As [`from_settings`], sending with the VERP return paths of `verp` (and
/// remembering Message-IDs there) when given.
pub fn with_verp(
    settings: &Settings,
    dkim: Arc<crate::dkim::Stats>,
    verp: Option<(
        Arc<crate::bounces::verp::Verp>,
        Arc<crate::bounces::deliver::MessageIds>,
    )>,
) -> Result<Arc<dyn Deliver>, ServeError> {
    let signer = crate::dkim::Signer::new(&settings.dkim, Some(settings.data_dir.join("dkim")))
        .map_err(|e| ServeError::Upstream(e.to_string()))?
        .with_stats(dkim);
    let mut inner = transport(settings)?;
    if let Some((verp, ids)) = verp {
        inner = Arc::new(crate::bounces::deliver::VerpDeliver::new(inner, verp, ids));
    }
    Ok(Arc::new(crate::dkim::deliver::SigningDeliver::new(
        inner,
        Arc::new(signer),
    )))
}

fn transport(settings: &Settings) -> Result<Arc<dyn Deliver>, ServeError> {
    match &settings.upstream {
        Destination::Pickup(dir) => {
            let p = Pickup::new(dir.clone()).map_err(|e| ServeError::Upstream(e.to_string()))?;
            tracing::info!(dir = %dir.display(),
                "no SMTP upstream configured (--smtp / POSTWIRE_SMTP_URL): delivering into the pickup directory");
            eprintln!(
                "postwire: no --smtp given; messages are delivered into {}",
                dir.display()
            );
            Ok(Arc::new(TransportDeliver::new(
                p,
                PICKUP_WRITERS,
                format!("pickup directory {}", dir.display()),
            )))
        }
        Destination::Smtp(s) => {
            let description = format!(
                "smtp://{}:{} (security {:?}, {} connections{}{}{})",
                s.host,
                s.port,
                s.security,
                s.connections,
                if s.username.is_some() { ", AUTH" } else { "" },
                if s.client_cert.is_some() {
                    ", client certificate"
                } else {
                    ""
                },
                // Display of a proxy never shows its password.
                s.proxy
                    .as_ref()
                    .map(|p| format!(", via {p}"))
                    .unwrap_or_default()
            );
            let n = s.connections;
            let pool = SmtpPool::new(s.clone()).map_err(|e| ServeError::Upstream(e.to_string()))?;
            Ok(Arc::new(TransportDeliver::new(pool, n, description)))
        }
    }
}
