//! The TNEF reader ([MS-OXTNEF] 2.1.3): signature and legacy key, then
//! attributes, each checked against its checksum, then their meaning.
//!
//! Strict where the format is checkable (signature, lengths, checksums,
//! known attribute sizes, compressed-RTF CRC) and lenient where real writers
//! differ: any legacy key, attachments without attAttachRendData, message
//! attributes after attachments, missing padding after the last value.
//! Lengths from the input are checked against the bytes that remain before
//! anything is read or sized by them.
//!
//! Two modes ([`Notes::strict`]): strict refuses the whole stream at the
//! first fault, as before; lenient (the default of the public entry points)
//! keeps every attribute and attachment it could read and notes each fault,
//! with its offset and what was lost, as a warning:
//! - an attribute whose checksum is wrong but whose framing holds (the next
//!   attribute, or the end, follows it) is kept;
//! - an attribute whose framing is broken (bad level, length past the end,
//!   checksum wrong and no attribute after it) is skipped, and reading
//!   resumes at the next offset where a known attribute with a matching
//!   checksum starts (the attribute framing allows this resync), or stops;
//! - bytes after the last attribute that are none are ignored;
//! - a stream in which not one attribute can be read is an error still.
//! - an attribute whose content cannot be read (a bad date, MAPI property
//!   stream, compressed RTF) is left out, the rest of the message kept.

use super::attributes::{self as att, RendData};
use super::codepage;
use super::cursor::Cursor;
use super::error::{Result, TnefError};
use super::mapi::{self, MapiProperty, PropValue, find, tags};
use super::model::{
    RawAttribute, RecipientKind, TnefAddress, TnefAttachment, TnefMessage, TnefRecipient,
};
use super::rtf;
use super::rtf_html;

/// How deep embedded messages may nest.
pub const MAX_DEPTH: usize = 16;

/// One attribute as found in the stream.
struct Attr<'a> {
    level: u8,
    id: u32,
    data: &'a [u8],
    /// Offset of the data in the outermost stream.
    offset: usize,
}

/// How faults are treated, and the warnings of a lenient reading.
#[derive(Debug, Default)]
pub(crate) struct Notes {
    /// Refuse the stream at the first fault (an error) instead of warning.
    pub(crate) strict: bool,
    /// What a lenient reading left out or repaired, each with its offset.
    pub(crate) warnings: Vec<String>,
}

impl Notes {
    /// A fault: the error when strict, else a warning saying what was `lost`.
    fn fault(&mut self, e: TnefError, lost: &str) -> Result<()> {
        if self.strict {
            return Err(e);
        }
        self.warnings.push(format!("{e}; {lost}"));
        Ok(())
    }
}

/// The size of an attribute with no data: level, id, length, checksum.
const ATTR_OVERHEAD: usize = 1 + 4 + 4 + 2;

/// Decodes a TNEF stream (a winmail.dat).
pub(crate) fn read(data: &[u8], notes: &mut Notes) -> Result<TnefMessage> {
    read_at(data, 0, 0, notes)
}

fn read_at(data: &[u8], base: usize, depth: usize, notes: &mut Notes) -> Result<TnefMessage> {
    if depth > MAX_DEPTH {
        return Err(TnefError::TooDeep {
            offset: base,
            max: MAX_DEPTH,
        });
    }
    let mut cur = Cursor::new(data, base);
    let signature = cur.u32("TNEF signature")?;
    if signature != att::SIGNATURE {
        return Err(TnefError::BadSignature { found: signature });
    }
    let legacy_key = cur.u16("TNEF legacy key")?;
    let mut attrs = Vec::new();
    let mut sums: Option<Vec<u16>> = None;
    while !cur.is_empty() {
        let at = cur.offset() - base;
        let e = match read_attr(&mut cur, data, base, notes) {
            Ok(a) => {
                attrs.push(a);
                continue;
            }
            Err(e) => e,
        };
        let sums = sums.get_or_insert_with(|| prefix_sums(data));
        match resync(data, sums, at + 1) {
            Some(next) => {
                let lost = format!(
                    "bytes {}..{} skipped, reading resumed at offset {}",
                    base + at,
                    base + next,
                    base + next
                );
                notes.fault(e, &lost)?;
                cur = Cursor::new(data.get(next..).unwrap_or_default(), base + next);
            }
            // Not one attribute could be read: no TNEF to speak of.
            None if attrs.is_empty() => return Err(e),
            None => {
                let rest = data.len() - at;
                let lost = if rest >= ATTR_OVERHEAD {
                    format!("the {rest} bytes from offset {} are lost", base + at)
                } else {
                    format!(
                        "{rest} trailing bytes after the last attribute ignored (offset {})",
                        base + at
                    )
                };
                notes.fault(e, &lost)?;
                break;
            }
        }
    }
    interpret(legacy_key, &attrs, depth, notes)
}

