//! Writing RFC 5545 text from the model: a VCALENDAR with its METHOD, one
//! VTIMEZONE per zone used (generated from the IANA rule, see [`super::tz`]),
//! the VEVENT and its overrides and alarms. CRLF line ends, TEXT escaping,
//! quoted parameters and folding at 75 octets are done in [`super::line`].
//! Every field is checked first ([`super::check`]): the writer never emits
//! what it has not validated.

use super::check::{Resolved, resolve};
use super::error::IcalError;
use super::line::{escape_text, fold_into, param_value};
use super::model::{Appointment, Calendar};
use super::tz::vtimezone_lines;
use super::value::{DateTime, When};

/// The PRODID postwire writes.
pub const PRODID: &str = "-//postwire//postwire iCalendar//EN";

/// One content line, built property by property.
fn prop(name: &str, params: &[(&str, String)], value: &str) -> String {
    let mut line = String::with_capacity(name.len() + value.len() + 16);
    line.push_str(name);
    for (p, v) in params {
        line.push(';');
        line.push_str(p);
        line.push('=');
        line.push_str(v);
    }
    line.push(':');
    line.push_str(value);
    line
}

/// A date property: `VALUE=DATE`, `TZID=` for zoned local times, `Z` for UTC.
fn date_prop(name: &str, values: &[When], zone: Option<&str>) -> String {
    let joined: Vec<String> = values.iter().map(When::to_string).collect();
    let mut params = Vec::new();
    match values.first() {
        Some(When::Date(_)) => params.push(("VALUE", "DATE".to_string())),
        Some(When::Local(_)) => {
            if let Some(z) = zone {
                params.push(("TZID", param_value(z)));
            }
        }
        _ => {}
    }
    prop(name, &params, &joined.join(","))
}

fn mailto(addr: &str) -> String {
    format!("mailto:{addr}")
}

fn event_lines(r: &Resolved<'_>, now: i64, out: &mut Vec<String>) {
    let a = r.appt;
    let zone = r.zone.as_ref().map(|(z, _)| z.as_str());
    out.push("BEGIN:VEVENT".to_string());
    out.push(prop("UID", &[], &escape_text(&a.uid)));
    out.push(prop("SEQUENCE", &[], &a.sequence.to_string()));
    let stamp = r
        .dtstamp
        .unwrap_or_else(|| When::Utc(DateTime::from_seconds(now)));
    out.push(prop("DTSTAMP", &[], &stamp.to_string()));
    out.push(date_prop("DTSTART", &[r.start], zone));
    if let Some(e) = r.end {
        out.push(date_prop("DTEND", &[e], zone));
    }
    if let Some(d) = &a.duration {
        out.push(prop("DURATION", &[], d));
    }
    if let Some(id) = r.recurrence_id {
        out.push(date_prop("RECURRENCE-ID", &[id], zone));
    }
    if let Some(rule) = &a.rrule {
        out.push(prop("RRULE", &[], &rule.to_ascii_uppercase()));
    }
    for (name, list) in [("RDATE", &r.rdates), ("EXDATE", &r.exdates)] {
        // One line for the zoned (or date) values, one for the UTC ones:
        // a TZID parameter applies to every value of its line.
        let (utc, local): (Vec<When>, Vec<When>) =
            list.iter().partition(|w| matches!(w, When::Utc(_)));
        for group in [local, utc] {
            if !group.is_empty() {
                out.push(date_prop(name, &group, zone));
            }
        }
    }
    for (name, value) in [
        ("SUMMARY", &a.summary),
        ("DESCRIPTION", &a.description),
        ("LOCATION", &a.location),
    ] {
        if let Some(v) = value {
            out.push(prop(name, &[], &escape_text(v)));
        }
    }
    if let Some(org) = &a.organizer {
        let params: Vec<(&str, String)> = org.name.iter().map(|n| ("CN", param_value(n))).collect();
        out.push(prop("ORGANIZER", &params, &mailto(&org.email)));
    }
    for att in &a.attendees {
        let mut params = Vec::new();
        if let Some(c) = &att.cutype {
            params.push(("CUTYPE", c.to_string()));
        }
        params.push(("ROLE", att.role.to_string()));
        params.push(("PARTSTAT", att.partstat.to_string()));
        if att.rsvp {
            params.push(("RSVP", "TRUE".to_string()));
        }
        if let Some(n) = &att.name {
            params.push(("CN", param_value(n)));
        }
        out.push(prop("ATTENDEE", &params, &mailto(&att.email)));
    }
    if let Some(s) = &a.status {
        out.push(prop("STATUS", &[], s.as_str()));
    }
    if let Some(t) = &a.transparency {
        out.push(prop("TRANSP", &[], t.as_str()));
    }
    if let Some(p) = a.priority {
        out.push(prop("PRIORITY", &[], &p.to_string()));
    }
    if !a.categories.is_empty() {
        let items: Vec<String> = a.categories.iter().map(|c| escape_text(c)).collect();
        out.push(prop("CATEGORIES", &[], &items.join(",")));
    }
    if let Some(u) = &a.url {
        out.push(prop("URL", &[], u));
    }
    out.extend(a.extra.iter().cloned());
    for alarm in &a.alarms {
        out.push("BEGIN:VALARM".to_string());
        out.push(prop(
            "ACTION",
            &[],
            alarm.action.as_deref().unwrap_or("DISPLAY"),
        ));
        match When::from_model(&alarm.trigger) {
            Ok(w @ When::Utc(_)) => out.push(prop(
                "TRIGGER",
                &[("VALUE", "DATE-TIME".to_string())],
                &w.to_string(),
            )),
            _ if alarm.related_end => out.push(prop(
                "TRIGGER",
                &[("RELATED", "END".to_string())],
                &alarm.trigger,
            )),
            _ => out.push(prop("TRIGGER", &[], &alarm.trigger)),
        }
        out.push(prop(
            "DESCRIPTION",
            &[],
            &escape_text(alarm.description.as_deref().unwrap_or(DEFAULT_ALARM_TEXT)),
        ));
        out.extend(alarm.extra.iter().cloned());
        out.push("END:VALARM".to_string());
    }
    out.push("END:VEVENT".to_string());
    for o in &r.overrides {
        event_lines(o, now, out);
    }
}

