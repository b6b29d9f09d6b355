//! Reading RFC 5545 text into the model. Strict: the result is a
//! `Result`, and every structural fault (an unterminated or mismatched
//! component, a bad date, a missing UID or DTSTART, a malformed line) is an
//! [`IcalError`] with the line number where it starts; the parser never
//! panics. Properties the model has no field for are not dropped: they are
//! kept verbatim in `extra` and written back. Components postwire does not
//! model (VTODO, VJOURNAL...) are listed in [`Calendar::skipped`].
//!
//! Time zones: a TZID that names an IANA zone (also behind a vendor prefix
//! such as `/mozilla.org/…/Europe/Madrid`) becomes that `timeZone`; any other
//! TZID (Outlook's `W. Europe Standard Time`) keeps its name and gets the rule
//! derived from the file's VTIMEZONE in `timeZoneRule`.

use super::check::check_address;
use super::error::IcalError;
use super::line::{ContentLine, parse_line, split_text_list, unescape_text, unfold};
use super::model::{Alarm, Appointment, Attendee, Calendar, Method};
use super::tz::{Observance, Rule, canonical_name, rule_from_observances};
use super::value::{When, parse_duration, parse_offset};
use super::write::DEFAULT_ALARM_TEXT;
use crate::address::Mailbox;

/// How deep components may nest (VCALENDAR > VEVENT > VALARM is 3).
const MAX_DEPTH: usize = 8;

/// A component and its content, as read.
#[derive(Debug, Default)]
struct Component {
    name: String,
    line: usize,
    props: Vec<ContentLine>,
    children: Vec<Component>,
}

impl Component {
    fn missing(&self, property: &str) -> IcalError {
        IcalError::MissingProperty {
            component: self.name.clone(),
            property: property.to_string(),
            line: self.line,
        }
    }
}

/// Builds the component tree of every VCALENDAR in the text.
fn components(bytes: &[u8]) -> Result<Vec<Component>, IcalError> {
    let mut roots = Vec::new();
    let mut stack: Vec<Component> = Vec::new();
    let lines = unfold(bytes)?;
    if lines.is_empty() {
        return Err(IcalError::NotACalendar {
            line: 1,
            found: "empty text".to_string(),
        });
    }
    for (n, raw) in lines {
        let cl = parse_line(&raw, n)?;
        match cl.name.as_str() {
            "BEGIN" => {
                let name = cl.value.trim().to_ascii_uppercase();
                if name.is_empty() {
                    return Err(cl.bad("BEGIN needs a component name"));
                }
                if stack.is_empty() && name != "VCALENDAR" {
                    return Err(IcalError::NotACalendar {
                        line: n,
                        found: super::error::shorten(&raw),
                    });
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(IcalError::TooDeep {
                        line: n,
                        max: MAX_DEPTH,
                    });
                }
                stack.push(Component {
                    name,
                    line: n,
                    ..Component::default()
                });
            }
            "END" => {
                let name = cl.value.trim().to_ascii_uppercase();
                let Some(open) = stack.pop() else {
                    return Err(IcalError::NotACalendar {
                        line: n,
                        found: super::error::shorten(&raw),
                    });
                };
                if open.name != name {
                    return Err(IcalError::MismatchedEnd {
                        expected: open.name,
                        found: name,
                        line: n,
                        begin_line: open.line,
                    });
                }
                match stack.last_mut() {
                    Some(parent) => parent.children.push(open),
                    None => roots.push(open),
                }
            }
            _ => match stack.last_mut() {
                Some(c) => c.props.push(cl),
                None if roots.is_empty() => {
                    return Err(IcalError::NotACalendar {
                        line: n,
                        found: super::error::shorten(&raw),
                    });
                }
                None => return Err(IcalError::TrailingContent { line: n }),
            },
        }
    }
    if let Some(open) = stack.pop() {
        return Err(IcalError::Unterminated {
            component: open.name,
            line: open.line,
        });
    }
    Ok(roots)
}

/// The zones of one VCALENDAR: TZID and the rule derived from its VTIMEZONE.
struct Zones(Vec<(String, Option<Rule>)>);

