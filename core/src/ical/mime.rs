//! Meeting-request email (RFC 6047): how a spec's `calendar` becomes MIME
//! parts and how parts become `calendar` again, plus the REPLY message.
//!
//! Building ([`expand`], called once by `build`): the appointment is written
//! as iCalendar text and added as the last view of the
//! `multipart/alternative` — `text/calendar; method=REQUEST; charset=UTF-8`,
//! the part Outlook, Gmail, Apple Mail and Lotus Notes turn into an
//! invitation with accept/decline — and, except for a REPLY, also as an
//! `invite.ics` attachment (`application/ics`), as Gmail sends it, for
//! clients that only offer attachments, and the header
//! `Content-Class: urn:content-classes:calendarmessage` that Outlook writes
//! on its own meeting messages. When the spec has no `text` or
//! `html`, a short readable summary (what, when, where, who) is written for
//! both, so that the alternative always has its plain and HTML views.
//!
//! Parsing ([`extract`], called once by `parse`): the first `text/calendar`
//! view (or, failing that, a `text/calendar` attachment with a `method`)
//! becomes `calendar` and leaves `alternates`/`attachments`; an `.ics`
//! attachment holding the same UID is the duplicate `build` added and goes
//! too, and so does the `Content-Class` header; `text`/`html` equal to the
//! generated summary are dropped. So
//! `parse(build(spec)) == spec.normalized()` when the spec's appointment has
//! `method` and `dtstamp` set (build fills them in otherwise); [`normalize`]
//! is the part of `normalized` that moves a readable `text/calendar` view
//! given in `alternates` into `calendar`, as parsing will. A calendar part that does
//! not parse stays where it was, with a warning naming its line.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::error::IcalError;
use super::itip;
use super::model::{Appointment, Method, PartStat, Status};
use super::value::{Date, When};
use super::{parse_ics, to_ics};
use crate::address::Mailbox;
use crate::content_type::MediaType;
use crate::html::escape_html;
use crate::spec::{Alternate, Attachment, MessageSpec, bracket_id};

/// The `Content-Class` of meeting messages (Outlook's); added by [`expand`], dropped by [`extract`].
pub const CONTENT_CLASS: &str = "urn:content-classes:calendarmessage";

/// The file name of the `.ics` copy attached to requests.
pub const ICS_FILENAME: &str = "invite.ics";

fn when_text(a: &Appointment) -> String {
    let (Ok(start), end) = (
        When::from_model(&a.start),
        a.end.as_deref().map(When::from_model),
    ) else {
        return a.start.clone();
    };
    let hm = |w: When| match w {
        When::Local(t) | When::Utc(t) => format!("{:02}:{:02}", t.hour, t.minute),
        When::Date(_) => String::new(),
    };
    let day = |w: When| match w {
        When::Date(d) => Date::to_iso(d),
        When::Local(t) | When::Utc(t) => Date::to_iso(t.date),
    };
    let mut out = match (start, end) {
        (When::Date(s), Some(Ok(When::Date(e)))) => {
            let last = Date::from_days(e.days() - 1);
            if last <= s {
                format!("{} (all day)", s.to_iso())
            } else {
                format!("{} – {} (all day)", s.to_iso(), last.to_iso())
            }
        }
        (When::Date(s), _) => format!("{} (all day)", s.to_iso()),
        (s, Some(Ok(e))) if day(s) == day(e) => format!("{} {} – {}", day(s), hm(s), hm(e)),
        (s, Some(Ok(e))) => format!("{} {} – {} {}", day(s), hm(s), day(e), hm(e)),
        (s, _) => format!("{} {}", day(s), hm(s)),
    };
    if let Some(d) = &a.duration {
        let _ = write!(out, " ({d})");
    }
    match (&a.time_zone, start) {
        (Some(z), When::Local(_)) => {
            let _ = write!(out, " ({z})");
        }
        (_, When::Utc(_)) => out.push_str(" (UTC)"),
        _ => {}
    }
    out
}

fn headline(a: &Appointment) -> String {
    let title = a.summary.as_deref().unwrap_or("(no title)");
    match a.method.as_ref().unwrap_or(&Method::Request) {
        Method::Request if a.sequence > 0 => format!("Updated invitation: {title}"),
        Method::Request => format!("Invitation: {title}"),
        Method::Cancel => format!("Cancelled: {title}"),
        Method::Reply => {
            let who = a.attendees.first();
            let name = who.map(|w| w.name.clone().unwrap_or_else(|| w.email.clone()));
            let verb = match who.map(|w| &w.partstat) {
                Some(PartStat::Accepted) => "has accepted",
                Some(PartStat::Declined) => "has declined",
                Some(PartStat::Tentative) => "has tentatively accepted",
                _ => "has answered",
            };
            format!("{} {verb}: {title}", name.unwrap_or_default())
        }
        _ => format!("Event: {title}"),
    }
}

