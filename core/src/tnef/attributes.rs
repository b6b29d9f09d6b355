//! TNEF attributes ([MS-OXTNEF] 2.1.3.3): their ids, levels and the formats
//! of the structured ones: dates (atpDate), attAttachRendData, and the TRP
//! triple of attFrom. Also the conversions between TNEF dates, FILETIMEs
//! and Unix seconds (pure arithmetic, no clock).

use serde::Serialize;

use super::cursor::Cursor;
use super::error::{Result, TnefError};

/// The TNEF signature, the first four bytes of every stream.
pub const SIGNATURE: u32 = 0x223E_9F78;
/// attribute level: message.
pub const LEVEL_MESSAGE: u8 = 0x01;
/// attribute level: attachment.
pub const LEVEL_ATTACHMENT: u8 = 0x02;

/// attFrom (atpTriples).
pub const ATT_FROM: u32 = 0x0000_8000;
/// attSubject (atpString).
pub const ATT_SUBJECT: u32 = 0x0001_8004;
/// attDateSent (atpDate).
pub const ATT_DATE_SENT: u32 = 0x0003_8005;
/// attDateRecd (atpDate).
pub const ATT_DATE_RECD: u32 = 0x0003_8006;
/// attMessageStatus (atpByte).
pub const ATT_MESSAGE_STATUS: u32 = 0x0006_8007;
/// attMessageClass (atpWord).
pub const ATT_MESSAGE_CLASS: u32 = 0x0007_8008;
/// attMessageID (atpString).
pub const ATT_MESSAGE_ID: u32 = 0x0001_8009;
/// attBody (atpText).
pub const ATT_BODY: u32 = 0x0002_800C;
/// attPriority (atpShort).
pub const ATT_PRIORITY: u32 = 0x0004_800D;
/// attAttachData (atpByte).
pub const ATT_ATTACH_DATA: u32 = 0x0006_800F;
/// attAttachTitle (atpString).
pub const ATT_ATTACH_TITLE: u32 = 0x0001_8010;
/// attAttachMetaFile (atpByte).
pub const ATT_ATTACH_META_FILE: u32 = 0x0006_8011;
/// attAttachCreateDate (atpDate).
pub const ATT_ATTACH_CREATE_DATE: u32 = 0x0003_8012;
/// attAttachModifyDate (atpDate).
pub const ATT_ATTACH_MODIFY_DATE: u32 = 0x0003_8013;
/// attDateModified (atpDate).
pub const ATT_DATE_MODIFIED: u32 = 0x0003_8020;
/// attAttachTransportFilename (atpByte).
pub const ATT_ATTACH_TRANSPORT_FILENAME: u32 = 0x0006_9001;
/// attAttachRendData (atpByte).
pub const ATT_ATTACH_REND_DATA: u32 = 0x0006_9002;
/// attMAPIProps (atpByte).
pub const ATT_MAPI_PROPS: u32 = 0x0006_9003;
/// attRecipTable (atpByte).
pub const ATT_RECIP_TABLE: u32 = 0x0006_9004;
/// attAttachment (atpByte).
pub const ATT_ATTACHMENT: u32 = 0x0006_9005;
/// attTnefVersion (atpDword).
pub const ATT_TNEF_VERSION: u32 = 0x0008_9006;
/// attOemCodepage (atpByte).
pub const ATT_OEM_CODEPAGE: u32 = 0x0006_9007;
/// attOriginalMessageClass (atpWord).
pub const ATT_ORIGINAL_MESSAGE_CLASS: u32 = 0x0007_0600;

/// The TNEF version this writer announces (1.0).
pub const TNEF_VERSION: u32 = 0x0001_0000;

/// attMessageClass's legacy names for the MAPI message classes
/// (PidTagMessageClass) that have one, as Outlook writes them.
const LEGACY_CLASSES: &[(&str, &str)] = &[
    ("IPM.Microsoft Mail.Note", "IPM.Note"),
    ("IPM.Microsoft Mail.Read Receipt", "Report.IPM.Note.IPNRN"),
    ("IPM.Microsoft Mail.Non-Delivery", "Report.IPM.Note.NDR"),
    (
        "IPM.Microsoft Schedule.MtgReq",
        "IPM.Schedule.Meeting.Request",
    ),
    (
        "IPM.Microsoft Schedule.MtgRespP",
        "IPM.Schedule.Meeting.Resp.Pos",
    ),
    (
        "IPM.Microsoft Schedule.MtgRespN",
        "IPM.Schedule.Meeting.Resp.Neg",
    ),
    (
        "IPM.Microsoft Schedule.MtgRespA",
        "IPM.Schedule.Meeting.Resp.Tent",
    ),
    (
        "IPM.Microsoft Schedule.MtgCncl",
        "IPM.Schedule.Meeting.Canceled",
    ),
];

