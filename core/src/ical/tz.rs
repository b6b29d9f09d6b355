//! Time zones without a time-zone database crate.
//!
//! `tzdata.tsv` (generated from the system's TZif files by
//! `scripts/gen-tz-table.py`) maps every IANA zone name to its POSIX TZ rule,
//! the footer of the zone's TZif file, such as `CET-1CEST,M3.5.0,M10.5.0/3`.
//! That one line is enough to write a VTIMEZONE (STANDARD and DAYLIGHT with a
//! yearly RRULE, the shape Outlook writes) and to turn local times into UTC for
//! the current rules. Historical rules are not covered: a meeting is in the
//! present or the future. The table costs ~17 KB (5 KB gzipped) in the wasm
//! build; chrono-tz would bring the whole database with its history.
//!
//! The reverse also lives here: a VTIMEZONE read from a file whose TZID is not
//! an IANA name (Outlook writes `W. Europe Standard Time`) is turned back into
//! a POSIX rule, so that the appointment can be written again and converted.

use std::fmt::Write as _;

use super::value::{Date, DateTime, days_in_month, format_offset};

static TABLE: &str = include_str!("tzdata.tsv");

/// The table as sorted `(zone, rule)` pairs, split once.
fn table() -> &'static [(&'static str, &'static str)] {
    static INDEX: std::sync::OnceLock<Vec<(&'static str, &'static str)>> =
        std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        // The generator writes the rows sorted (a test checks it).
        TABLE
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('\t'))
            .collect()
    })
}

fn exact(name: &str) -> Option<(&'static str, &'static str)> {
    let rows = table();
    rows.binary_search_by(|(z, _)| (*z).cmp(name))
        .ok()
        .and_then(|i| rows.get(i).copied())
}

/// The IANA name and rule for `name`, or for its IANA suffix when it has a
/// vendor prefix (`/mozilla.org/20050126_1/Europe/Madrid`).
fn find(name: &str) -> Option<(&'static str, &'static str)> {
    if name.is_empty() {
        return None;
    }
    if let Some(row) = exact(name) {
        return Some(row);
    }
    let mut rest = name;
    while let Some((_, tail)) = rest.split_once('/') {
        if tail.contains('/')
            && let Some(row) = exact(tail)
        {
            return Some(row);
        }
        rest = tail;
    }
    None
}

/// Looks up the POSIX rule of an IANA zone name (links such as `US/Eastern`
/// included). Names with a vendor prefix, such as
/// `/mozilla.org/20050126_1/Europe/Madrid`, are found by their IANA suffix.
pub fn lookup(name: &str) -> Option<&'static str> {
    find(name).map(|(_, rule)| rule)
}

/// The IANA name that [`lookup`] matched for `name` (itself or its suffix).
pub fn canonical_name(name: &str) -> Option<&'static str> {
    find(name).map(|(zone, _)| zone)
}

/// When in the year a transition happens (POSIX `Mm.w.d`, `Jn` or `n`), and at
/// which local time (seconds, may be negative or beyond a day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Day `weekday` (0 = Sunday) of week `week` (1..=4, 5 = last) of `month`.
    Month {
        month: u8,
        week: u8,
        weekday: u8,
        time: i32,
    },
    /// Julian day 1..=365, February 29 never counted.
    Julian { day: u16, time: i32 },
    /// Zero-based day of the year 0..=365, February 29 counted.
    Ordinal { day: u16, time: i32 },
}

/// The daylight-saving part of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Daylight {
    pub(crate) name: String,
    /// Seconds east of UTC while daylight time is on.
    pub(crate) offset: i32,
    pub(crate) start: Transition,
    pub(crate) end: Transition,
}