/// The DESCRIPTION written for an alarm without one (read back as `null`).
pub(crate) const DEFAULT_ALARM_TEXT: &str = "Reminder";

fn calendar_text(method: Option<&str>, events: &[Resolved<'_>], now: i64) -> String {
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_string(),
        prop("PRODID", &[], PRODID),
        "VERSION:2.0".to_string(),
        "CALSCALE:GREGORIAN".to_string(),
    ];
    if let Some(m) = method {
        lines.push(prop("METHOD", &[], m));
    }
    let mut zones: Vec<&str> = Vec::new();
    for r in events
        .iter()
        .chain(events.iter().flat_map(|e| e.overrides.iter()))
    {
        if let Some((name, rule)) = &r.zone
            && !zones.contains(&name.as_str())
        {
            zones.push(name);
            lines.extend(vtimezone_lines(name, rule));
        }
    }
    for r in events {
        event_lines(r, now, &mut lines);
    }
    lines.push("END:VCALENDAR".to_string());
    let mut out = String::with_capacity(lines.iter().map(|l| l.len() + 4).sum());
    for l in &lines {
        fold_into(l, &mut out);
    }
    out
}

/// Writes `appt` (and its overrides) as an iCalendar object.
///
/// `now` (Unix seconds) is the DTSTAMP when `appt.dtstamp` is `null`: core
/// has no clock. The METHOD line is written when `appt.method` is set.
///
/// ```
/// # use postwire_core::ical::{Appointment, to_ics};
/// let appt = Appointment {
///     uid: "1@example.com".into(),
///     start: "2026-12-01T10:00:00".into(),
///     end: Some("2026-12-01T11:00:00".into()),
///     time_zone: Some("Europe/Madrid".into()),
///     summary: Some("Reunión".into()),
///     ..Appointment::default()
/// };
/// let ics = to_ics(&appt, 1_790_000_000)?;
/// assert!(ics.contains("DTSTART;TZID=Europe/Madrid:20261201T100000\r\n"));
/// assert!(ics.contains("RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n"));
/// # Ok::<(), postwire_core::ical::IcalError>(())
/// ```
pub fn to_ics(appt: &Appointment, now: i64) -> Result<String, IcalError> {
    let r = resolve(appt, "calendar")?;
    Ok(calendar_text(
        appt.method.as_ref().map(|m| m.as_str()),
        &[r],
        now,
    ))
}

/// Writes a whole [`Calendar`]: its METHOD and every event (fields checked
/// under the path `events[i]`).
pub fn calendar_to_ics(cal: &Calendar, now: i64) -> Result<String, IcalError> {
    let resolved = cal
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| resolve(e, &format!("events[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(calendar_text(
        cal.method.as_ref().map(|m| m.as_str()),
        &resolved,
        now,
    ))
}
