//! Date, date-time, duration and UTC-offset values: reading and writing
//! them both in the model's form (`2026-12-01T10:00:00`, `…Z`, `2026-12-01`)
//! and in RFC 5545's (`20261201T100000`, `…Z`, `20261201`), plus the
//! calendar arithmetic (proleptic Gregorian) that time zones need.

use std::fmt;

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Date {
    pub(crate) year: i32,
    pub(crate) month: u8,
    pub(crate) day: u8,
}

/// A date and a wall-clock time, with no zone attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DateTime {
    pub(crate) date: Date,
    pub(crate) hour: u8,
    pub(crate) minute: u8,
    pub(crate) second: u8,
}

/// A DTSTART/DTEND-like value: a date, a local (or floating) date-time, or a UTC date-time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    /// An all-day date.
    Date(Date),
    /// A date-time in the appointment's time zone (floating without one).
    Local(DateTime),
    /// A date-time in UTC.
    Utc(DateTime),
}

pub(crate) fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub(crate) fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        _ => 28,
    }
}

impl Date {
    /// Validates and builds a date.
    pub(crate) fn new(year: i32, month: u8, day: u8) -> Result<Self, String> {
        if !(1..=9999).contains(&year) {
            return Err(format!("year {year} is out of range"));
        }
        if !(1..=12).contains(&month) {
            return Err(format!("month {month} does not exist"));
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(format!("day {day} does not exist in {year}-{month:02}"));
        }
        Ok(Self { year, month, day })
    }