/// A zone's current rule: standard offset and, optionally, daylight time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub(crate) std_name: String,
    /// Seconds east of UTC in standard time.
    pub(crate) std_offset: i32,
    pub(crate) daylight: Option<Daylight>,
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn number(&mut self) -> Result<i32, String> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.s
            .get(start..self.pos)
            .filter(|d| !d.is_empty() && d.len() <= 3)
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| format!("expected a number at position {start}"))
    }
    fn name(&mut self) -> Result<String, String> {
        let start = self.pos;
        if self.eat(b'<') {
            while self.peek().is_some_and(|b| b != b'>') {
                self.pos += 1;
            }
            let name = self
                .s
                .get(start + 1..self.pos)
                .unwrap_or_default()
                .to_string();
            if !self.eat(b'>') {
                return Err("unclosed <name>".to_string());
            }
            return Ok(name);
        }
        while self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
            self.pos += 1;
        }
        match self.s.get(start..self.pos) {
            Some(n) if n.len() >= 3 => Ok(n.to_string()),
            _ => Err(format!("expected a zone abbreviation at position {start}")),
        }
    }
    /// `[+-]hh[:mm[:ss]]` in seconds.
    fn hms(&mut self) -> Result<i32, String> {
        let sign = if self.eat(b'-') {
            -1
        } else {
            self.eat(b'+');
            1
        };
        let mut secs = self.number()? * 3600;
        if self.eat(b':') {
            secs += self.number()? * 60;
            if self.eat(b':') {
                secs += self.number()?;
            }
        }
        Ok(sign * secs)
    }
    fn transition(&mut self) -> Result<Transition, String> {
        let t = if self.eat(b'M') {
            let month = self.number()?;
            let week = if self.eat(b'.') { self.number()? } else { -1 };
            let weekday = if self.eat(b'.') { self.number()? } else { -1 };
            if !(1..=12).contains(&month) || !(1..=5).contains(&week) || !(0..=6).contains(&weekday)
            {
                return Err("bad Mm.w.d transition".to_string());
            }
            Transition::Month {
                month: month as u8,
                week: week as u8,
                weekday: weekday as u8,
                time: 7200,
            }
        } else if self.eat(b'J') {
            let day = self.number()?;
            if !(1..=365).contains(&day) {
                return Err("bad Jn transition".to_string());
            }
            Transition::Julian {
                day: day as u16,
                time: 7200,
            }
        } else {
            let day = self.number()?;
            if !(0..=365).contains(&day) {
                return Err("bad n transition".to_string());
            }
            Transition::Ordinal {
                day: day as u16,
                time: 7200,
            }
        };
        if !self.eat(b'/') {
            return Ok(t);
        }
        let time = self.hms()?;
        if !(-167 * 3600..=167 * 3600).contains(&time) {
            return Err("transition time out of range".to_string());
        }
        Ok(match t {
            Transition::Month {
                month,
                week,
                weekday,
                ..
            } => Transition::Month {
                month,
                week,
                weekday,
                time,
            },
            Transition::Julian { day, .. } => Transition::Julian { day, time },
            Transition::Ordinal { day, .. } => Transition::Ordinal { day, time },
        })
    }
}