/// The facts of the summary, as (label, value) pairs.
fn facts(a: &Appointment) -> Vec<(&'static str, String)> {
    let mut out = vec![("When", when_text(a))];
    if let Some(r) = &a.rrule {
        out.push(("Repeats", r.clone()));
    }
    if let Some(l) = a.location.as_deref().filter(|l| !l.is_empty()) {
        out.push(("Where", l.to_string()));
    }
    if let Some(o) = &a.organizer {
        out.push(("Organizer", o.to_string()));
    }
    if !a.attendees.is_empty() {
        let names: Vec<String> = a
            .attendees
            .iter()
            .map(|t| match &t.name {
                Some(n) => format!("{n} <{}>", t.email),
                None => t.email.clone(),
            })
            .collect();
        out.push(("Attendees", names.join(", ")));
    }
    out
}

/// The plain-text summary written when the spec has no `text`.
pub fn summary_text(a: &Appointment) -> String {
    let mut out = headline(a);
    out.push_str("\n\n");
    for (label, value) in facts(a) {
        let _ = writeln!(out, "{label}: {value}");
    }
    if let Some(d) = a.description.as_deref().filter(|d| !d.is_empty()) {
        out.push('\n');
        out.push_str(d);
        out.push('\n');
    }
    out
}

/// The HTML summary written when the spec has no `html`.
pub fn summary_html(a: &Appointment) -> String {
    let mut out = format!("<p><b>{}</b></p>\n<table>\n", escape_html(&headline(a)));
    for (label, value) in facts(a) {
        let _ = writeln!(
            out,
            "<tr><th align=\"left\">{label}</th><td>{}</td></tr>",
            escape_html(&value)
        );
    }
    out.push_str("</table>\n");
    if let Some(d) = a.description.as_deref().filter(|d| !d.is_empty()) {
        let _ = writeln!(out, "<p>{}</p>", escape_html(d).replace('\n', "<br>\n"));
    }
    out
}

/// The spec with its `calendar` turned into MIME parts (see the module doc);
/// borrowed unchanged when there is no calendar. `now` is the DTSTAMP when
/// the appointment has none.
pub fn expand(spec: &MessageSpec, now: i64) -> Result<Cow<'_, MessageSpec>, IcalError> {
    let Some(cal) = &spec.calendar else {
        return Ok(Cow::Borrowed(spec));
    };
    if let Some(i) = spec.alternates.iter().position(is_calendar_alternate) {
        return Err(IcalError::field(
            format!("alternates[{i}]"),
            "a text/calendar view and `calendar` cannot both be given; keep `calendar`",
        ));
    }
    let mut appt = cal.clone();
    let method = appt.method.get_or_insert(Method::Request).clone();
    mark_cancelled(&mut appt);
    itip::check(&appt)?;
    let ics = to_ics(&appt, now)?;
    let mut out = spec.clone();
    out.calendar = None;
    if out.text.is_none() {
        out.text = Some(summary_text(&appt));
    }
    if out.html.is_none() {
        out.html = Some(summary_html(&appt));
    }
    if !out
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("Content-Class"))
    {
        // Outlook files a message with this class as a meeting item.
        out.headers
            .push(("Content-Class".to_string(), CONTENT_CLASS.to_string()));
    }
    out.alternates.push(Alternate {
        content_type: format!("text/calendar; method={method}; charset=UTF-8"),
        content: ics.clone(),
    });
    if method != Method::Reply {
        out.attachments.push(Attachment {
            filename: Some(ICS_FILENAME.to_string()),
            content_type: "application/ics".to_string(),
            content: ics.into_bytes(),
            inline: false,
            content_id: None,
        });
    }
    Ok(Cow::Owned(out))
}

fn media(ct: &str) -> Option<MediaType> {
    MediaType::parse(ct).ok()
}

fn is_calendar_alternate(a: &Alternate) -> bool {
    media(&a.content_type).is_some_and(|m| m.essence == "text/calendar")
}

/// Reads calendar text, taking the METHOD from the content type when the text has none.
fn read(bytes: &[u8], content_type: &str) -> Result<Appointment, IcalError> {
    let mut appt = parse_ics(bytes)?;
    if appt.method.is_none() {
        appt.method = media(content_type).and_then(|m| m.param("method").map(Method::from));
    }
    Ok(appt)
}