/// The MAPI message class for an attMessageClass value (legacy names mapped).
pub fn class_from_legacy(value: &str) -> &str {
    LEGACY_CLASSES
        .iter()
        .find(|(legacy, _)| legacy.eq_ignore_ascii_case(value))
        .map_or(value, |(_, mapi)| mapi)
}

/// The attMessageClass value for a MAPI message class (legacy name where there is one).
pub fn class_to_legacy(class: &str) -> &str {
    LEGACY_CLASSES
        .iter()
        .find(|(_, mapi)| mapi.eq_ignore_ascii_case(class))
        .map_or(class, |(legacy, _)| legacy)
}

/// The name of an attribute id, for errors and listings.
pub fn name(id: u32) -> &'static str {
    match id {
        ATT_FROM => "attFrom",
        ATT_SUBJECT => "attSubject",
        ATT_DATE_SENT => "attDateSent",
        ATT_DATE_RECD => "attDateRecd",
        ATT_MESSAGE_STATUS => "attMessageStatus",
        ATT_MESSAGE_CLASS => "attMessageClass",
        ATT_MESSAGE_ID => "attMessageID",
        ATT_BODY => "attBody",
        ATT_PRIORITY => "attPriority",
        ATT_ATTACH_DATA => "attAttachData",
        ATT_ATTACH_TITLE => "attAttachTitle",
        ATT_ATTACH_META_FILE => "attAttachMetaFile",
        ATT_ATTACH_CREATE_DATE => "attAttachCreateDate",
        ATT_ATTACH_MODIFY_DATE => "attAttachModifyDate",
        ATT_DATE_MODIFIED => "attDateModified",
        ATT_ATTACH_TRANSPORT_FILENAME => "attAttachTransportFilename",
        ATT_ATTACH_REND_DATA => "attAttachRendData",
        ATT_MAPI_PROPS => "attMAPIProps",
        ATT_RECIP_TABLE => "attRecipTable",
        ATT_ATTACHMENT => "attAttachment",
        ATT_TNEF_VERSION => "attTnefVersion",
        ATT_OEM_CODEPAGE => "attOemCodepage",
        ATT_ORIGINAL_MESSAGE_CLASS => "attOriginalMessageClass",
        _ => "unknown attribute",
    }
}

/// The checksum of an attribute: the sum of its data bytes modulo 65536.
pub fn checksum(data: &[u8]) -> u16 {
    data.iter()
        .fold(0u16, |sum, &b| sum.wrapping_add(u16::from(b)))
}

