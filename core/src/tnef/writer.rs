//! The TNEF writer: a [`TnefMessage`] as a winmail.dat, in the order that
//! MimeKit's TnefWriter (and Outlook) use: attTnefVersion, attOemCodepage,
//! the other message attributes, attMAPIProps last among them, then each
//! attachment opened by attAttachRendData and closed by attAttachment.
//! Every attribute carries the sum of its data bytes modulo 65536.
//!
//! Legacy 8-bit attributes are written in Windows-1252 (and attOemCodepage
//! says so); the MAPI properties that carry the same values are UTF-16, so
//! nothing is lost for readers that use them (Outlook, ytnef, tnef).

use super::attributes::{self as att, RendData};
use super::codepage;
use super::error::{Result, TnefError};
use super::mapi::{self, MapiProperty, PropValue, tags};
use super::model::{TnefAttachment, TnefMessage, TnefRecipient};
use super::rtf;

/// Message properties the writer derives from the model's fields; copies of
/// them in `properties` are not written twice.
const DERIVED_MESSAGE_TAGS: &[u16] = &[
    tags::MESSAGE_CLASS,
    tags::SUBJECT,
    tags::CONVERSATION_TOPIC,
    tags::CLIENT_SUBMIT_TIME,
    tags::MESSAGE_DELIVERY_TIME,
    tags::SENDER_NAME,
    tags::SENDER_EMAIL,
    tags::SENDER_ADDRTYPE,
    tags::SENT_REPRESENTING_NAME,
    tags::SENT_REPRESENTING_EMAIL,
    tags::SENT_REPRESENTING_ADDRTYPE,
    tags::INTERNET_MESSAGE_ID,
    tags::TNEF_CORRELATION_KEY,
    tags::BODY,
    tags::HTML,
    tags::INTERNET_CPID,
    tags::RTF_COMPRESSED,
    tags::RTF_IN_SYNC,
    tags::NATIVE_BODY,
];

/// Attachment properties derived from the model's fields.
const DERIVED_ATTACHMENT_TAGS: &[u16] = &[
    tags::ATTACH_METHOD,
    tags::ATTACH_LONG_FILENAME,
    tags::ATTACH_FILENAME,
    tags::DISPLAY_NAME,
    tags::ATTACH_EXTENSION,
    tags::ATTACH_MIME_TAG,
    tags::ATTACH_CONTENT_ID,
    tags::ATTACH_CONTENT_LOCATION,
    tags::ATTACH_DATA,
    tags::ATTACH_SIZE,
    tags::ATTACHMENT_HIDDEN,
    tags::RENDERING_POSITION,
    tags::LAST_MODIFICATION_TIME,
];

/// Recipient properties derived from the model's fields.
const DERIVED_RECIPIENT_TAGS: &[u16] = &[
    tags::RECIPIENT_TYPE,
    tags::DISPLAY_NAME,
    tags::EMAIL_ADDRESS,
    tags::ADDRTYPE,
    tags::SMTP_ADDRESS,
];

/// Serialises a message as a TNEF stream.
pub(crate) fn write(m: &TnefMessage) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    out.extend_from_slice(&att::SIGNATURE.to_le_bytes());
    out.extend_from_slice(&m.legacy_key.to_le_bytes());
    let msg = att::LEVEL_MESSAGE;
    attribute(
        &mut out,
        msg,
        att::ATT_TNEF_VERSION,
        &att::TNEF_VERSION.to_le_bytes(),
    )?;
    let mut cp = codepage::DEFAULT_CODE_PAGE.to_le_bytes().to_vec();
    cp.extend_from_slice(&0u32.to_le_bytes());
    attribute(&mut out, msg, att::ATT_OEM_CODEPAGE, &cp)?;
    let class = m.message_class.as_deref().unwrap_or("IPM.Note");
    let legacy_class = att::class_to_legacy(class);
    attribute(
        &mut out,
        msg,
        att::ATT_MESSAGE_CLASS,
        &string8z(legacy_class),
    )?;
    if let Some(from) = &m.from {
        let name = codepage::encode_1252(from.name.as_deref().unwrap_or(""));
        attribute(
            &mut out,
            msg,
            att::ATT_FROM,
            &att::write_from(&name, &codepage::encode_1252(&from.email)),
        )?;
    }
    if let Some(subject) = &m.subject {
        attribute(&mut out, msg, att::ATT_SUBJECT, &string8z(subject))?;
    }
    for (id, date) in [
        (att::ATT_DATE_SENT, m.date_sent),
        (att::ATT_DATE_RECD, m.date_received),
        (att::ATT_DATE_MODIFIED, m.date_modified),
    ] {
        if let Some(secs) = date {
            attribute(&mut out, msg, id, &att::write_date(secs))?;
        }
    }
    if let Some(id) = &m.message_id {
        attribute(&mut out, msg, att::ATT_MESSAGE_ID, &string8z(id))?;
    }
    if let Some(p) = m.priority {
        attribute(&mut out, msg, att::ATT_PRIORITY, &p.to_le_bytes())?;
    }
    if let Some(text) = &m.text {
        attribute(&mut out, msg, att::ATT_BODY, &codepage::encode_1252(text))?;
    }
    for raw in m.other_attributes.iter().filter(|a| a.level == msg) {
        attribute(&mut out, msg, raw.id, &raw.data)?;
    }
    if !m.recipients.is_empty() {
        attribute(
            &mut out,
            msg,
            att::ATT_RECIP_TABLE,
            &recipient_table(&m.recipients)?,
        )?;
    }
    let mut props = Vec::new();
    mapi::write_props(&mut props, &message_props(m)?)?;
    attribute(&mut out, msg, att::ATT_MAPI_PROPS, &props)?;
    for a in &m.attachments {
        write_attachment(&mut out, a)?;
    }
    Ok(out)
}