impl Zones {
    fn read(cal: &Component) -> Result<Self, IcalError> {
        let mut zones = Vec::new();
        for vtz in cal.children.iter().filter(|c| c.name == "VTIMEZONE") {
            let tzid = vtz
                .props
                .iter()
                .find(|p| p.name == "TZID")
                .map(|p| unescape_text(&p.value))
                .ok_or_else(|| vtz.missing("TZID"))?;
            let mut observances = Vec::new();
            for o in &vtz.children {
                let daylight = match o.name.as_str() {
                    "STANDARD" => false,
                    "DAYLIGHT" => true,
                    _ => continue,
                };
                let mut obs = Observance {
                    daylight,
                    ..Observance::default()
                };
                for p in &o.props {
                    match p.name.as_str() {
                        "DTSTART" => match When::from_ical(&p.value) {
                            Ok(When::Local(t)) => obs.start = Some(t),
                            Ok(_) => return Err(p.bad("a VTIMEZONE DTSTART is a local date-time")),
                            Err(e) => return Err(p.bad(e)),
                        },
                        "TZOFFSETTO" => {
                            obs.offset_to = Some(parse_offset(&p.value).map_err(|e| p.bad(e))?)
                        }
                        "TZOFFSETFROM" => {
                            parse_offset(&p.value).map_err(|e| p.bad(e))?;
                        }
                        "TZNAME" => obs.name = Some(unescape_text(&p.value)),
                        "RRULE" => obs.rrule = Some(p.value.clone()),
                        _ => {}
                    }
                }
                if obs.start.is_none() {
                    return Err(o.missing("DTSTART"));
                }
                if obs.offset_to.is_none() {
                    return Err(o.missing("TZOFFSETTO"));
                }
                observances.push(obs);
            }
            zones.push((tzid, rule_from_observances(&observances)));
        }
        Ok(Self(zones))
    }

    /// The model's `timeZone` and `timeZoneRule` for a TZID.
    fn resolve(&self, tzid: &str) -> (String, Option<Rule>) {
        if let Some(name) = canonical_name(tzid) {
            return (name.to_string(), None);
        }
        let rule = self
            .0
            .iter()
            .find(|(id, _)| id == tzid)
            .and_then(|(_, r)| r.clone());
        (tzid.to_string(), rule)
    }

    /// The rule to convert times in `tzid` to UTC, if known.
    fn rule(&self, tzid: &str) -> Option<Rule> {
        match self.resolve(tzid) {
            (name, None) => Rule::for_zone(&name),
            (_, rule) => rule,
        }
    }
}

/// Reads a date property's values (comma-separated) as `When`s, each
/// converted into the event's zone terms: a local time in another zone than
/// the event's becomes UTC.
fn read_dates(
    p: &ContentLine,
    event_tz: Option<&str>,
    zones: &Zones,
) -> Result<(Vec<When>, Option<String>), IcalError> {
    let value_type = p.param("VALUE").map(str::to_ascii_uppercase);
    if value_type.as_deref() == Some("PERIOD") {
        return Err(p.bad("PERIOD values are not supported"));
    }
    let tzid = p.param("TZID");
    let mut out = Vec::new();
    for v in p.value.split(',') {
        let w = When::from_ical(v.trim()).map_err(|e| p.bad(e))?;
        if value_type.as_deref() == Some("DATE") && !w.is_date() {
            return Err(p.bad("VALUE=DATE but the value has a time"));
        }
        let w = match (w, tzid, event_tz) {
            (When::Local(t), Some(z), Some(ev))
                if z != ev && zones.resolve(z).0 != zones.resolve(ev).0 =>
            {
                let rule = zones.rule(z).ok_or_else(|| {
                    p.bad(format!(
                        "TZID {z:?} has no VTIMEZONE and is not an IANA zone"
                    ))
                })?;
                When::Utc(super::value::DateTime::from_seconds(rule.local_to_utc(t)))
            }
            (w, _, _) => w,
        };
        out.push(w);
    }
    let zone = match out.first() {
        Some(When::Local(_)) => tzid.map(str::to_string),
        _ => None,
    };
    Ok((out, zone))
}

/// The address of a `mailto:` cal-address value.
fn cal_address(p: &ContentLine) -> Result<String, IcalError> {
    let v = p.value.trim();
    let addr = if v.len() >= 7
        && v.get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("mailto:"))
    {
        v.get(7..).unwrap_or_default()
    } else {
        v
    };
    check_address(addr).map_err(|e| p.bad(e))?;
    Ok(addr.to_string())
}

fn set_once<T>(slot: &mut Option<T>, value: T, p: &ContentLine) -> Result<(), IcalError> {
    if slot.is_some() {
        return Err(p.bad(format!("{} appears twice", p.name)));
    }
    *slot = Some(value);
    Ok(())
}