impl Rule {
    /// Reads a POSIX TZ rule such as `CET-1CEST,M3.5.0,M10.5.0/3` or `<+0530>-5:30`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut c = Cursor { s, pos: 0 };
        let std_name = c.name()?;
        let std_offset = -c.hms()?;
        let daylight = if c.peek().is_some() && c.peek() != Some(b',') {
            let name = c.name()?;
            let offset = if c.peek().is_some_and(|b| b != b',') {
                -c.hms()?
            } else {
                std_offset + 3600
            };
            if !c.eat(b',') {
                return Err("daylight time without transition rules".to_string());
            }
            let start = c.transition()?;
            if !c.eat(b',') {
                return Err("daylight time without an end rule".to_string());
            }
            let end = c.transition()?;
            Some(Daylight {
                name,
                offset,
                start,
                end,
            })
        } else {
            None
        };
        if c.peek().is_some() {
            return Err(format!("unexpected text at position {}", c.pos));
        }
        if std_offset.abs() > 26 * 3600 {
            return Err("offset out of range".to_string());
        }
        Ok(Self {
            std_name,
            std_offset,
            daylight,
        })
    }

    /// The rule of an IANA zone name from the built-in table.
    pub fn for_zone(name: &str) -> Option<Self> {
        lookup(name).and_then(|r| Self::parse(r).ok())
    }

    /// Whether this zone observes daylight-saving time.
    pub fn has_daylight(&self) -> bool {
        self.daylight.is_some()
    }

    /// The UTC offset in seconds at the UTC instant `utc` (seconds since the epoch).
    pub fn offset_at_utc(&self, utc: i64) -> i32 {
        let Some(d) = &self.daylight else {
            return self.std_offset;
        };
        let year = DateTime::from_seconds(utc + i64::from(self.std_offset))
            .date
            .year;
        let start = transition_local(d.start, year) - i64::from(self.std_offset);
        let end = transition_local(d.end, year) - i64::from(d.offset);
        let on = if start <= end {
            utc >= start && utc < end
        } else {
            utc >= start || utc < end
        };
        if on { d.offset } else { self.std_offset }
    }

    /// The UTC instant of a local wall-clock time. In the spring gap the
    /// offset before the gap is used, in the autumn overlap the first
    /// occurrence (RFC 5545 section 3.3.5).
    pub(crate) fn local_to_utc(&self, local: DateTime) -> i64 {
        let l = local.seconds();
        let Some(d) = &self.daylight else {
            return l - i64::from(self.std_offset);
        };
        let as_dst = l - i64::from(d.offset);
        if self.offset_at_utc(as_dst) == d.offset {
            as_dst
        } else {
            l - i64::from(self.std_offset)
        }
    }

    /// This rule as a POSIX TZ string.
    pub fn to_posix(&self) -> String {
        fn name(n: &str) -> String {
            if n.len() >= 3 && n.bytes().all(|b| b.is_ascii_alphabetic()) {
                n.to_string()
            } else {
                format!("<{n}>")
            }
        }
        fn hms(secs: i32) -> String {
            let sign = if secs < 0 { "-" } else { "" };
            let a = secs.unsigned_abs();
            let (h, m, s) = (a / 3600, a % 3600 / 60, a % 60);
            match (m, s) {
                (0, 0) => format!("{sign}{h}"),
                (_, 0) => format!("{sign}{h}:{m:02}"),
                _ => format!("{sign}{h}:{m:02}:{s:02}"),
            }
        }
        fn transition(t: Transition) -> String {
            let (mut out, time) = match t {
                Transition::Month {
                    month,
                    week,
                    weekday,
                    time,
                } => (format!("M{month}.{week}.{weekday}"), time),
                Transition::Julian { day, time } => (format!("J{day}"), time),
                Transition::Ordinal { day, time } => (format!("{day}"), time),
            };
            if time != 7200 {
                out.push('/');
                out.push_str(&hms(time));
            }
            out
        }
        let mut out = format!("{}{}", name(&self.std_name), hms(-self.std_offset));
        if let Some(d) = &self.daylight {
            out.push_str(&name(&d.name));
            if d.offset != self.std_offset + 3600 {
                out.push_str(&hms(-d.offset));
            }
            let _ = write!(out, ",{},{}", transition(d.start), transition(d.end));
        }
        out
    }
}

/// Seconds since the epoch of the local wall-clock moment of `t` in `year`.
fn transition_local(t: Transition, year: i32) -> i64 {
    let (day, time) = match t {
        Transition::Month {
            month,
            week,
            weekday,
            time,
        } => (month_day(year, month, week, weekday), time),
        Transition::Julian { day, time } => {
            // Day 60 is March 1 whether or not the year is a leap year.
            let jan1 = Date {
                year,
                month: 1,
                day: 1,
            }
            .days();
            let leap_shift = i64::from(super::value::is_leap(year) && day >= 60);
            (jan1 + i64::from(day) - 1 + leap_shift, time)
        }
        Transition::Ordinal { day, time } => (
            Date {
                year,
                month: 1,
                day: 1,
            }
            .days()
                + i64::from(day),
            time,
        ),
    };
    day * 86_400 + i64::from(time)
}

/// Days since the epoch of weekday `weekday` of week `week` (5 = last) of a month.
fn month_day(year: i32, month: u8, week: u8, weekday: u8) -> i64 {
    let first = Date {
        year,
        month,
        day: 1,
    };
    let first_wd = first.weekday();
    let mut day =
        1 + (7 + i64::from(weekday) - i64::from(first_wd)) % 7 + 7 * (i64::from(week) - 1);
    let len = i64::from(days_in_month(year, month));
    while day > len {
        day -= 7;
    }
    first.days() + day - 1
}

const DAYS: [&str; 7] = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"];

