//! Validation of an [`Appointment`]: every field read into typed values
//! (dates, zone rule, organizer address...) or refused with an error that
//! names the field, such as `calendar.start` or `calendar.attendees[1].email`.
//! The writer works from the [`Resolved`] form only, so nothing unchecked is
//! ever written.

use super::error::IcalError;
use super::line::parse_line;
use super::model::Appointment;
use super::tz::Rule;
use super::value::{When, parse_duration};
use crate::address::Mailbox;

/// An appointment whose fields have been checked and read.
#[derive(Debug)]
pub(crate) struct Resolved<'a> {
    pub(crate) appt: &'a Appointment,
    pub(crate) dtstamp: Option<When>,
    pub(crate) start: When,
    pub(crate) end: Option<When>,
    /// The TZID to write on local times, and its rule.
    pub(crate) zone: Option<(String, Rule)>,
    pub(crate) recurrence_id: Option<When>,
    pub(crate) exdates: Vec<When>,
    pub(crate) rdates: Vec<When>,
    pub(crate) overrides: Vec<Resolved<'a>>,
}

/// Names of the properties the model has fields for: these may not appear in `extra`.
pub(crate) const MODELLED: &[&str] = &[
    "UID",
    "SEQUENCE",
    "DTSTAMP",
    "DTSTART",
    "DTEND",
    "DURATION",
    "SUMMARY",
    "DESCRIPTION",
    "LOCATION",
    "ORGANIZER",
    "ATTENDEE",
    "STATUS",
    "TRANSP",
    "PRIORITY",
    "RRULE",
    "EXDATE",
    "RDATE",
    "RECURRENCE-ID",
    "CATEGORIES",
    "URL",
    "BEGIN",
    "END",
];

/// Names of the VALARM properties the model has fields for.
pub(crate) const ALARM_MODELLED: &[&str] = &["ACTION", "TRIGGER", "DESCRIPTION", "BEGIN", "END"];

/// Checks raw extra content lines: one line each, well-formed, not a modelled property.
fn check_extra(path: &str, lines: &[String], modelled: &[&str]) -> Result<(), IcalError> {
    for (i, raw) in lines.iter().enumerate() {
        let field = format!("{path}[{i}]");
        if raw.contains(['\r', '\n']) {
            return Err(IcalError::field(field, "must be one unfolded content line"));
        }
        let line = parse_line(raw, 1).map_err(|e| match e {
            IcalError::Syntax { reason, .. } => IcalError::field(&field, reason),
            other => other,
        })?;
        if modelled.contains(&line.name.as_str()) {
            return Err(IcalError::field(
                field,
                format!(
                    "{} has its own field; it cannot be an extra line",
                    line.name
                ),
            ));
        }
    }
    Ok(())
}

/// Checks a bare address (`local@domain`, as in `mailto:`) with the spec's mailbox rules.
pub(crate) fn check_address(addr: &str) -> Result<(), String> {
    if addr.contains(['<', '>']) {
        return Err(format!(
            "{addr:?} must be a bare address (put the name in name)"
        ));
    }
    Mailbox::new(None, addr)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn when(field: &str, s: &str) -> Result<When, IcalError> {
    When::from_model(s).map_err(|e| IcalError::field(field, format!("{s:?}: {e}")))
}

/// Checks that `w` has the same kind as the start (date vs. date-time).
fn same_kind(field: &str, w: When, start: When) -> Result<When, IcalError> {
    if w.is_date() != start.is_date() {
        let want = if start.is_date() {
            "a date, like start"
        } else {
            "a date-time, like start"
        };
        return Err(IcalError::field(field, format!("must be {want}")));
    }
    Ok(w)
}

fn check_text(field: &str, s: &str) -> Result<(), IcalError> {
    if s.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(IcalError::field(
            field,
            "control characters are not allowed",
        ));
    }
    Ok(())
}

