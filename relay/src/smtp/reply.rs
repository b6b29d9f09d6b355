//! What the server answered: the reply types live in [`crate::delivery`],
//! shared with the pickup directory; this module re-exports them and reads
//! them out of lettre's responses and errors.

use lettre::transport::smtp::response::Response;

pub use crate::delivery::{DeliveryReport, EnhancedStatus, RecipientStatus, SmtpReply};

/// The reply in a lettre response.
pub(crate) fn from_response(response: &Response) -> SmtpReply {
    let text = response.message().collect::<Vec<_>>().join("\n");
    SmtpReply::new(u16::from(response.code()), text)
}

/// The reply carried by a lettre error for a negative answer (4xx/5xx).
pub(crate) fn from_lettre_error(err: &lettre::transport::smtp::Error) -> Option<SmtpReply> {
    let code = err.status()?;
    let text = std::error::Error::source(err)
        .map(|s| s.to_string())
        .unwrap_or_default();
    Some(SmtpReply::new(u16::from(code), text))
}