/// How a transition recurs, as VTIMEZONE lines: the first onset (DTSTART, in
/// 1970) and either an RRULE or, for rules an RRULE cannot express, an RDATE
/// list for 1970..=2099.
fn observance_lines(t: Transition, out: &mut Vec<String>) {
    let first = DateTime::from_seconds(transition_local(t, 1970));
    out.push(format!("DTSTART:{}", super::value::When::Local(first)));
    if let Transition::Month {
        month,
        week,
        weekday,
        time,
    } = t
    {
        let shift = i64::from(time).div_euclid(86_400);
        if shift == 0 {
            let nth = if week == 5 {
                "-1".to_string()
            } else {
                week.to_string()
            };
            out.push(format!(
                "RRULE:FREQ=YEARLY;BYMONTH={month};BYDAY={nth}{}",
                DAYS[usize::from(weekday % 7)]
            ));
            return;
        }
        // The transition moves to another day: weekday + shift within the
        // shifted range of days of the month the week covers, if that
        // range stays inside the month in every year.
        let (lo, hi) = if week == 5 {
            let len = i64::from(days_in_month(1971, month));
            (len - 6, len)
        } else {
            (7 * i64::from(week) - 6, 7 * i64::from(week))
        };
        let (lo, hi) = (lo + shift, hi + shift);
        let shortest = if month == 2 {
            28
        } else {
            i64::from(days_in_month(1971, month))
        };
        let stable = week != 5 || month != 2;
        if lo >= 1 && hi <= shortest && stable {
            let wd = (i64::from(weekday) + shift).rem_euclid(7) as usize;
            let days: Vec<String> = (lo..=hi).map(|d| d.to_string()).collect();
            out.push(format!(
                "RRULE:FREQ=YEARLY;BYMONTH={month};BYDAY={};BYMONTHDAY={}",
                DAYS[wd % 7],
                days.join(",")
            ));
            return;
        }
    }
    let dates: Vec<String> = (1971..=2099)
        .map(|y| {
            super::value::When::Local(DateTime::from_seconds(transition_local(t, y))).to_string()
        })
        .collect();
    for chunk in dates.chunks(8) {
        out.push(format!("RDATE:{}", chunk.join(",")));
    }
}

/// The unfolded content lines of a VTIMEZONE for `tzid` with this rule.
pub(crate) fn vtimezone_lines(tzid: &str, rule: &Rule) -> Vec<String> {
    let mut out = vec!["BEGIN:VTIMEZONE".to_string(), format!("TZID:{tzid}")];
    match &rule.daylight {
        None => {
            out.push("BEGIN:STANDARD".to_string());
            out.push("DTSTART:19700101T000000".to_string());
            out.push(format!("TZOFFSETFROM:{}", format_offset(rule.std_offset)));
            out.push(format!("TZOFFSETTO:{}", format_offset(rule.std_offset)));
            out.push(format!("TZNAME:{}", rule.std_name));
            out.push("END:STANDARD".to_string());
        }
        Some(d) => {
            out.push("BEGIN:STANDARD".to_string());
            observance_lines(d.end, &mut out);
            out.push(format!("TZOFFSETFROM:{}", format_offset(d.offset)));
            out.push(format!("TZOFFSETTO:{}", format_offset(rule.std_offset)));
            out.push(format!("TZNAME:{}", rule.std_name));
            out.push("END:STANDARD".to_string());
            out.push("BEGIN:DAYLIGHT".to_string());
            observance_lines(d.start, &mut out);
            out.push(format!("TZOFFSETFROM:{}", format_offset(rule.std_offset)));
            out.push(format!("TZOFFSETTO:{}", format_offset(d.offset)));
            out.push(format!("TZNAME:{}", d.name));
            out.push("END:DAYLIGHT".to_string());
        }
    }
    out.push("END:VTIMEZONE".to_string());
    out
}

/// One STANDARD or DAYLIGHT observance read from a VTIMEZONE.
#[derive(Debug, Clone, Default)]
pub(crate) struct Observance {
    pub(crate) daylight: bool,
    pub(crate) start: Option<DateTime>,
    pub(crate) offset_to: Option<i32>,
    pub(crate) name: Option<String>,
    /// The RRULE, if any.
    pub(crate) rrule: Option<String>,
}