/// Writes one attribute: level, id, length, data, checksum.
fn attribute(out: &mut Vec<u8>, level: u8, id: u32, data: &[u8]) -> Result<()> {
    let len = u32::try_from(data.len()).map_err(|_| TnefError::TooLarge {
        what: att::name(id),
        len: data.len(),
    })?;
    out.push(level);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&att::checksum(data).to_le_bytes());
    Ok(())
}

fn string8z(s: &str) -> Vec<u8> {
    let mut v = codepage::encode_1252(s);
    v.push(0);
    v
}

fn unicode(id: u16, s: &str) -> MapiProperty {
    MapiProperty::new(id, PropValue::Unicode(s.to_owned()))
}

/// The message's own properties, then the pass-through ones.
fn message_props(m: &TnefMessage) -> Result<Vec<MapiProperty>> {
    let mut p = Vec::new();
    p.push(unicode(
        tags::MESSAGE_CLASS,
        m.message_class.as_deref().unwrap_or("IPM.Note"),
    ));
    if let Some(subject) = &m.subject {
        p.push(unicode(tags::SUBJECT, subject));
        p.push(unicode(tags::CONVERSATION_TOPIC, subject));
    }
    if let Some(secs) = m.date_sent {
        p.push(MapiProperty::new(
            tags::CLIENT_SUBMIT_TIME,
            PropValue::SysTime(att::unix_to_filetime(secs)),
        ));
    }
    if let Some(secs) = m.date_received {
        p.push(MapiProperty::new(
            tags::MESSAGE_DELIVERY_TIME,
            PropValue::SysTime(att::unix_to_filetime(secs)),
        ));
    }
    if let Some(from) = &m.from {
        for (name, kind, email) in [
            (tags::SENDER_NAME, tags::SENDER_ADDRTYPE, tags::SENDER_EMAIL),
            (
                tags::SENT_REPRESENTING_NAME,
                tags::SENT_REPRESENTING_ADDRTYPE,
                tags::SENT_REPRESENTING_EMAIL,
            ),
        ] {
            p.push(unicode(name, from.name.as_deref().unwrap_or(&from.email)));
            p.push(unicode(
                kind,
                if from.addr_type.is_empty() {
                    "SMTP"
                } else {
                    &from.addr_type
                },
            ));
            p.push(unicode(email, &from.email));
        }
    }
    if let Some(id) = &m.internet_message_id {
        p.push(unicode(tags::INTERNET_MESSAGE_ID, id));
    }
    if let Some(c) = &m.correlator {
        let mut key = c.as_bytes().to_vec();
        key.push(0);
        p.push(MapiProperty::new(
            tags::TNEF_CORRELATION_KEY,
            PropValue::Binary(key),
        ));
    }
    if let Some(text) = &m.text {
        p.push(unicode(tags::BODY, text));
    }
    if let Some(html) = &m.html {
        p.push(MapiProperty::new(
            tags::HTML,
            PropValue::Binary(html.as_bytes().to_vec()),
        ));
        p.push(MapiProperty::new(
            tags::INTERNET_CPID,
            PropValue::Long(65001),
        ));
    }
    if let Some(r) = &m.rtf {
        p.push(MapiProperty::new(
            tags::RTF_COMPRESSED,
            PropValue::Binary(rtf::compress(r)?),
        ));
        p.push(MapiProperty::new(
            tags::RTF_IN_SYNC,
            PropValue::Boolean(true),
        ));
    }
    let native = match (&m.html, &m.rtf, &m.text) {
        (Some(_), _, _) => Some(3),
        (None, Some(_), _) => Some(2),
        (None, None, Some(_)) => Some(1),
        _ => None,
    };
    if let Some(n) = native {
        p.push(MapiProperty::new(tags::NATIVE_BODY, PropValue::Long(n)));
    }
    p.extend(
        m.properties
            .iter()
            .filter(|x| x.name.is_some() || !DERIVED_MESSAGE_TAGS.contains(&x.id))
            .cloned(),
    );
    Ok(p)
}

