//! The entry points that compose a message from all its parts, in both
//! directions, over the layers below them:
//!
//! ```text
//! compose   build, parse, MessageSpec::normalized  (this file)
//! reply     replies and forwards                    (reply.rs)
//! convert   calendar <-> MIME, TNEF <-> spec        (ical/mime.rs, tnef/spec.rs)
//! engines   MIME build and parse                    (build.rs, parse.rs + parse/)
//! model     the spec and its values                 (spec.rs, address, content_type, html, ical model)
//! ```
//!
//! Each layer imports only the layers under it. `build` composes a spec's
//! calendar (RFC 6047 parts) and TNEF (winmail.dat) before the MIME build;
//! `parse` surfaces them after the MIME parse. The public paths
//! `build::build` and `parse::{parse, parse_with_warnings, parse_with_decoder}`
//! re-export these.

use crate::{
    build::{BuildError, BuildOptions, build_mime},
    parse::{LegacyDecoder, ParseError, Parsed, parse_mime},
    spec::{MessageSpec, bracket_id, normalise_newlines},
};

/// Builds the RFC 5322 bytes of `spec` (CRLF line ends, Bcc left out).
pub fn build(spec: &MessageSpec, options: &BuildOptions) -> Result<Vec<u8>, BuildError> {
    // ical: `calendar` -> text/calendar view + invite.ics (RFC 6047).
    let spec = &*crate::ical::mime::expand(spec, options.now)?;
    // TNEF (issue 7): `tnef: true` builds Outlook's shape around a winmail.dat.
    if spec.tnef {
        return crate::tnef::spec::build_tnef(spec, options);
    }
    build_mime(spec, options)
}

/// Parses a message into its spec (lenient; see the `parse` module doc).
pub fn parse(bytes: &[u8]) -> Result<MessageSpec, ParseError> {
    parse_with_warnings(bytes).map(|p| p.spec)
}

/// Parses a message and reports what could not be kept.
pub fn parse_with_warnings(bytes: &[u8]) -> Result<Parsed, ParseError> {
    parse_mime(bytes, None).map(surface)
}

/// As [`parse_with_warnings`], with a host decoder for the legacy multi-byte
/// charsets (see `parse/legacy.rs`): used only when core is built without
/// `full-encoding`; with it, mail-parser decodes them itself.
pub fn parse_with_decoder(bytes: &[u8], decoder: &dyn LegacyDecoder) -> Result<Parsed, ParseError> {
    parse_mime(bytes, (!cfg!(feature = "full-encoding")).then_some(decoder)).map(surface)
}

/// The TNEF and calendar content of a parsed message, surfaced into its spec.
fn surface(parsed: Parsed) -> Parsed {
    let Parsed {
        mut spec,
        mut warnings,
    } = parsed;
    // TNEF (issue 7): surface winmail.dat's bodies and attachments, keep the raw file.
    crate::tnef::spec::surface(&mut spec, &mut warnings);
    // ical: text/calendar part -> `calendar` (RFC 6047).
    crate::ical::mime::extract(&mut spec, &mut warnings);
    if spec.text.as_deref() == Some("") {
        spec.text = None;
    }
    Parsed { spec, warnings }
}

impl MessageSpec {
    /// The spec in normal form (see the module doc): what `parse(build(self))` gives.
    pub fn normalized(&self) -> MessageSpec {
        let mut n = self.clone();
        n.bcc.clear();
        // Envelope-only requests never travel in the bytes.
        #[cfg(feature = "transfer-requests")]
        {
            n.dsn = None;
            n.require_tls = false;
        }
        n.message_id = n.message_id.as_deref().map(bracket_id);
        n.in_reply_to = n.in_reply_to.as_deref().map(bracket_id);
        n.references = n.references.iter().map(|r| bracket_id(r)).collect();
        n.text = n.text.as_deref().map(normalise_newlines);
        n.html = n.html.as_deref().map(normalise_newlines);
        for alt in &mut n.alternates {
            alt.content = normalise_newlines(&alt.content);
        }
        // MIME order: the HTML's inline parts (in multipart/related) come
        // before the other attachments (in multipart/mixed), see build.
        if n.html.is_some() {
            let (related, mixed): (Vec<_>, Vec<_>) = std::mem::take(&mut n.attachments)
                .into_iter()
                .partition(|a| a.inline && a.content_id.is_some());
            n.attachments = related.into_iter().chain(mixed).collect();
        }
        // An attached message travels with CRLF line ends (see build).
        for a in &mut n.attachments {
            let is_message = crate::content_type::MediaType::parse(&a.content_type)
                .is_ok_and(|m| m.essence == "message/rfc822");
            if let Some(wire) = is_message
                .then(|| crate::spec::rfc822_wire_form(&a.content))
                .flatten()
            {
                a.content = wire;
            }
        }
        if n.subject.as_deref() == Some("") {
            n.subject = None;
        }
        // An empty text body is what a message without a body carries (see build).
        if n.text.as_deref() == Some("") {
            n.text = None;
        }
        // ical: a readable text/calendar view is read back as `calendar`.
        crate::ical::mime::normalize(&mut n);
        n
    }
}