/// Checks an RRULE value (RFC 5545 section 3.3.10) against the start.
fn check_rrule(field: &str, rule: &str, start: When, zoned: bool) -> Result<(), IcalError> {
    const KEYS: &[&str] = &[
        "FREQ",
        "UNTIL",
        "COUNT",
        "INTERVAL",
        "BYSECOND",
        "BYMINUTE",
        "BYHOUR",
        "BYDAY",
        "BYMONTHDAY",
        "BYYEARDAY",
        "BYWEEKNO",
        "BYMONTH",
        "BYSETPOS",
        "WKST",
    ];
    const FREQS: &[&str] = &[
        "SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY",
    ];
    let err = |reason: String| IcalError::field(field, format!("{rule:?}: {reason}"));
    let mut seen: Vec<String> = Vec::new();
    for part in rule.split(';') {
        let Some((k, v)) = part.split_once('=') else {
            return Err(err(format!("{part:?} is not KEY=VALUE")));
        };
        let k = k.to_ascii_uppercase();
        if !KEYS.contains(&k.as_str()) {
            return Err(err(format!("unknown rule part {k}")));
        }
        if seen.contains(&k) {
            return Err(err(format!("{k} appears twice")));
        }
        if v.is_empty()
            || !v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ',' | '-' | '+'))
        {
            return Err(err(format!("bad {k} value {v:?}")));
        }
        match k.as_str() {
            "FREQ" if !FREQS.contains(&v.to_ascii_uppercase().as_str()) => {
                return Err(err(format!("FREQ must be one of {}", FREQS.join(", "))));
            }
            "COUNT" | "INTERVAL" if v.parse::<u32>().map_or(true, |n| n == 0) => {
                return Err(err(format!("{k} must be a positive number")));
            }
            "UNTIL" => {
                let until = When::from_ical(v).map_err(|e| err(format!("UNTIL: {e}")))?;
                if until.is_date() != start.is_date() {
                    return Err(err(
                        "UNTIL must be a date when start is a date, a date-time otherwise"
                            .to_string(),
                    ));
                }
                let utc_needed = matches!(start, When::Utc(_)) || (zoned && !start.is_date());
                if utc_needed && !matches!(until, When::Utc(_)) {
                    return Err(err(
                        "UNTIL must be in UTC (ending in Z) when start has a time zone".to_string(),
                    ));
                }
            }
            _ => {}
        }
        seen.push(k);
    }
    if !seen.iter().any(|k| k == "FREQ") {
        return Err(err("FREQ is missing".to_string()));
    }
    if seen.iter().any(|k| k == "UNTIL") && seen.iter().any(|k| k == "COUNT") {
        return Err(err("UNTIL and COUNT cannot both be given".to_string()));
    }
    Ok(())
}