/// `sums[i]` is the sum of `data[..i]` modulo 65536, so that the checksum
/// of any range costs two lookups while looking for a place to resume.
fn prefix_sums(data: &[u8]) -> Vec<u16> {
    let mut out = Vec::with_capacity(data.len() + 1);
    let mut sum = 0u16;
    out.push(sum);
    for &b in data {
        sum = sum.wrapping_add(u16::from(b));
        out.push(sum);
    }
    out
}

/// Whether a well-framed attribute starts at `pos`: level 1 or 2, a known
/// attribute id, a length that fits and a checksum that matches.
fn frames_at(data: &[u8], sums: &[u16], pos: usize) -> bool {
    let word = |at: usize| {
        data.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let (Some(&level), Some(id), Some(len)) = (data.get(pos), word(pos + 1), word(pos + 5)) else {
        return false;
    };
    if (level != att::LEVEL_MESSAGE && level != att::LEVEL_ATTACHMENT)
        || att::name(id) == att::name(0)
    {
        return false;
    }
    let start = pos + 9;
    let Some(end) = usize::try_from(len).ok().and_then(|l| start.checked_add(l)) else {
        return false;
    };
    let (Some(&lo), Some(&hi), Some(stored)) = (
        sums.get(start),
        sums.get(end),
        data.get(end..end + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]])),
    ) else {
        return false;
    };
    hi.wrapping_sub(lo) == stored
}

/// The first offset from `from` where a well-framed attribute starts.
fn resync(data: &[u8], sums: &[u16], from: usize) -> Option<usize> {
    (from..data.len()).find(|&p| frames_at(data, sums, p))
}

fn read_attr<'a>(
    cur: &mut Cursor<'a>,
    stream: &'a [u8],
    base: usize,
    notes: &mut Notes,
) -> Result<Attr<'a>> {
    let header_at = cur.offset();
    let level = cur.u8("attribute level")?;
    if level != att::LEVEL_MESSAGE && level != att::LEVEL_ATTACHMENT {
        return Err(TnefError::BadLevel {
            offset: header_at,
            level,
        });
    }
    let id = cur.u32("attribute id")?;
    let len = cur.len_u32("attribute length")?;
    let offset = cur.offset();
    let value = cur.take(len, "attribute data")?;
    let stored = cur.u16("attribute checksum")?;
    let computed = att::checksum(value);
    if stored != computed {
        let e = TnefError::Checksum {
            offset: header_at,
            attribute: id,
            stored,
            computed,
        };
        // Kept when the framing holds: the data is damaged, not the stream.
        let next = cur.offset() - base;
        let framed = next == stream.len() || {
            let mut probe = cur.clone();
            read_header_only(&mut probe)
        };
        if notes.strict || !framed {
            return Err(e);
        }
        notes.fault(e, "its data is kept as it is")?;
    }
    Ok(Attr {
        level,
        id,
        data: value,
        offset,
    })
}

/// Whether an attribute header (level, id, a length that fits) follows.
fn read_header_only(cur: &mut Cursor<'_>) -> bool {
    matches!(
        cur.u8("attribute level"),
        Ok(att::LEVEL_MESSAGE | att::LEVEL_ATTACHMENT)
    ) && cur.u32("attribute id").is_ok()
        && cur
            .len_u32("attribute length")
            .is_ok_and(|len| len + 2 <= cur.remaining())
}

fn bad(a: &Attr<'_>, reason: impl Into<String>) -> TnefError {
    TnefError::BadAttribute {
        offset: a.offset,
        name: att::name(a.id),
        reason: reason.into(),
    }
}