    /// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
    pub(crate) fn days(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` days after 1970-01-01.
    pub(crate) fn from_days(days: i64) -> Self {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Self { year, month, day }
    }

    /// `2026-12-01`.
    pub(crate) fn to_iso(self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// Day of the week, 0 = Sunday.
    pub(crate) fn weekday(self) -> u8 {
        (self.days() + 4).rem_euclid(7) as u8
    }
}

impl DateTime {
    /// Validates and builds a date-time (a leap second 60 is accepted).
    pub(crate) fn new(date: Date, hour: u8, minute: u8, second: u8) -> Result<Self, String> {
        if hour > 23 || minute > 59 || second > 60 {
            return Err(format!(
                "time {hour:02}:{minute:02}:{second:02} does not exist"
            ));
        }
        Ok(Self {
            date,
            hour,
            minute,
            second,
        })
    }

    /// Seconds since 1970-01-01T00:00:00 of this wall-clock reading.
    pub(crate) fn seconds(self) -> i64 {
        self.date.days() * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// The wall-clock reading `secs` seconds after 1970-01-01T00:00:00.
    pub(crate) fn from_seconds(secs: i64) -> Self {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        Self {
            date: Date::from_days(days),
            hour: (rem / 3600) as u8,
            minute: (rem % 3600 / 60) as u8,
            second: (rem % 60) as u8,
        }
    }
}

fn digits(s: &str, what: &str) -> Result<u32, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} is not a number"));
    }
    s.parse::<u32>()
        .map_err(|_| format!("{what} is not a number"))
}

fn small(s: &str, what: &str) -> Result<u8, String> {
    u8::try_from(digits(s, what)?).map_err(|_| format!("{what} is out of range"))
}

/// Cuts `n` bytes off the front of `s`, if `s` has them and they are ASCII.
fn take<'a>(s: &mut &'a str, n: usize) -> Option<&'a str> {
    if s.len() < n || !s.is_char_boundary(n) {
        return None;
    }
    let (head, tail) = s.split_at(n);
    *s = tail;
    Some(head)
}

impl When {
    /// Reads the model form: `2026-12-01`, `2026-12-01T10:00:00` or `2026-12-01T10:00:00Z`.
    pub(crate) fn from_model(s: &str) -> Result<Self, String> {
        const EXPECTED: &str = "expected 2026-12-01T10:00:00 (local), 2026-12-01T09:00:00Z (UTC) or 2026-12-01 (all day)";
        let bad = |why: String| format!("{why}; {EXPECTED}");
        let mut rest = s;
        let (Some(y), Some("-"), Some(m), Some("-"), Some(d)) = (
            take(&mut rest, 4),
            take(&mut rest, 1),
            take(&mut rest, 2),
            take(&mut rest, 1),
            take(&mut rest, 2),
        ) else {
            return Err(EXPECTED.to_string());
        };
        let date = Date::new(
            digits(y, "year").map_err(bad)? as i32,
            small(m, "month").map_err(bad)?,
            small(d, "day").map_err(bad)?,
        )
        .map_err(bad)?;
        if rest.is_empty() {
            return Ok(Self::Date(date));
        }
        let (Some("T"), Some(h), Some(":"), Some(mi), Some(":"), Some(sec)) = (
            take(&mut rest, 1),
            take(&mut rest, 2),
            take(&mut rest, 1),
            take(&mut rest, 2),
            take(&mut rest, 1),
            take(&mut rest, 2),
        ) else {
            return Err(EXPECTED.to_string());
        };
        let dt = DateTime::new(
            date,
            small(h, "hour").map_err(bad)?,
            small(mi, "minute").map_err(bad)?,
            small(sec, "second").map_err(bad)?,
        )
        .map_err(bad)?;
        match rest {
            "" => Ok(Self::Local(dt)),
            "Z" => Ok(Self::Utc(dt)),
            _ => Err(EXPECTED.to_string()),
        }
    }

    /// Reads RFC 5545 DATE (`20261201`) or DATE-TIME (`20261201T100000[Z]`).
    pub(crate) fn from_ical(s: &str) -> Result<Self, String> {
        let mut rest = s;
        let (Some(y), Some(m), Some(d)) =
            (take(&mut rest, 4), take(&mut rest, 2), take(&mut rest, 2))
        else {
            return Err("expected YYYYMMDD or YYYYMMDDTHHMMSS[Z]".to_string());
        };
        let date = Date::new(
            digits(y, "year")? as i32,
            small(m, "month")?,
            small(d, "day")?,
        )?;
        if rest.is_empty() {
            return Ok(Self::Date(date));
        }
        let (Some("T"), Some(h), Some(mi), Some(sec)) = (
            take(&mut rest, 1),
            take(&mut rest, 2),
            take(&mut rest, 2),
            take(&mut rest, 2),
        ) else {
            return Err("expected YYYYMMDD or YYYYMMDDTHHMMSS[Z]".to_string());
        };
        let dt = DateTime::new(
            date,
            small(h, "hour")?,
            small(mi, "minute")?,
            small(sec, "second")?,
        )?;
        match rest {
            "" => Ok(Self::Local(dt)),
            "Z" => Ok(Self::Utc(dt)),
            _ => Err("unexpected characters after the time".to_string()),
        }
    }

    /// Whether this is an all-day date.
    pub(crate) fn is_date(self) -> bool {
        matches!(self, Self::Date(_))
    }

    /// The model form.
    pub(crate) fn to_model(self) -> String {
        match self {
            Self::Date(d) => format!("{:04}-{:02}-{:02}", d.year, d.month, d.day),
            Self::Local(t) | Self::Utc(t) => {
                let d = t.date;
                format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}",
                    d.year,
                    d.month,
                    d.day,
                    t.hour,
                    t.minute,
                    t.second,
                    if matches!(self, Self::Utc(_)) {
                        "Z"
                    } else {
                        ""
                    }
                )
            }
        }
    }
}

impl fmt::Display for When {
    /// The RFC 5545 form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Date(d) => write!(f, "{:04}{:02}{:02}", d.year, d.month, d.day),
            Self::Local(t) | Self::Utc(t) => {
                let d = t.date;
                write!(
                    f,
                    "{:04}{:02}{:02}T{:02}{:02}{:02}",
                    d.year, d.month, d.day, t.hour, t.minute, t.second
                )?;
                if matches!(self, Self::Utc(_)) {
                    f.write_str("Z")?;
                }
                Ok(())
            }
        }
    }
}

/// Checks an RFC 5545 DURATION (`-PT15M`, `P1D`, `PT1H30M`, `P2W`) and returns it in seconds.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    const EXPECTED: &str = "expected a duration such as -PT15M, PT1H30M, P1D or P2W";
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'-') => (-1, &s[1..]),
        Some(b'+') => (1, &s[1..]),
        _ => (1, s),
    };
    let Some(rest) = rest.strip_prefix('P') else {
        return Err(EXPECTED.to_string());
    };
    let mut total: i64 = 0;
    let mut in_time = false;
    let mut number = String::new();
    let mut any = false;
    for c in rest.chars() {
        match c {
            '0'..='9' => number.push(c),
            'T' if !in_time && number.is_empty() => in_time = true,
            'W' | 'D' | 'H' | 'M' | 'S' => {
                let n: i64 = number.parse().map_err(|_| EXPECTED.to_string())?;
                number.clear();
                let unit = match (c, in_time) {
                    ('W', false) => 604_800,
                    ('D', false) => 86_400,
                    ('H', true) => 3600,
                    ('M', true) => 60,
                    ('S', true) => 1,
                    _ => return Err(EXPECTED.to_string()),
                };
                total = n
                    .checked_mul(unit)
                    .and_then(|v| total.checked_add(v))
                    .ok_or_else(|| "duration is too long".to_string())?;
                any = true;
            }
            _ => return Err(EXPECTED.to_string()),
        }
    }
    if !any || !number.is_empty() {
        return Err(EXPECTED.to_string());
    }
    Ok(sign * total)
}

/// Reads a UTC offset (`+0100`, `-0330`, `+013045`) in seconds.
pub(crate) fn parse_offset(s: &str) -> Result<i32, String> {
    const EXPECTED: &str = "expected a UTC offset such as +0100 or -0330";
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(EXPECTED.to_string()),
    };
    if !(rest.len() == 4 || rest.len() == 6) || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EXPECTED.to_string());
    }
    let h: i32 = rest[0..2].parse().map_err(|_| EXPECTED.to_string())?;
    let m: i32 = rest[2..4].parse().map_err(|_| EXPECTED.to_string())?;
    let sec: i32 = if rest.len() == 6 {
        rest[4..6].parse().map_err(|_| EXPECTED.to_string())?
    } else {
        0
    };
    if m > 59 || sec > 59 {
        return Err(EXPECTED.to_string());
    }
    Ok(sign * (h * 3600 + m * 60 + sec))
}

/// Writes a UTC offset in seconds as `+0100` (`+013045` when it has seconds).
pub(crate) fn format_offset(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    let (h, m, s) = (a / 3600, a % 3600 / 60, a % 60);
    if s == 0 {
        format!("{sign}{h:02}{m:02}")
    } else {
        format!("{sign}{h:02}{m:02}{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_over_four_centuries() {
        for days in (-200_000..200_000).step_by(37) {
            assert_eq!(Date::from_days(days).days(), days);
        }
        assert_eq!(Date::new(1970, 1, 1).map(Date::days), Ok(0));
        assert_eq!(Date::new(2026, 12, 1).map(Date::weekday), Ok(2));
    }

    #[test]
    fn model_and_ical_forms_agree() {
        for (model, ical) in [
            ("2026-12-01", "20261201"),
            ("2026-12-01T10:00:00", "20261201T100000"),
            ("2026-12-01T09:00:00Z", "20261201T090000Z"),
        ] {
            let w = When::from_model(model).expect("model form");
            assert_eq!(w.to_string(), ical);
            assert_eq!(
                When::from_ical(ical).map(When::to_model).as_deref(),
                Ok(model)
            );
        }
    }

    #[test]
    fn impossible_dates_are_refused_with_a_reason() {
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "2026-12-01T25:00:00",
            "2026-12-01 10:00",
            "x",
            "2026-1é-01",
        ] {
            assert!(When::from_model(bad).is_err(), "{bad}");
        }
        assert!(
            When::from_model("2026-02-30")
                .err()
                .is_some_and(|e| e.contains("day 30"))
        );
        assert!(When::from_ical("20260230").is_err());
    }

    #[test]
    fn durations_and_offsets() {
        assert_eq!(parse_duration("-PT15M"), Ok(-900));
        assert_eq!(parse_duration("P1DT2H"), Ok(93_600));
        assert_eq!(parse_duration("P2W"), Ok(1_209_600));
        for bad in ["", "P", "PT", "-P15M", "PT1D", "15M", "P1H"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_offset("-0330"), Ok(-12_600));
        assert_eq!(format_offset(-12_600), "-0330");
        assert_eq!(format_offset(3600), "+0100");
        assert!(parse_offset("0100").is_err());
    }
}