/// Checks every field of `appt`; `path` is the field path prefix (`calendar`).
pub(crate) fn resolve<'a>(appt: &'a Appointment, path: &str) -> Result<Resolved<'a>, IcalError> {
    let f = |name: &str| format!("{path}.{name}");
    if appt.uid.trim().is_empty() {
        return Err(IcalError::field(f("uid"), "must not be empty"));
    }
    check_text(&f("uid"), &appt.uid)?;
    if appt.uid.contains(['\n', '\r']) {
        return Err(IcalError::field(f("uid"), "must be one line"));
    }
    let dtstamp = match &appt.dtstamp {
        Some(s) => match when(&f("dtstamp"), s)? {
            w @ When::Utc(_) => Some(w),
            _ => {
                return Err(IcalError::field(
                    f("dtstamp"),
                    "must be a UTC date-time ending in Z",
                ));
            }
        },
        None => None,
    };
    let start = when(&f("start"), &appt.start)?;
    if appt.all_day && !start.is_date() {
        return Err(IcalError::field(
            f("start"),
            "allDay is true, so start must be a date such as 2026-12-01",
        ));
    }
    if !appt.all_day && start.is_date() {
        return Err(IcalError::field(
            f("start"),
            "is a date but allDay is false: add a time (2026-12-01T10:00:00) or set allDay",
        ));
    }
    let end = match &appt.end {
        Some(s) => Some(same_kind(&f("end"), when(&f("end"), s)?, start)?),
        None => None,
    };
    if let Some(e) = end {
        let before = match (start, e) {
            (When::Date(a), When::Date(b)) => b <= a,
            (When::Local(a), When::Local(b)) | (When::Utc(a), When::Utc(b)) => b < a,
            _ => false,
        };
        if before {
            let what = if appt.all_day {
                "after start (the day after the last day)"
            } else {
                "at or after start"
            };
            return Err(IcalError::field(f("end"), format!("must be {what}")));
        }
    }
    if let Some(d) = &appt.duration {
        if end.is_some() {
            return Err(IcalError::field(
                f("duration"),
                "give end or duration, not both",
            ));
        }
        let secs = parse_duration(d)
            .map_err(|e| IcalError::field(f("duration"), format!("{d:?}: {e}")))?;
        if secs < 0 {
            return Err(IcalError::field(f("duration"), "must not be negative"));
        }
    }
    let zone = match &appt.time_zone {
        None => {
            if appt.time_zone_rule.is_some() {
                return Err(IcalError::field(
                    f("timeZoneRule"),
                    "is given without timeZone",
                ));
            }
            None
        }
        Some(_) if appt.all_day => {
            return Err(IcalError::field(
                f("timeZone"),
                "must be null for an all-day appointment (its dates are the same in every zone)",
            ));
        }
        Some(name) => {
            check_text(&f("timeZone"), name)?;
            if name.trim().is_empty() || name.contains(['\n', '\r']) {
                return Err(IcalError::field(
                    f("timeZone"),
                    "must be a zone name such as Europe/Madrid",
                ));
            }
            let rule = match &appt.time_zone_rule {
                Some(r) => Rule::parse(r)
                    .map_err(|e| IcalError::field(f("timeZoneRule"), format!("{r:?}: {e}")))?,
                None => Rule::for_zone(name).ok_or_else(|| IcalError::UnknownTimeZone {
                    field: f("timeZone"),
                    name: name.clone(),
                })?,
            };
            Some((name.clone(), rule))
        }
    };
    let recurrence_id = match &appt.recurrence_id {
        Some(s) => Some(same_kind(
            &f("recurrenceId"),
            when(&f("recurrenceId"), s)?,
            start,
        )?),
        None => None,
    };
    let list = |name: &str, items: &[String]| -> Result<Vec<When>, IcalError> {
        items
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let field = format!("{path}.{name}[{i}]");
                same_kind(&field, when(&field, s)?, start)
            })
            .collect()
    };
    let exdates = list("exdates", &appt.exdates)?;
    let rdates = list("rdates", &appt.rdates)?;
    if let Some(rule) = &appt.rrule {
        check_rrule(&f("rrule"), rule, start, zone.is_some())?;
    }
    for (name, value) in [
        ("summary", &appt.summary),
        ("description", &appt.description),
        ("location", &appt.location),
        ("url", &appt.url),
    ] {
        if let Some(v) = value {
            check_text(&f(name), v)?;
        }
    }
    if let Some(url) = &appt.url
        && (url.is_empty() || url.contains(char::is_whitespace))
    {
        return Err(IcalError::field(f("url"), "must be a URI without spaces"));
    }
    if let Some(p) = appt.priority
        && p > 9
    {
        return Err(IcalError::field(f("priority"), "must be 0 to 9"));
    }
    for (i, a) in appt.attendees.iter().enumerate() {
        let field = format!("{path}.attendees[{i}]");
        check_address(&a.email).map_err(|e| IcalError::field(format!("{field}.email"), e))?;
        if let Some(n) = &a.name {
            check_text(&format!("{field}.name"), n)?;
        }
        for (pname, token) in [("role", a.role.as_str()), ("partstat", a.partstat.as_str())] {
            check_token(&format!("{field}.{pname}"), token)?;
        }
        if let Some(c) = &a.cutype {
            check_token(&format!("{field}.cutype"), c.as_str())?;
        }
    }
    for (i, a) in appt.alarms.iter().enumerate() {
        let field = format!("{path}.alarms[{i}].trigger");
        if parse_duration(&a.trigger).is_err() {
            match When::from_model(&a.trigger) {
                Ok(When::Utc(_)) if !a.related_end => {}
                _ => {
                    return Err(IcalError::field(
                        field,
                        format!(
                            "{:?}: expected a duration such as -PT15M or a UTC time such as 2026-12-01T08:45:00Z",
                            a.trigger
                        ),
                    ));
                }
            }
        }
        check_extra(
            &format!("{path}.alarms[{i}].extra"),
            &a.extra,
            ALARM_MODELLED,
        )?;
        if let Some(action) = &a.action {
            check_token(&format!("{path}.alarms[{i}].action"), action)?;
        }
    }
    for (i, c) in appt.categories.iter().enumerate() {
        check_text(&format!("{path}.categories[{i}]"), c)?;
    }
    for tok in [
        appt.method.as_ref().map(|m| m.as_str()),
        appt.status.as_ref().map(|s| s.as_str()),
        appt.transparency.as_ref().map(|t| t.as_str()),
    ]
    .into_iter()
    .flatten()
    {
        check_token(path, tok)?;
    }
    check_extra(&format!("{path}.extra"), &appt.extra, MODELLED)?;
    let mut overrides = Vec::with_capacity(appt.overrides.len());
    for (i, o) in appt.overrides.iter().enumerate() {
        let opath = format!("{path}.overrides[{i}]");
        if o.uid != appt.uid {
            return Err(IcalError::field(
                format!("{opath}.uid"),
                "must equal the event's uid",
            ));
        }
        if o.recurrence_id.is_none() {
            return Err(IcalError::field(
                format!("{opath}.recurrenceId"),
                "an override needs the start of the occurrence it replaces",
            ));
        }
        if !o.overrides.is_empty() {
            return Err(IcalError::field(
                format!("{opath}.overrides"),
                "an override cannot have overrides",
            ));
        }
        overrides.push(resolve(o, &opath)?);
    }
    Ok(Resolved {
        appt,
        dtstamp,
        start,
        end,
        zone,
        recurrence_id,
        exdates,
        rdates,
        overrides,
    })
}

/// Checks that an enumerated value is an iCalendar token (letters, digits, `-`).
fn check_token(field: &str, tok: &str) -> Result<(), IcalError> {
    if tok.is_empty() || !tok.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(IcalError::field(
            field,
            format!("{tok:?} is not a valid token"),
        ));
    }
    Ok(())
}