fn read_alarm(c: &Component) -> Result<Alarm, IcalError> {
    let mut alarm = Alarm::default();
    let mut trigger = None;
    for p in &c.props {
        match p.name.as_str() {
            "ACTION" => {
                let a = p.value.trim().to_ascii_uppercase();
                alarm.action = (a != "DISPLAY").then_some(a);
            }
            "TRIGGER" => {
                let is_dt = p
                    .param("VALUE")
                    .is_some_and(|v| v.eq_ignore_ascii_case("DATE-TIME"));
                let value = if is_dt {
                    match When::from_ical(&p.value) {
                        Ok(w @ When::Utc(_)) => w.to_model(),
                        Ok(_) => return Err(p.bad("an absolute TRIGGER must be in UTC")),
                        Err(e) => return Err(p.bad(e)),
                    }
                } else {
                    parse_duration(&p.value).map_err(|e| p.bad(e))?;
                    alarm.related_end = p
                        .param("RELATED")
                        .is_some_and(|r| r.eq_ignore_ascii_case("END"));
                    p.value.clone()
                };
                set_once(&mut trigger, value, p)?;
            }
            "DESCRIPTION" => {
                let d = unescape_text(&p.value);
                alarm.description = (d != DEFAULT_ALARM_TEXT).then_some(d);
            }
            _ => alarm.extra.push(p.raw.clone()),
        }
    }
    alarm.trigger = trigger.ok_or_else(|| c.missing("TRIGGER"))?;
    Ok(alarm)
}

fn read_event(
    c: &Component,
    method: Option<&Method>,
    zones: &Zones,
    skipped: &mut Vec<String>,
) -> Result<Appointment, IcalError> {
    let mut a = Appointment {
        method: method.cloned(),
        ..Appointment::default()
    };
    let (mut uid, mut seq, mut stamp) = (None, None, None);
    let mut start_prop = None;
    for p in &c.props {
        if p.name == "DTSTART" {
            set_once(&mut start_prop, p, p)?;
        }
    }
    let start_prop = start_prop.ok_or_else(|| c.missing("DTSTART"))?;
    let (starts, start_zone) = read_dates(start_prop, None, zones)?;
    let start = match starts.as_slice() {
        [s] => *s,
        _ => return Err(start_prop.bad("DTSTART has one value")),
    };
    a.start = start.to_model();
    a.all_day = start.is_date();
    if let Some(z) = &start_zone {
        let (name, rule) = zones.resolve(z);
        a.time_zone = Some(name);
        a.time_zone_rule = rule.map(|r| r.to_posix());
    }
    let tz = start_zone.as_deref();
    let one = |p: &ContentLine| -> Result<When, IcalError> {
        match read_dates(p, tz, zones)?.0.as_slice() {
            [w] => Ok(*w),
            _ => Err(p.bad(format!("{} has one value", p.name))),
        }
    };
    let (mut end, mut duration, mut recurrence_id, mut rrule) = (None, None, None, None);
    let (mut summary, mut description, mut location, mut organizer) = (None, None, None, None);
    let (mut status, mut transp, mut priority, mut url) = (None, None, None, None);
    for p in &c.props {
        match p.name.as_str() {
            "DTSTART" => {}
            "UID" => set_once(&mut uid, unescape_text(&p.value), p)?,
            "SEQUENCE" => set_once(
                &mut seq,
                p.value
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| p.bad("not a number"))?,
                p,
            )?,
            "DTSTAMP" => match When::from_ical(&p.value) {
                Ok(w @ When::Utc(_)) => set_once(&mut stamp, w.to_model(), p)?,
                Ok(_) => return Err(p.bad("DTSTAMP must be in UTC (ending in Z)")),
                Err(e) => return Err(p.bad(e)),
            },
            "DTEND" => set_once(&mut end, one(p)?.to_model(), p)?,
            "DURATION" => {
                parse_duration(&p.value).map_err(|e| p.bad(e))?;
                set_once(&mut duration, p.value.trim().to_string(), p)?;
            }
            "RECURRENCE-ID" => set_once(&mut recurrence_id, one(p)?.to_model(), p)?,
            "RRULE" => set_once(&mut rrule, p.value.trim().to_string(), p)?,
            "EXDATE" => a
                .exdates
                .extend(read_dates(p, tz, zones)?.0.into_iter().map(When::to_model)),
            "RDATE" => a
                .rdates
                .extend(read_dates(p, tz, zones)?.0.into_iter().map(When::to_model)),
            "SUMMARY" => set_once(&mut summary, unescape_text(&p.value), p)?,
            "DESCRIPTION" => set_once(&mut description, unescape_text(&p.value), p)?,
            "LOCATION" => set_once(&mut location, unescape_text(&p.value), p)?,
            "ORGANIZER" => {
                let addr = cal_address(p)?;
                let mailbox =
                    Mailbox::new(p.param("CN"), &addr).map_err(|e| p.bad(e.to_string()))?;
                set_once(&mut organizer, mailbox, p)?;
            }
            "ATTENDEE" => {
                let email = cal_address(p)?;
                a.attendees.push(Attendee {
                    email,
                    name: p.param("CN").map(str::to_string).filter(|n| !n.is_empty()),
                    role: p.param("ROLE").map(Into::into).unwrap_or_default(),
                    partstat: p.param("PARTSTAT").map(Into::into).unwrap_or_default(),
                    rsvp: p
                        .param("RSVP")
                        .is_some_and(|v| v.eq_ignore_ascii_case("TRUE")),
                    cutype: p.param("CUTYPE").map(Into::into),
                });
            }
            "STATUS" => set_once(&mut status, p.value.as_str().into(), p)?,
            "TRANSP" => set_once(&mut transp, p.value.as_str().into(), p)?,
            "PRIORITY" => {
                let n = p
                    .value
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|n| *n <= 9)
                    .ok_or_else(|| p.bad("must be 0 to 9"))?;
                set_once(&mut priority, n, p)?;
            }
            "CATEGORIES" => a.categories.extend(split_text_list(&p.value)),
            "URL" => set_once(&mut url, p.value.trim().to_string(), p)?,
            _ => a.extra.push(p.raw.clone()),
        }
    }
    a.uid = uid.ok_or_else(|| c.missing("UID"))?;
    a.sequence = seq.unwrap_or(0);
    a.dtstamp = stamp;
    (a.end, a.duration, a.recurrence_id, a.rrule) = (end, duration, recurrence_id, rrule);
    (a.summary, a.description, a.location, a.organizer) =
        (summary, description, location, organizer);
    (a.status, a.transparency, a.priority, a.url) = (status, transp, priority, url);
    for child in &c.children {
        if child.name == "VALARM" {
            a.alarms.push(read_alarm(child)?);
        } else {
            skipped.push(format!("{} (line {})", child.name, child.line));
        }
    }
    Ok(a)
}

