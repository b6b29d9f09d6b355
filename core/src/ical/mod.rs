//! iCalendar (RFC 5545) appointments and iTIP (RFC 5546) meeting requests.
//!
//! What lives here: the [`Appointment`] model (the message spec's `calendar`
//! field), writing it as RFC 5545 text ([`to_ics`]), reading text back into
//! it ([`parse_ics`], [`parse_calendar`]), time zones from IANA data
//! ([`tz`]) and the iTIP methods REQUEST, CANCEL, REPLY and PUBLISH
//! ([`itip`]), and the email side, RFC 6047 ([`mime`]): the
//! `text/calendar; method=…` part that `build` adds and `parse` reads.
//!
//! | file      | job                                                         |
//! |-----------|-------------------------------------------------------------|
//! | model.rs  | the serde model (camelCase JSON)                            |
//! | check.rs  | validation of the model, errors naming the field            |
//! | value.rs  | dates, date-times, durations, UTC offsets                   |
//! | line.rs   | content lines: unfold, split, escape, quote, fold           |
//! | write.rs  | model -> text                                               |
//! | parse.rs  | text -> model (strict, errors with line numbers)            |
//! | tz.rs     | IANA zones as POSIX rules: VTIMEZONE and UTC conversion     |
//! | itip.rs   | REQUEST, CANCEL, REPLY, PUBLISH                             |
//! | mime.rs   | RFC 6047: calendar <-> MIME parts, the REPLY message        |
//!
//! # Why not a crate
//!
//! Two crates were weighed. `calcard` 0.3 (Stalwart) parses iCalendar well,
//! but depends unconditionally on `chrono-tz` (the whole IANA database with
//! its history, compiled into code, against a 300 KB gzipped budget for the
//! whole npm wasm),
//! `chrono`, `ahash`, `hashify` and a second major version of `mail-builder`
//! (1.x, while core uses 2.x); its model is a general property bag that we
//! would map to ours anyway. `icalendar` 0.17 pulls `chrono`, `iso8601`,
//! `nom` 8, `nom-language` and `uuid`; its parser is lenient (it does not
//! give the line numbers our errors promise) and its time-zone support again
//! means `chrono-tz`. The format itself is small: content lines, parameters,
//! nested components. Writing it ourselves costs about 60 KB gzipped of wasm
//! (docs/perf.md), and the time zones come from a 17 KB generated table of
//! POSIX rules ([`tz`]) instead of a tz crate.
//!
//! Nothing here reads a clock: the DTSTAMP of a new object is the `now`
//! passed in.

mod check;
mod error;
pub mod itip;
mod line;
pub mod mime;
mod model;
mod parse;
pub mod tz;
mod value;
mod write;

pub use error::IcalError;
pub use model::{
    Alarm, Appointment, Attendee, Calendar, CuType, Method, PartStat, Role, Status, Transparency,
};
pub use parse::{parse_calendar, parse_ics};
pub use write::{PRODID, calendar_to_ics, to_ics};

impl Appointment {
    /// Checks every field (dates, zone, addresses, rule, alarms...) without
    /// writing anything; the error names the field under `path` (such as `calendar`).
    pub fn validate(&self, path: &str) -> Result<(), IcalError> {
        check::resolve(self, path).map(|_| ())
    }
}