/// Reads a yearly `BYMONTH=m;BYDAY=nDD` RRULE (without UNTIL) into a transition.
fn rrule_transition(rrule: &str, start: DateTime) -> Option<Transition> {
    let mut month = None;
    let mut byday = None;
    let mut yearly = false;
    for part in rrule.split(';') {
        let (k, v) = part.split_once('=')?;
        match k.to_ascii_uppercase().as_str() {
            "FREQ" => yearly = v.eq_ignore_ascii_case("YEARLY"),
            "BYMONTH" => month = v.parse::<u8>().ok(),
            "BYDAY" => byday = Some(v.to_ascii_uppercase()),
            "UNTIL" | "COUNT" => return None,
            _ => {}
        }
    }
    let month = month.filter(|m| (1..=12).contains(m))?;
    let byday = byday?;
    if !yearly || byday.len() < 3 {
        return None;
    }
    // Untrusted text: split only on a character boundary (a non-ASCII BYDAY
    // is simply not a rule we read).
    let (n, day) = byday.split_at_checked(byday.len() - 2)?;
    let weekday = DAYS.iter().position(|d| *d == day)? as u8;
    let week = match n {
        "-1" => 5,
        "" => return None,
        n => n
            .trim_start_matches('+')
            .parse::<u8>()
            .ok()
            .filter(|w| (1..=4).contains(w))?,
    };
    let time =
        i32::from(start.hour) * 3600 + i32::from(start.minute) * 60 + i32::from(start.second);
    Some(Transition::Month {
        month,
        week,
        weekday,
        time,
    })
}