fn bad(offset: usize, id: u32, reason: impl Into<String>) -> TnefError {
    TnefError::BadAttribute {
        offset,
        name: name(id),
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------- dates

/// Days from 1970-01-01 to the civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day count from 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Seconds between 1601-01-01 and 1970-01-01.
const FILETIME_UNIX_DIFF: i64 = 11_644_473_600;

/// A FILETIME (100 ns since 1601) as Unix seconds.
pub fn filetime_to_unix(ft: u64) -> i64 {
    (ft / 10_000_000) as i64 - FILETIME_UNIX_DIFF
}

/// Unix seconds as a FILETIME; dates before 1601 become 0.
pub fn unix_to_filetime(secs: i64) -> u64 {
    u64::try_from(secs.saturating_add(FILETIME_UNIX_DIFF))
        .map_or(0, |s| s.saturating_mul(10_000_000))
}

/// Unix seconds as RFC 3339 UTC ("2026-12-01T09:00:00Z").
pub fn format_rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Reads an atpDate (seven u16: year, month, day, hour, minute, second,
/// day of week) as Unix seconds, taking it as UTC.
pub(crate) fn read_date(data: &[u8], offset: usize, id: u32) -> Result<i64> {
    if data.len() < 12 {
        return Err(bad(
            offset,
            id,
            format!("a date needs 14 bytes, found {}", data.len()),
        ));
    }
    let w = |i: usize| u32::from(u16::from_le_bytes([data[2 * i], data[2 * i + 1]]));
    let (y, mo, d, h, mi, s) = (w(0), w(1), w(2), w(3), w(4), w(5));
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err(bad(
            offset,
            id,
            format!("invalid date {y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"),
        ));
    }
    Ok(days_from_civil(i64::from(y), mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + s))
}

/// Writes Unix seconds as an atpDate (UTC).
pub(crate) fn write_date(secs: i64) -> Vec<u8> {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let dow = (days + 4).rem_euclid(7); // 1970-01-01 was a Thursday (4)
    let fields = [
        y.clamp(0, 0xFFFF) as u16,
        m as u16,
        d as u16,
        (rem / 3600) as u16,
        (rem % 3600 / 60) as u16,
        (rem % 60) as u16,
        dow as u16,
    ];
    fields.iter().flat_map(|f| f.to_le_bytes()).collect()
}

// ---------------------------------------------------------------- rend data

/// attAttachRendData: how an attachment is rendered in the message body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RendData {
    /// 1 = file, 2 = OLE object, 0 = none.
    pub attach_type: u16,
    /// Character position of the attachment in the body (0xFFFFFFFF: none).
    pub position: u32,
    /// Rendering width.
    pub width: u16,
    /// Rendering height.
    pub height: u16,
    /// Flags (1 = MAC binary).
    pub flags: u32,
}

impl RendData {
    /// The rendering of a plain file attachment, as Outlook writes it.
    pub fn file() -> Self {
        RendData {
            attach_type: 1,
            position: 0xFFFF_FFFF,
            width: 0xFFFF,
            height: 0xFFFF,
            flags: 0,
        }
    }

    pub(crate) fn read(data: &[u8], offset: usize) -> Result<Self> {
        let mut c = Cursor::new(data, offset);
        let r = (|| {
            Ok(RendData {
                attach_type: c.u16("attAttachRendData")?,
                position: c.u32("attAttachRendData")?,
                width: c.u16("attAttachRendData")?,
                height: c.u16("attAttachRendData")?,
                flags: c.u32("attAttachRendData")?,
            })
        })();
        r.map_err(|_: TnefError| {
            bad(
                offset,
                ATT_ATTACH_REND_DATA,
                format!("needs 14 bytes, found {}", data.len()),
            )
        })
    }

    pub(crate) fn write(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(14);
        v.extend_from_slice(&self.attach_type.to_le_bytes());
        v.extend_from_slice(&self.position.to_le_bytes());
        v.extend_from_slice(&self.width.to_le_bytes());
        v.extend_from_slice(&self.height.to_le_bytes());
        v.extend_from_slice(&self.flags.to_le_bytes());
        v
    }
}

// ---------------------------------------------------------------- attFrom

/// The TRP "one-off" triple id used by attFrom.
const TRPID_ONE_OFF: u16 = 0x0004;

/// Reads attFrom: a TRP header, the NUL-terminated display name (padded to
/// two bytes), the NUL-terminated "TYPE:address", and padding. Returns the
/// raw name and address bytes (8-bit, in the message code page).
pub(crate) fn read_from(data: &[u8], offset: usize) -> Result<(&[u8], &[u8])> {
    let mut c = Cursor::new(data, offset);
    let what = "attFrom triple";
    let _trpid = c.u16(what)?;
    let _cbgrtrp = c.u16(what)?;
    let cch = usize::from(c.u16(what)?);
    let cb = usize::from(c.u16(what)?);
    let name = c.take(cch, "attFrom display name")?;
    let address = c.take(cb, "attFrom address")?;
    Ok((
        super::codepage::trim_nul(name),
        super::codepage::trim_nul(address),
    ))
}

/// Writes attFrom for a display name and an SMTP address (8-bit strings).
pub(crate) fn write_from(name: &[u8], address: &[u8]) -> Vec<u8> {
    let mut n = name.to_vec();
    n.push(0);
    if n.len() % 2 == 1 {
        n.push(0);
    }
    let mut a = b"SMTP:".to_vec();
    a.extend_from_slice(address);
    a.push(0);
    let cbgrtrp = 16 + n.len() + a.len();
    let mut v = Vec::with_capacity(cbgrtrp + 8);
    v.extend_from_slice(&TRPID_ONE_OFF.to_le_bytes());
    v.extend_from_slice(&(cbgrtrp.min(0xFFFF) as u16).to_le_bytes());
    v.extend_from_slice(&(n.len().min(0xFFFF) as u16).to_le_bytes());
    v.extend_from_slice(&(a.len().min(0xFFFF) as u16).to_le_bytes());
    v.extend_from_slice(&n);
    v.extend_from_slice(&a);
    // Padding to the TRP size, then a null TRP that ends the list.
    v.resize(v.len() + (8 - v.len() % 8) % 8, 0);
    v.extend_from_slice(&[0; 8]);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_atp_date_and_filetime() {
        for secs in [0, 1_055_863_380, 1_796_115_600, 951_782_400] {
            let bytes = write_date(secs);
            assert_eq!(bytes.len(), 14);
            assert_eq!(read_date(&bytes, 0, ATT_DATE_SENT).unwrap(), secs);
            assert_eq!(filetime_to_unix(unix_to_filetime(secs)), secs);
        }
        // ytnef's winmail.dat: 127003369800000000 = Tuesday June 17, 2003 15:23:00 UTC.
        assert_eq!(
            format_rfc3339(filetime_to_unix(127_003_369_800_000_000)),
            "2003-06-17T15:23:00Z"
        );
        // 2026-12-01 is a Tuesday (2).
        let b = write_date(1_796_115_600);
        assert_eq!(u16::from_le_bytes([b[12], b[13]]), 2);
    }

    #[test]
    fn from_triple_round_trips() {
        let data = write_from(b"Ana Nunez", b"ana@example.com");
        assert_eq!(data.len() % 8, 0);
        let (n, a) = read_from(&data, 0).unwrap();
        assert_eq!(n, b"Ana Nunez");
        assert_eq!(a, b"SMTP:ana@example.com");
        assert!(read_from(&data[..10], 0).is_err());
    }
}
