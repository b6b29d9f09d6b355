//! TNEF and the message spec: [`to_tnef`] / [`from_tnef`] convert between a
//! [`MessageSpec`] and a [`TnefMessage`]; [`build_tnef`] is what
//! `build` does for a spec with `tnef: true`, and [`surface`] is what
//! `parse` does with a message that carries a winmail.dat.
//!
//! The shape Outlook sends, and so what `build` writes for `tnef: true`:
//!
//! ```text
//! multipart/mixed              (X-MS-TNEF-Correlator: <message id>)
//! ├── text/plain               the text body ("" when the spec has none)
//! ├── text/calendar, ...       alternates, unchanged
//! └── application/ms-tnef      winmail.dat: subject, sender, To/Cc, date,
//!                              message id, text, HTML, RTF (from the HTML or
//!                              text), every attachment with its name, type,
//!                              content id and inline flag
//! ```
//! The correlator is the message id (from the spec or generated from the
//! seed), written both as X-MS-TNEF-Correlator and PidTagTnefCorrelationKey.
//! Bcc recipients are never written into winmail.dat.
//!
//! Decision on parsing (the issue leaves it open): a message that carries a
//! decodable application/ms-tnef part comes back with `tnef: true`, `text`
//! and `html` from winmail.dat (where it has them), winmail.dat's attachments
//! added to `attachments`, *and* the raw winmail.dat kept as the last
//! attachment, so nothing that was received is lost; the X-MS-TNEF-Correlator
//! header is dropped from `headers` (it is in the raw file, and `build`
//! writes it again). `build` with
//! `tnef: true` ignores application/ms-tnef attachments of the spec and
//! writes a fresh winmail.dat from the rest. So `parse(build(spec))` is
//! `spec.normalized()` plus that one raw attachment, and building the parsed
//! spec again gives the same bytes. A winmail.dat that does not decode stays
//! a plain attachment where it was, and the parser's warnings say why.

use crate::address::Mailbox;
use crate::build::{BuildError, BuildOptions, build_mime};
use crate::entropy::IdSource;
use crate::spec::{Attachment, MessageSpec, Priority, normalise_newlines};

use super::model::{RecipientKind, TnefAddress, TnefAttachment, TnefMessage, TnefRecipient};
use super::rtf_html;

/// The media type of winmail.dat.
pub const MS_TNEF: &str = "application/ms-tnef";
/// The header that ties the message to its winmail.dat.
pub const CORRELATOR_HEADER: &str = "X-MS-TNEF-Correlator";
/// The name Outlook gives the TNEF attachment.
pub const WINMAIL_DAT: &str = "winmail.dat";

fn is_tnef_attachment(a: &Attachment) -> bool {
    let ct = a.content_type.split(';').next().unwrap_or("").trim();
    ct.eq_ignore_ascii_case(MS_TNEF) || ct.eq_ignore_ascii_case("application/vnd.ms-tnef")
}

fn tnef_address(m: &Mailbox) -> TnefAddress {
    TnefAddress {
        name: m.name.clone(),
        email: m.email.clone(),
        addr_type: "SMTP".into(),
    }
}

/// A deterministic legacy key from the correlator (readers ignore its value).
fn legacy_key(correlator: &str) -> u16 {
    correlator
        .bytes()
        .fold(0x5057u16, |k, b| k.rotate_left(3) ^ u16::from(b))
        | 1
}

/// The TNEF form of a spec: everything `build` puts into winmail.dat.
/// `message_id` is the message's id (with brackets) and the correlator;
/// `date` is the send date in Unix seconds.
pub fn to_tnef(spec: &MessageSpec, message_id: &str, date: i64) -> TnefMessage {
    let recipients = [(RecipientKind::To, &spec.to), (RecipientKind::Cc, &spec.cc)]
        .into_iter()
        .flat_map(|(kind, list)| {
            list.iter().map(move |m| TnefRecipient {
                kind,
                address: tnef_address(m),
                properties: Vec::new(),
            })
        })
        .collect();
    let rtf = match (&spec.html, &spec.text) {
        (Some(html), _) => Some(rtf_html::encapsulate_html(html).into_bytes()),
        (None, Some(text)) => Some(rtf_html::encapsulate_text(text).into_bytes()),
        (None, None) => None,
    };
    let attachments = spec
        .attachments
        .iter()
        .filter(|a| !is_tnef_attachment(a))
        .map(|a| TnefAttachment {
            long_filename: a.filename.clone(),
            mime_type: Some(a.content_type.clone()),
            content_id: a.content_id.clone(),
            hidden: a.inline,
            method: Some(1),
            data: a.content.clone(),
            modify_date: Some(date),
            ..Default::default()
        })
        .collect();
    TnefMessage {
        legacy_key: legacy_key(message_id),
        message_class: Some("IPM.Note".into()),
        subject: spec.subject.clone(),
        from: spec.from.as_ref().map(tnef_address),
        date_sent: Some(date),
        date_modified: Some(date),
        internet_message_id: Some(message_id.to_owned()),
        correlator: Some(message_id.to_owned()),
        priority: Some(match spec.priority {
            Priority::High => 1,
            Priority::Normal => 2,
            Priority::Low => 3,
        }),
        text: spec.text.clone(),
        html: spec.html.clone(),
        rtf,
        recipients,
        attachments,
        ..Default::default()
    }
}