/// Moves the message's calendar part into `spec.calendar` (see the module
/// doc); problems go to `warnings`.
pub fn extract(spec: &mut MessageSpec, warnings: &mut Vec<String>) {
    let mut found = None;
    let mut view_text = None;
    if let Some(i) = spec.alternates.iter().position(is_calendar_alternate) {
        let alt = &spec.alternates[i];
        match read(alt.content.as_bytes(), &alt.content_type) {
            Ok(appt) => {
                view_text = Some(spec.alternates.remove(i).content);
                found = Some(appt);
            }
            Err(e) => warnings.push(format!("text/calendar view: {e}; kept as an alternate")),
        }
    }
    if found.is_none() {
        let itip_attachment = spec.attachments.iter().position(|a| {
            media(&a.content_type)
                .is_some_and(|m| m.essence == "text/calendar" && m.param("method").is_some())
        });
        if let Some(i) = itip_attachment {
            let att = &spec.attachments[i];
            match read(&att.content, &att.content_type) {
                Ok(appt) => {
                    spec.attachments.remove(i);
                    found = Some(appt);
                }
                Err(e) => warnings.push(format!("text/calendar part: {e}; kept as an attachment")),
            }
        }
    }
    let Some(appt) = found else { return };
    spec.attachments.retain(|a| {
        let is_ics = media(&a.content_type)
            .is_some_and(|m| m.essence == "application/ics" || m.essence == "text/calendar")
            || a.filename
                .as_deref()
                .is_some_and(|f| f.to_ascii_lowercase().ends_with(".ics"));
        // The copy `build` attached is the view's text byte for byte (up to
        // line ends); anything else is parsed to compare the UID.
        let same_text = view_text.as_deref().is_some_and(|v| {
            std::str::from_utf8(&a.content).is_ok_and(|c| c.replace("\r\n", "\n") == v)
        });
        let duplicate =
            is_ics && (same_text || parse_ics(&a.content).is_ok_and(|c| c.uid == appt.uid));
        !duplicate
    });
    spec.headers.retain(|(name, value)| {
        !(name.eq_ignore_ascii_case("Content-Class")
            && value.trim().eq_ignore_ascii_case(CONTENT_CLASS))
    });
    if spec.text.as_deref() == Some(summary_text(&appt).as_str()) {
        spec.text = None;
    }
    if spec.html.as_deref() == Some(summary_html(&appt).as_str()) {
        spec.html = None;
    }
    spec.calendar = Some(appt);
}

/// The normal form of a spec's calendar side (see `MessageSpec::normalized`):
/// when the spec has no `calendar` but a `text/calendar` view that reads
/// as an appointment, the view becomes `calendar`, exactly as [`extract`]
/// does when parsing the built message.
pub fn normalize(spec: &mut MessageSpec) {
    if spec.calendar.is_none() {
        extract(spec, &mut Vec::new());
    }
    if let Some(appt) = &mut spec.calendar {
        mark_cancelled(appt);
    }
}

/// RFC 5546 3.2.5: the CANCEL of a whole event (or of one instance) carries
/// `STATUS:CANCELLED`, which Outlook and Google read to strike the event
/// out; a status the spec sets itself is kept.
fn mark_cancelled(appt: &mut Appointment) {
    if appt.method == Some(Method::Cancel) && appt.status.is_none() {
        appt.status = Some(Status::Cancelled);
    }
}

/// The answer of one attendee to a meeting request, as a message to send:
/// from the attendee to the organizer, subject `Accepted: …` (or
/// `Declined:`, `Tentative:`), threaded to the request, with the iTIP REPLY
/// in `calendar`. `attendee` is the address as listed in the request (a
/// `Name <address>` form is accepted; the name is used when the request has none).
pub fn reply_message(
    request: &MessageSpec,
    attendee: &str,
    partstat: PartStat,
) -> Result<MessageSpec, IcalError> {
    let Some(invite) = &request.calendar else {
        return Err(IcalError::Itip {
            method: "REPLY".to_string(),
            reason: "the message holds no meeting request (no text/calendar part)".to_string(),
        });
    };
    let answer = itip::reply(invite, attendee, partstat.clone())?;
    let me = answer.attendees.first().cloned().unwrap_or_default();
    let given = Mailbox::parse(attendee).ok().and_then(|m| m.name);
    let from = Mailbox::new(me.name.as_deref().or(given.as_deref()), &me.email)
        .map_err(|e| IcalError::field("attendee", e.to_string()))?;
    let prefix = match partstat {
        PartStat::Accepted => "Accepted",
        PartStat::Declined => "Declined",
        _ => "Tentative",
    };
    let title = invite.summary.as_deref().unwrap_or("(no title)");
    let mut references = request.references.clone();
    if let Some(id) = &request.message_id {
        references.push(bracket_id(id));
    }
    Ok(MessageSpec {
        from: Some(from),
        to: answer.organizer.iter().cloned().collect(),
        subject: Some(format!("{prefix}: {title}")),
        in_reply_to: request.message_id.as_deref().map(bracket_id),
        references,
        calendar: Some(answer),
        ..MessageSpec::default()
    })
}