/// Reads every VCALENDAR in `bytes` into one [`Calendar`]: its METHOD, its
/// events (occurrence overrides, VEVENTs with a RECURRENCE-ID, go into their
/// master's `overrides`) and the names of components it skipped.
pub fn parse_calendar(bytes: &[u8]) -> Result<Calendar, IcalError> {
    let mut cal = Calendar::default();
    let mut loose: Vec<Appointment> = Vec::new();
    for root in components(bytes)? {
        let mut method = None;
        for p in &root.props {
            match p.name.as_str() {
                "METHOD" => method = Some(Method::from(p.value.as_str())),
                "PRODID" => cal.prodid = Some(unescape_text(&p.value)),
                "VERSION" if p.value.trim() != "2.0" => {
                    return Err(p.bad("only iCalendar 2.0 is supported"));
                }
                _ => {}
            }
        }
        if cal.method.is_none() {
            cal.method.clone_from(&method);
        }
        let zones = Zones::read(&root)?;
        for child in &root.children {
            match child.name.as_str() {
                "VEVENT" => {
                    let ev = read_event(child, method.as_ref(), &zones, &mut cal.skipped)?;
                    if ev.recurrence_id.is_some() {
                        loose.push(ev);
                    } else {
                        cal.events.push(ev);
                    }
                }
                "VTIMEZONE" => {}
                other => cal.skipped.push(format!("{other} (line {})", child.line)),
            }
        }
    }
    for ev in loose {
        match cal
            .events
            .iter_mut()
            .find(|m| m.uid == ev.uid && m.recurrence_id.is_none())
        {
            Some(master) => master.overrides.push(ev),
            None => cal.events.push(ev),
        }
    }
    Ok(cal)
}

/// Reads the first event of an iCalendar text (with its overrides); see
/// [`parse_calendar`] for files with several.
pub fn parse_ics(bytes: &[u8]) -> Result<Appointment, IcalError> {
    parse_calendar(bytes)?
        .events
        .into_iter()
        .next()
        .ok_or(IcalError::NoEvent)
}