/// What a TNEF message adds to a spec: bodies (the text of an RTF-only body
/// when the spec has no text), recipients and sender when the spec has none,
/// attachments. Embedded messages become application/ms-tnef
/// attachments holding their own TNEF stream.
pub fn from_tnef(t: &TnefMessage, spec: &mut MessageSpec) -> Result<(), super::TnefError> {
    if let Some(text) = &t.text {
        spec.text = Some(normalise_newlines(text));
    }
    if let Some(html) = &t.html {
        spec.html = Some(normalise_newlines(html));
    }
    // An RTF-only body (no text, no HTML in winmail.dat) gives its plain text,
    // unless the outer message already has a text body.
    if let (None, None, Some(rtf), true) = (
        &t.text,
        &t.html,
        &t.rtf,
        spec.text.as_deref().is_none_or(str::is_empty),
    ) {
        let text = normalise_newlines(&rtf_html::plain_text(rtf));
        spec.text = Some(text.trim_end_matches('\n').to_owned() + "\n");
    }
    if spec.subject.is_none() {
        spec.subject = t.subject.clone().filter(|s| !s.is_empty());
    }
    if spec.from.is_none() {
        spec.from = t
            .from
            .as_ref()
            .filter(|a| a.email.contains('@'))
            .map(|a| Mailbox {
                name: a.name.clone(),
                email: a.email.clone(),
            });
    }
    if spec.to.is_empty() && spec.cc.is_empty() {
        for r in &t.recipients {
            let m = Mailbox {
                name: r.address.name.clone(),
                email: r.address.email.clone(),
            };
            match r.kind {
                RecipientKind::Cc => spec.cc.push(m),
                RecipientKind::Bcc => spec.bcc.push(m),
                RecipientKind::To if m.email.contains('@') => spec.to.push(m),
                _ => {}
            }
        }
    }
    for a in &t.attachments {
        let (content, content_type, filename) = match &a.embedded {
            Some(inner) => (
                super::encode(inner)?,
                MS_TNEF.to_owned(),
                Some(format!(
                    "{}.dat",
                    inner
                        .subject
                        .as_deref()
                        .filter(|s| !s.is_empty())
                        .unwrap_or("message")
                )),
            ),
            None => (
                a.data.clone(),
                a.mime_type
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".into()),
                a.filename().map(str::to_owned),
            ),
        };
        spec.attachments.push(Attachment {
            filename,
            content_type,
            content,
            inline: a.hidden,
            content_id: a.content_id.clone(),
        });
    }
    Ok(())
}

/// The message id (with brackets) that `build` gives `spec`: its own, or
/// one generated from the seed, exactly as `build` would.
fn message_id_of(spec: &MessageSpec, options: &BuildOptions) -> Result<String, BuildError> {
    let from = spec.from.as_ref().ok_or(BuildError::MissingFrom)?;
    Ok(match &spec.message_id {
        Some(id) => crate::spec::bracket_id(id),
        None => IdSource::new(options.seed).message_id(from.domain()),
    })
}

/// The winmail.dat that `build` attaches for `spec` (with `tnef: true`):
/// the bytes of `postwire tnef encode`.
pub fn encode_spec(spec: &MessageSpec, options: &BuildOptions) -> Result<Vec<u8>, BuildError> {
    let message_id = message_id_of(spec, options)?;
    let date = spec.date.map_or(options.now, |d| d.unix);
    super::encode(&to_tnef(spec, &message_id, date))
        .map_err(|e| BuildError::Write(format!("winmail.dat: {e}")))
}

/// `build` for a spec with `tnef: true` (see the module doc for the shape).
pub fn build_tnef(spec: &MessageSpec, options: &BuildOptions) -> Result<Vec<u8>, BuildError> {
    let message_id = message_id_of(spec, options)?;
    let winmail = encode_spec(spec, options)?;
    let mut outer = spec.clone();
    outer.tnef = false;
    outer.message_id = Some(message_id.clone());
    outer.text = Some(spec.text.clone().unwrap_or_default());
    outer.html = None;
    outer.attachments = vec![Attachment {
        filename: Some(WINMAIL_DAT.into()),
        content_type: MS_TNEF.into(),
        content: winmail,
        inline: false,
        content_id: None,
    }];
    outer
        .headers
        .push(("X-MS-TNEF-Correlator".into(), message_id));
    build_mime(&outer, options)
}

/// For `parse`: decodes the first application/ms-tnef attachment of `spec`
/// and surfaces its content (see the module doc), keeping the raw file as
/// the last attachment. A winmail.dat that does not decode is left as it
/// is, and a warning says why.
pub fn surface(spec: &mut MessageSpec, warnings: &mut Vec<String>) {
    let Some(index) = spec.attachments.iter().position(is_tnef_attachment) else {
        return;
    };
    let raw = spec.attachments.remove(index);
    let name = raw.filename.as_deref().unwrap_or(WINMAIL_DAT);
    let decoded = super::decode_with(&raw.content, super::DecodeOptions::default()).and_then(|t| {
        let mut next = spec.clone();
        from_tnef(&t.message, &mut next)?;
        Ok((next, t.warnings))
    });
    match decoded {
        Ok((next, damage)) => {
            for w in damage {
                warnings.push(format!("attachments[{index}]: {name}: {w}"));
            }
            *spec = next;
            spec.tnef = true;
            // `build` writes the correlator again from the message id.
            spec.headers
                .retain(|(name, _)| !name.eq_ignore_ascii_case(CORRELATOR_HEADER));
            spec.attachments.push(raw);
        }
        Err(e) => {
            warnings.push(format!(
                "attachments[{index}]: {name} could not be decoded as TNEF: {e}"
            ));
            // Left where it was, as any other attachment.
            spec.attachments.insert(index, raw);
        }
    }
}