fn recipient_table(recipients: &[TnefRecipient]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let n = u32::try_from(recipients.len()).map_err(|_| TnefError::TooLarge {
        what: "recipient table",
        len: recipients.len(),
    })?;
    out.extend_from_slice(&n.to_le_bytes());
    for r in recipients {
        let a = &r.address;
        let mut p = vec![
            MapiProperty::new(tags::RECIPIENT_TYPE, PropValue::Long(r.kind.to_mapi())),
            unicode(tags::DISPLAY_NAME, a.name.as_deref().unwrap_or(&a.email)),
            unicode(
                tags::ADDRTYPE,
                if a.addr_type.is_empty() {
                    "SMTP"
                } else {
                    &a.addr_type
                },
            ),
            unicode(tags::EMAIL_ADDRESS, &a.email),
        ];
        if a.addr_type.is_empty() || a.addr_type.eq_ignore_ascii_case("SMTP") {
            p.push(unicode(tags::SMTP_ADDRESS, &a.email));
        }
        p.extend(
            r.properties
                .iter()
                .filter(|x| x.name.is_some() || !DERIVED_RECIPIENT_TAGS.contains(&x.id))
                .cloned(),
        );
        mapi::write_props(&mut out, &p)?;
    }
    Ok(out)
}

fn write_attachment(out: &mut Vec<u8>, a: &TnefAttachment) -> Result<()> {
    let lvl = att::LEVEL_ATTACHMENT;
    let rend = a.rend_data.unwrap_or_else(RendData::file);
    attribute(out, lvl, att::ATT_ATTACH_REND_DATA, &rend.write())?;
    let filename = a.filename().map(str::to_owned);
    if let Some(title) = a.title.as_deref().or(filename.as_deref()) {
        attribute(out, lvl, att::ATT_ATTACH_TITLE, &string8z(title))?;
    }
    if let Some(secs) = a.create_date {
        attribute(
            out,
            lvl,
            att::ATT_ATTACH_CREATE_DATE,
            &att::write_date(secs),
        )?;
    }
    if let Some(secs) = a.modify_date {
        attribute(
            out,
            lvl,
            att::ATT_ATTACH_MODIFY_DATE,
            &att::write_date(secs),
        )?;
    }
    if a.embedded.is_none() {
        attribute(out, lvl, att::ATT_ATTACH_DATA, &a.data)?;
    }
    if let Some(meta) = &a.meta_file {
        attribute(out, lvl, att::ATT_ATTACH_META_FILE, meta)?;
    }
    for raw in &a.other_attributes {
        attribute(out, lvl, raw.id, &raw.data)?;
    }
    let mut p = Vec::new();
    let method = if a.embedded.is_some() {
        5
    } else {
        a.method.filter(|&m| m != 5).unwrap_or(1)
    };
    p.push(MapiProperty::new(
        tags::ATTACH_METHOD,
        PropValue::Long(method),
    ));
    if let Some(name) = &filename {
        p.push(unicode(tags::ATTACH_LONG_FILENAME, name));
        p.push(unicode(
            tags::ATTACH_FILENAME,
            a.title.as_deref().unwrap_or(name),
        ));
        p.push(unicode(tags::DISPLAY_NAME, name));
        if let Some(dot) = name.rfind('.') {
            p.push(unicode(tags::ATTACH_EXTENSION, &name[dot..]));
        }
    }
    if let Some(v) = &a.mime_type {
        p.push(unicode(tags::ATTACH_MIME_TAG, v));
    }
    if let Some(v) = &a.content_id {
        p.push(unicode(tags::ATTACH_CONTENT_ID, v));
    }
    if let Some(v) = &a.content_location {
        p.push(unicode(tags::ATTACH_CONTENT_LOCATION, v));
    }
    if a.hidden {
        p.push(MapiProperty::new(
            tags::ATTACHMENT_HIDDEN,
            PropValue::Boolean(true),
        ));
    }
    p.push(MapiProperty::new(
        tags::RENDERING_POSITION,
        PropValue::Long(-1),
    ));
    if let Some(secs) = a.modify_date {
        p.push(MapiProperty::new(
            tags::LAST_MODIFICATION_TIME,
            PropValue::SysTime(att::unix_to_filetime(secs)),
        ));
    }
    if let Some(inner) = &a.embedded {
        let mut obj = mapi::IID_IMESSAGE.to_vec();
        obj.extend_from_slice(&write(inner)?);
        p.push(MapiProperty {
            id: tags::ATTACH_DATA,
            prop_type: mapi::types::OBJECT,
            name: None,
            value: PropValue::Object(obj),
        });
    } else {
        let size = i32::try_from(a.data.len()).unwrap_or(i32::MAX);
        p.push(MapiProperty::new(tags::ATTACH_SIZE, PropValue::Long(size)));
    }
    p.extend(
        a.properties
            .iter()
            .filter(|x| x.name.is_some() || !DERIVED_ATTACHMENT_TAGS.contains(&x.id))
            .cloned(),
    );
    let mut data = Vec::new();
    mapi::write_props(&mut data, &p)?;
    attribute(out, lvl, att::ATT_ATTACHMENT, &data)
}