/// Derives the current rule of a VTIMEZONE from its observances: the latest
/// STANDARD and the latest still-recurring DAYLIGHT. `None` when the
/// observances use rules a POSIX string cannot express.
pub(crate) fn rule_from_observances(obs: &[Observance]) -> Option<Rule> {
    let latest = |daylight: bool| {
        obs.iter()
            .filter(|o| o.daylight == daylight)
            .max_by_key(|o| o.start.map(DateTime::seconds).unwrap_or(i64::MIN))
    };
    let std = latest(false)?;
    let std_offset = std.offset_to?;
    let std_name = std.name.clone().unwrap_or_else(|| "STD".to_string());
    let dst = latest(true).filter(|d| {
        d.rrule
            .as_deref()
            .is_some_and(|r| !r.to_ascii_uppercase().contains("UNTIL"))
    });
    let daylight = match (dst, &std.rrule) {
        (Some(d), Some(std_rule)) => {
            let start = rrule_transition(d.rrule.as_deref()?, d.start?)?;
            let end = rrule_transition(std_rule, std.start?)?;
            Some(Daylight {
                name: d.name.clone().unwrap_or_else(|| "DST".to_string()),
                offset: d.offset_to?,
                start,
                end,
            })
        }
        _ => None,
    };
    Some(Rule {
        std_name,
        std_offset,
        daylight,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(y: i32, mo: u8, d: u8, h: u8, mi: u8) -> DateTime {
        DateTime::new(Date::new(y, mo, d).expect("date"), h, mi, 0).expect("time")
    }

    #[test]
    fn every_rule_in_the_table_parses_and_prints_back() {
        let mut n = 0;
        for line in TABLE.lines().filter(|l| !l.starts_with('#')) {
            let (zone, rule) = line.split_once('\t').expect("tab");
            let parsed = Rule::parse(rule).unwrap_or_else(|e| panic!("{zone} {rule}: {e}"));
            assert_eq!(parsed.to_posix(), rule, "{zone}");
            n += 1;
        }
        assert!(n > 400, "only {n} zones in the table");
    }

    #[test]
    fn an_rrule_byday_with_non_ascii_text_is_no_rule_and_no_panic() {
        // Found by the mime_parse fuzz target: BYDAY ending inside a
        // multi-byte character split a str off a char boundary.
        let start = dt(2026, 3, 29, 2, 0);
        assert!(rrule_transition("FREQ=YEARLY;BYMONTH=3;BYDAY=-1\u{FFFD}U", start).is_none());
        assert!(rrule_transition("FREQ=YEARLY;BYMONTH=3;BYDAY=\u{e9}\u{e9}", start).is_none());
        assert!(rrule_transition("FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", start).is_some());
    }

    #[test]
    fn the_table_is_sorted_for_binary_search() {
        let rows = table();
        assert!(rows.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(lookup("US/Eastern"), Some("EST5EDT,M3.2.0,M11.1.0"));
        assert_eq!(lookup("Africa/Abidjan"), Some("GMT0"));
        assert_eq!(lookup("Zulu"), Some("UTC0"));
    }

    #[test]
    fn madrid_switches_on_the_last_sundays() {
        let r = Rule::for_zone("Europe/Madrid").expect("Madrid");
        // 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET.
        assert_eq!(
            r.local_to_utc(dt(2026, 3, 29, 1, 59)),
            dt(2026, 3, 29, 0, 59).seconds()
        );
        assert_eq!(
            r.local_to_utc(dt(2026, 3, 29, 3, 0)),
            dt(2026, 3, 29, 1, 0).seconds()
        );
        assert_eq!(
            r.local_to_utc(dt(2026, 7, 1, 10, 0)),
            dt(2026, 7, 1, 8, 0).seconds()
        );
        assert_eq!(
            r.local_to_utc(dt(2026, 12, 1, 10, 0)),
            dt(2026, 12, 1, 9, 0).seconds()
        );
        // The gap reads with the offset before it; the overlap is its first occurrence.
        assert_eq!(
            r.local_to_utc(dt(2026, 3, 29, 2, 30)),
            dt(2026, 3, 29, 1, 30).seconds()
        );
        assert_eq!(
            r.local_to_utc(dt(2026, 10, 25, 2, 30)),
            dt(2026, 10, 25, 0, 30).seconds()
        );
    }

    #[test]
    fn southern_and_fractional_zones() {
        let syd = Rule::for_zone("Australia/Sydney").expect("Sydney");
        assert_eq!(
            syd.local_to_utc(dt(2026, 1, 15, 12, 0)),
            dt(2026, 1, 15, 1, 0).seconds()
        );
        assert_eq!(
            syd.local_to_utc(dt(2026, 7, 15, 12, 0)),
            dt(2026, 7, 15, 2, 0).seconds()
        );
        let kol = Rule::for_zone("Asia/Kolkata").expect("Kolkata");
        assert_eq!(
            kol.local_to_utc(dt(2026, 7, 15, 12, 0)),
            dt(2026, 7, 15, 6, 30).seconds()
        );
        assert!(Rule::for_zone("Mars/Olympus").is_none());
    }

    #[test]
    fn vendor_prefixed_names_resolve_to_their_iana_suffix() {
        assert_eq!(
            canonical_name("/mozilla.org/20050126_1/Europe/Madrid"),
            Some("Europe/Madrid")
        );
        assert_eq!(canonical_name("Europe/Madrid"), Some("Europe/Madrid"));
        assert_eq!(canonical_name("W. Europe Standard Time"), None);
    }

    #[test]
    fn madrid_vtimezone_has_outlook_shape() {
        let r = Rule::for_zone("Europe/Madrid").expect("Madrid");
        let lines = vtimezone_lines("Europe/Madrid", &r).join("\n");
        assert!(lines.contains("BEGIN:STANDARD\nDTSTART:19701025T030000\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\nTZOFFSETFROM:+0200\nTZOFFSETTO:+0100\nTZNAME:CET"), "{lines}");
        assert!(lines.contains("BEGIN:DAYLIGHT\nDTSTART:19700329T020000\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0200\nTZNAME:CEST"), "{lines}");
    }

    #[test]
    fn shifted_transitions_use_monthday_ranges_or_rdates() {
        // Jerusalem: Friday before the last Sunday of March (4th Thursday + 26 h).
        let r = Rule::parse("IST-2IDT,M3.4.4/26,M10.5.0").expect("rule");
        let lines = vtimezone_lines("Asia/Jerusalem", &r).join("\n");
        assert!(
            lines.contains("RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=FR;BYMONTHDAY=23,24,25,26,27,28,29"),
            "{lines}"
        );
        // Egypt: the day after the last Thursday of October may be in November.
        let r = Rule::parse("EET-2EEST,M4.5.5/0,M10.5.4/24").expect("rule");
        let lines = vtimezone_lines("Africa/Cairo", &r).join("\n");
        assert!(lines.contains("RDATE:"), "{lines}");
    }

    #[test]
    fn rule_is_recovered_from_outlook_observances() {
        let obs = [
            Observance {
                daylight: false,
                start: Some(dt(1601, 1, 1, 3, 0)),
                offset_to: Some(3600),
                name: None,
                rrule: Some("FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10".to_string()),
            },
            Observance {
                daylight: true,
                start: Some(dt(1601, 1, 1, 2, 0)),
                offset_to: Some(7200),
                name: None,
                rrule: Some("FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3".to_string()),
            },
        ];
        let rule = rule_from_observances(&obs).expect("rule");
        assert_eq!(rule.to_posix(), "STD-1DST,M3.5.0,M10.5.0/3");
    }
}