fn u32_of(a: &Attr<'_>) -> Result<u32> {
    let b = a
        .data
        .get(..4)
        .ok_or_else(|| bad(a, format!("needs 4 bytes, found {}", a.data.len())))?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Attachment attributes that fill a field of [`TnefAttachment`].
const ATTACHMENT_FIELDS: &[u32] = &[
    att::ATT_ATTACH_TITLE,
    att::ATT_ATTACH_DATA,
    att::ATT_ATTACH_META_FILE,
    att::ATT_ATTACH_CREATE_DATE,
    att::ATT_ATTACH_MODIFY_DATE,
];

/// Which attachment-level attributes the current attachment already has, so
/// that a repeat (or anything after attAttachment) starts the next one.
#[derive(Default)]
struct Seen {
    closed: bool,
    ids: Vec<u32>,
}

fn interpret(
    legacy_key: u16,
    attrs: &[Attr<'_>],
    depth: usize,
    notes: &mut Notes,
) -> Result<TnefMessage> {
    let mut m = TnefMessage {
        legacy_key,
        code_page: codepage::DEFAULT_CODE_PAGE,
        ..Default::default()
    };
    // The code page first: 8-bit strings anywhere depend on it.
    if let Some(a) = attrs.iter().find(|a| a.id == att::ATT_OEM_CODEPAGE) {
        match u32_of(a) {
            Ok(0) => {}
            Ok(cp) => m.code_page = cp,
            Err(e) => notes.fault(e, "the default code page is used")?,
        }
    }
    let cp = m.code_page;
    let text = |a: &Attr<'_>| codepage::decode(codepage::trim_nul(a.data), cp);

    let mut att_body = None;
    let mut att_from = None;
    let mut current: Option<(TnefAttachment, Seen)> = None;
    let mut attachments = Vec::new();

    for a in attrs {
        if a.level == att::LEVEL_ATTACHMENT {
            let starts_new = match &current {
                None => true,
                Some((_, seen)) => {
                    a.id == att::ATT_ATTACH_REND_DATA || seen.closed || seen.ids.contains(&a.id)
                }
            };
            if starts_new {
                if let Some((done, _)) = current.take() {
                    attachments.push(done);
                }
                current = Some((TnefAttachment::default(), Seen::default()));
            }
            if let Some((att_, seen)) = current.as_mut() {
                // Only the model's own attributes count for the repeat rule
                // (a bounded list, whatever the input holds).
                if ATTACHMENT_FIELDS.contains(&a.id) {
                    seen.ids.push(a.id);
                }
                if let Err(e) = read_attachment_attr(att_, a, cp, depth, notes) {
                    let lost = format!(
                        "attribute {} of attachment {} left out",
                        att::name(a.id),
                        attachments.len() + 1
                    );
                    notes.fault(e, &lost)?;
                }
                if a.id == att::ATT_ATTACHMENT {
                    seen.closed = true;
                }
            }
            continue;
        }
        let result = (|| -> Result<()> {
            match a.id {
                att::ATT_TNEF_VERSION => m.version = Some(u32_of(a)?),
                att::ATT_OEM_CODEPAGE => {}
                att::ATT_MESSAGE_CLASS => {
                    m.message_class = Some(att::class_from_legacy(&text(a)).to_owned());
                }
                att::ATT_SUBJECT => m.subject = Some(text(a)),
                att::ATT_MESSAGE_ID => m.message_id = Some(text(a)),
                att::ATT_BODY => att_body = Some(text(a)),
                att::ATT_DATE_SENT => m.date_sent = Some(att::read_date(a.data, a.offset, a.id)?),
                att::ATT_DATE_RECD => {
                    m.date_received = Some(att::read_date(a.data, a.offset, a.id)?)
                }
                att::ATT_DATE_MODIFIED => {
                    m.date_modified = Some(att::read_date(a.data, a.offset, a.id)?)
                }
                att::ATT_PRIORITY => {
                    let b = a.data.get(..2).ok_or_else(|| bad(a, "needs 2 bytes"))?;
                    m.priority = Some(u16::from_le_bytes([b[0], b[1]]));
                }
                att::ATT_FROM => {
                    let (name, addr) = att::read_from(a.data, a.offset)?;
                    att_from = Some((codepage::decode(name, cp), codepage::decode(addr, cp)));
                }
                att::ATT_MAPI_PROPS => {
                    m.properties
                        .extend(mapi::read_props(&mut Cursor::new(a.data, a.offset), cp)?);
                }
                att::ATT_RECIP_TABLE => m.recipients.extend(read_recipients(a, cp)?),
                _ => m.other_attributes.push(RawAttribute {
                    level: a.level,
                    id: a.id,
                    data: a.data.to_vec(),
                }),
            }
            Ok(())
        })();
        if let Err(e) = result {
            notes.fault(
                e,
                &format!("message attribute {} left out", att::name(a.id)),
            )?;
        }
    }
    if let Some((done, _)) = current.take() {
        attachments.push(done);
    }
    m.attachments = attachments;
    apply_message_props(&mut m, att_body, att_from, notes)?;
    Ok(m)
}

fn read_recipients(a: &Attr<'_>, cp: u32) -> Result<Vec<TnefRecipient>> {
    let mut cur = Cursor::new(a.data, a.offset);
    let rows = cur.u32("recipient count")? as usize;
    if rows > cur.remaining() / 4 {
        return Err(bad(
            a,
            format!(
                "{rows} recipients announced, only {} bytes follow",
                cur.remaining()
            ),
        ));
    }
    let mut out = Vec::new();
    for _ in 0..rows {
        let props = mapi::read_props(&mut cur, cp)?;
        let kind = find(&props, tags::RECIPIENT_TYPE)
            .and_then(PropValue::as_i64)
            .map_or(RecipientKind::To, RecipientKind::from_mapi);
        let address = address_of(
            &props,
            tags::DISPLAY_NAME,
            tags::ADDRTYPE,
            tags::EMAIL_ADDRESS,
            tags::SMTP_ADDRESS,
        );
        out.push(TnefRecipient {
            kind,
            address: address.unwrap_or(TnefAddress {
                name: None,
                email: String::new(),
                addr_type: String::new(),
            }),
            properties: props,
        });
    }
    Ok(out)
}

/// PidTagSenderSmtpAddress.
const SENDER_SMTP_ADDRESS: u16 = 0x5D01;
/// PidTagSentRepresentingSmtpAddress.
const SENT_REPRESENTING_SMTP_ADDRESS: u16 = 0x5D02;

/// An address from name / type / address / SMTP-address properties,
/// preferring the SMTP address when the type is Exchange's.
fn address_of(
    props: &[MapiProperty],
    name: u16,
    kind: u16,
    email: u16,
    smtp: u16,
) -> Option<TnefAddress> {
    let s = |id| {
        find(props, id)
            .and_then(PropValue::as_str)
            .filter(|s| !s.is_empty())
    };
    let name = s(name).map(str::to_owned);
    let addr_type = s(kind).unwrap_or("SMTP").to_owned();
    let (email, addr_type) = match (s(email), s(smtp)) {
        (Some(e), _) if addr_type.eq_ignore_ascii_case("SMTP") => (e.to_owned(), addr_type),
        (_, Some(smtp)) => (smtp.to_owned(), "SMTP".to_owned()),
        (Some(e), None) => (e.to_owned(), addr_type),
        (None, None) => {
            return name.map(|n| TnefAddress {
                name: Some(n),
                email: String::new(),
                addr_type,
            });
        }
    };
    // Writers (ours too) repeat the address as the display name when there is none.
    let name = name.filter(|n| *n != email);
    Some(TnefAddress {
        name,
        email,
        addr_type,
    })
}

fn apply_message_props(
    m: &mut TnefMessage,
    att_body: Option<String>,
    att_from: Option<(String, String)>,
    notes: &mut Notes,
) -> Result<()> {
    let props = std::mem::take(&mut m.properties);
    let s = |id| {
        find(&props, id)
            .and_then(PropValue::as_str)
            .map(str::to_owned)
    };
    let time = |id| match find(&props, id) {
        Some(PropValue::SysTime(ft)) => Some(att::filetime_to_unix(*ft)),
        _ => None,
    };
    if let Some(v) = s(tags::MESSAGE_CLASS) {
        m.message_class = Some(v);
    }
    if let Some(v) = s(tags::SUBJECT) {
        m.subject = Some(v);
    }
    m.date_sent = time(tags::CLIENT_SUBMIT_TIME).or(m.date_sent);
    m.date_received = time(tags::MESSAGE_DELIVERY_TIME).or(m.date_received);
    m.internet_message_id = s(tags::INTERNET_MESSAGE_ID);
    m.correlator = match find(&props, tags::TNEF_CORRELATION_KEY) {
        Some(PropValue::Binary(b)) => {
            let t = codepage::trim_nul(b);
            (!t.is_empty() && t.iter().all(|c| (0x20..0x7F).contains(c)))
                .then(|| String::from_utf8_lossy(t).into_owned())
        }
        Some(v) => v.as_str().map(str::to_owned),
        None => None,
    };
    m.from = address_of(
        &props,
        tags::SENDER_NAME,
        tags::SENDER_ADDRTYPE,
        tags::SENDER_EMAIL,
        SENDER_SMTP_ADDRESS,
    )
    .or_else(|| {
        address_of(
            &props,
            tags::SENT_REPRESENTING_NAME,
            tags::SENT_REPRESENTING_ADDRTYPE,
            tags::SENT_REPRESENTING_EMAIL,
            SENT_REPRESENTING_SMTP_ADDRESS,
        )
    })
    .or_else(|| {
        att_from.map(|(name, addr)| {
            let (addr_type, email) = match addr.split_once(':') {
                Some((t, e)) => (t.to_owned(), e.to_owned()),
                None => ("SMTP".to_owned(), addr),
            };
            TnefAddress {
                name: (!name.is_empty()).then_some(name),
                email,
                addr_type,
            }
        })
    });
    m.text = s(tags::BODY).or(att_body);
    let internet_cp = find(&props, tags::INTERNET_CPID)
        .and_then(PropValue::as_i64)
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(m.code_page);
    m.html = match find(&props, tags::HTML) {
        Some(PropValue::Binary(b)) => Some(codepage::decode(codepage::trim_nul(b), internet_cp)),
        Some(v) => v.as_str().map(str::to_owned),
        None => None,
    };
    if let Some(PropValue::Binary(c)) = find(&props, tags::RTF_COMPRESSED) {
        match rtf::decompress(c) {
            Ok(rtf) => {
                match rtf_html::deencapsulate(&rtf) {
                    Some(rtf_html::Encapsulated::Html(h)) if m.html.is_none() => m.html = Some(h),
                    Some(rtf_html::Encapsulated::Text(t)) if m.text.is_none() => m.text = Some(t),
                    _ => {}
                }
                m.rtf = Some(rtf);
            }
            Err(e) => notes.fault(
                e,
                "the RTF body is left out (its compressed bytes stay in the properties)",
            )?,
        }
    }
    m.properties = props;
    Ok(())
}

fn read_attachment_attr(
    x: &mut TnefAttachment,
    a: &Attr<'_>,
    cp: u32,
    depth: usize,
    notes: &mut Notes,
) -> Result<()> {
    match a.id {
        att::ATT_ATTACH_REND_DATA => x.rend_data = Some(RendData::read(a.data, a.offset)?),
        att::ATT_ATTACH_TITLE => x.title = Some(codepage::decode(codepage::trim_nul(a.data), cp)),
        att::ATT_ATTACH_DATA => x.data = a.data.to_vec(),
        att::ATT_ATTACH_META_FILE => x.meta_file = Some(a.data.to_vec()),
        att::ATT_ATTACH_CREATE_DATE => {
            x.create_date = Some(att::read_date(a.data, a.offset, a.id)?)
        }
        att::ATT_ATTACH_MODIFY_DATE => {
            x.modify_date = Some(att::read_date(a.data, a.offset, a.id)?)
        }
        att::ATT_ATTACHMENT => {
            let props = mapi::read_props(&mut Cursor::new(a.data, a.offset), cp)?;
            apply_attachment_props(x, props, a, depth, notes)?;
        }
        // Others (e.g. attAttachTransportFilename) are kept verbatim.
        _ => x.other_attributes.push(RawAttribute {
            level: a.level,
            id: a.id,
            data: a.data.to_vec(),
        }),
    }
    Ok(())
}

fn apply_attachment_props(
    x: &mut TnefAttachment,
    props: Vec<MapiProperty>,
    a: &Attr<'_>,
    depth: usize,
    notes: &mut Notes,
) -> Result<()> {
    let s = |id| {
        find(&props, id)
            .and_then(PropValue::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    x.long_filename = s(tags::ATTACH_LONG_FILENAME);
    x.mime_type = s(tags::ATTACH_MIME_TAG);
    x.content_id = s(tags::ATTACH_CONTENT_ID)
        .map(|c| c.trim_start_matches('<').trim_end_matches('>').to_owned());
    x.content_location = s(tags::ATTACH_CONTENT_LOCATION);
    x.method = find(&props, tags::ATTACH_METHOD)
        .and_then(PropValue::as_i64)
        .map(|v| v as i32);
    x.hidden = matches!(
        find(&props, tags::ATTACHMENT_HIDDEN),
        Some(PropValue::Boolean(true))
    );
    if let (None, Some(PropValue::SysTime(ft))) =
        (x.modify_date, find(&props, tags::LAST_MODIFICATION_TIME))
    {
        x.modify_date = Some(att::filetime_to_unix(*ft));
    }
    match find(&props, tags::ATTACH_DATA) {
        Some(PropValue::Object(obj)) => {
            // An embedded message: IID_IMessage then a TNEF stream.
            match obj.strip_prefix(&mapi::IID_IMESSAGE[..]) {
                Some(stream) => match read_at(stream, a.offset, depth + 1, notes) {
                    Ok(inner) => x.embedded = Some(Box::new(inner)),
                    Err(e) => {
                        notes.fault(e, "the embedded message is kept as its raw bytes")?;
                        x.data = obj.clone();
                    }
                },
                None => x.data = obj.clone(),
            }
        }
        Some(PropValue::Binary(b)) if x.data.is_empty() => x.data = b.clone(),
        _ => {}
    }
    x.properties = props;
    Ok(())
}
