//! The appointment model: the `calendar` field of the message spec.
//!
//! Plain data with serde (camelCase JSON). The names of DESIGN.md are a
//! contract (method, uid, sequence, start, end, timeZone, allDay, summary,
//! description, location, organizer, attendees[{email,name,role,partstat,rsvp}],
//! rrule, alarms[{trigger}]); the other fields are additions and are left out
//! of the JSON when empty. Dates are strings: `2026-12-01T10:00:00` (local to
//! `timeZone`, floating without one), `2026-12-01T09:00:00Z` (UTC) or
//! `2026-12-01` (all day). [`Appointment::validate`](super::Appointment) checks
//! all of it with errors that name the field.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::address::Mailbox;

/// Defines a token enum (an iCalendar enumerated value) with its known
/// values and an `Other` for x-names and IANA tokens postwire does not know.
/// In JSON it is the token string; parsing is case-insensitive.
macro_rules! token_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $token:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value postwire has no variant for (an x-name or IANA token), upper-cased.
            Other(String),
        }

        impl $name {
            /// The iCalendar token.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $token,)+
                    Self::Other(s) => s,
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                let upper = s.trim().to_ascii_uppercase();
                match upper.as_str() {
                    $($token => Self::$variant,)+
                    _ => Self::Other(upper),
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::from(s.to_string())
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.as_str().to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

token_enum! {
    /// The iTIP method (RFC 5546) of the calendar object: the `METHOD` property.
    Method {
        /// An invitation, or an update of one, from the organizer.
        Request = "REQUEST",
        /// The organizer cancels the event (or some attendees' part in it).
        Cancel = "CANCEL",
        /// An attendee answers a request.
        Reply = "REPLY",
        /// An event published with no replies expected.
        Publish = "PUBLISH",
        /// An attendee proposes changes.
        Counter = "COUNTER",
        /// The organizer refuses a counter-proposal.
        DeclineCounter = "DECLINECOUNTER",
        /// An attendee asks for the latest version.
        Refresh = "REFRESH",
        /// The organizer adds instances to a recurring event.
        Add = "ADD",
    }
}

token_enum! {
    /// An attendee's participation status (`PARTSTAT`).
    #[derive(Default)]
    PartStat {
        /// No answer yet (the default).
        #[default]
        NeedsAction = "NEEDS-ACTION",
        /// Accepted.
        Accepted = "ACCEPTED",
        /// Declined.
        Declined = "DECLINED",
        /// Tentatively accepted.
        Tentative = "TENTATIVE",
        /// Delegated to someone else.
        Delegated = "DELEGATED",
    }
}

token_enum! {
    /// An attendee's role (`ROLE`).
    #[derive(Default)]
    Role {
        /// Chairs the meeting.
        Chair = "CHAIR",
        /// Required (the default).
        #[default]
        ReqParticipant = "REQ-PARTICIPANT",
        /// Optional.
        OptParticipant = "OPT-PARTICIPANT",
        /// For information only.
        NonParticipant = "NON-PARTICIPANT",
    }
}

token_enum! {
    /// What kind of calendar user an attendee is (`CUTYPE`).
    CuType {
        /// A person (the default).
        Individual = "INDIVIDUAL",
        /// A group of people.
        Group = "GROUP",
        /// A physical resource, such as a projector.
        Resource = "RESOURCE",
        /// A room.
        Room = "ROOM",
        /// Not known.
        Unknown = "UNKNOWN",
    }
}

token_enum! {
    /// The event's status (`STATUS`).
    Status {
        /// Tentative.
        Tentative = "TENTATIVE",
        /// Confirmed.
        Confirmed = "CONFIRMED",
        /// Cancelled (set by a CANCEL).
        Cancelled = "CANCELLED",
    }
}

token_enum! {
    /// Whether the event blocks time (`TRANSP`).
    Transparency {
        /// Busy (the default).
        Opaque = "OPAQUE",
        /// Free.
        Transparent = "TRANSPARENT",
    }
}

/// A meeting or event: one VEVENT and the METHOD of its calendar.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Appointment {
    /// The iTIP method; `null` for a plain calendar file without METHOD.
    /// A message built with `null` is sent as REQUEST.
    #[serde(default)]
    pub method: Option<Method>,
    /// The event's globally unique id (`UID`), the same in every update and reply.
    pub uid: String,
    /// Revision number (`SEQUENCE`), raised by the organizer on every significant change.
    #[serde(default)]
    pub sequence: u32,
    /// When this revision was created (`DTSTAMP`), UTC (`…Z`). When `null` the
    /// writer uses the time it is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtstamp: Option<String>,
    /// Start: local to `timeZone`, UTC with `Z`, or a date when `allDay`.
    pub start: String,
    /// End (exclusive; for all-day events the day after the last day). At most one of `end` and `duration`.
    #[serde(default)]
    pub end: Option<String>,
    /// Length as an RFC 5545 duration (`PT1H30M`, `P1D`), instead of `end`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// IANA zone name (`Europe/Madrid`) of the local times; `null` for UTC or floating times.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// POSIX TZ rule of `timeZone` when it is not an IANA name (read from a
    /// file's VTIMEZONE, such as Outlook's `W. Europe Standard Time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone_rule: Option<String>,
    /// An all-day event: `start` and `end` are dates.
    #[serde(default)]
    pub all_day: bool,
    /// Title (`SUMMARY`).
    #[serde(default)]
    pub summary: Option<String>,
    /// Description (`DESCRIPTION`), plain text.
    #[serde(default)]
    pub description: Option<String>,
    /// Location (`LOCATION`).
    #[serde(default)]
    pub location: Option<String>,
    /// The organizer, `Name <addr>` or `addr` in JSON (`ORGANIZER;CN=Name:mailto:addr`).
    #[serde(default)]
    pub organizer: Option<Mailbox>,
    /// The attendees (`ATTENDEE`).
    #[serde(default)]
    pub attendees: Vec<Attendee>,
    /// `STATUS`: TENTATIVE, CONFIRMED or CANCELLED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// `TRANSP`: OPAQUE (busy) or TRANSPARENT (free).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transparency: Option<Transparency>,
    /// `PRIORITY`, 0 (undefined) and 1 (highest) to 9 (lowest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// Recurrence rule (`RRULE`) as RFC 5545 writes it: `FREQ=WEEKLY;COUNT=4`.
    #[serde(default)]
    pub rrule: Option<String>,
    /// Excluded occurrences (`EXDATE`), in the same form as `start`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exdates: Vec<String>,
    /// Extra occurrences (`RDATE`), in the same form as `start`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rdates: Vec<String>,
    /// For an override of one occurrence: the original start of that occurrence (`RECURRENCE-ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence_id: Option<String>,
    /// Reminders (`VALARM`).
    #[serde(default)]
    pub alarms: Vec<Alarm>,
    /// `CATEGORIES`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// `URL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Changed occurrences of a recurring event: further VEVENTs with the same
    /// UID and a `recurrenceId` (their own `overrides` stay empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<Appointment>,
    /// Properties the model has no field for, kept as unfolded content lines
    /// (`X-MICROSOFT-CDO-BUSYSTATUS:BUSY`) and written back as they are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<String>,
}

/// One attendee (`ATTENDEE;CN=…;ROLE=…;PARTSTAT=…;RSVP=TRUE:mailto:…`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Attendee {
    /// The address (without `mailto:`).
    pub email: String,
    /// The display name (`CN`).
    #[serde(default)]
    pub name: Option<String>,
    /// `ROLE`, REQ-PARTICIPANT by default.
    #[serde(default)]
    pub role: Role,
    /// `PARTSTAT`, NEEDS-ACTION by default.
    #[serde(default)]
    pub partstat: PartStat,
    /// `RSVP`: whether the organizer asks for a reply.
    #[serde(default)]
    pub rsvp: bool,
    /// `CUTYPE`, INDIVIDUAL when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutype: Option<CuType>,
}

/// A reminder (`VALARM`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Alarm {
    /// When: a duration relative to the start (`-PT15M`), or a UTC time (`2026-12-01T08:45:00Z`).
    pub trigger: String,
    /// Relative to the end instead of the start (`RELATED=END`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub related_end: bool,
    /// `ACTION`; `null` means DISPLAY.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The text shown; `null` writes `Reminder`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Other VALARM properties (`ATTENDEE`, `X-WR-ALARMUID`...), as unfolded content lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<String>,
}

/// A whole calendar object as read from a file: its METHOD and every VEVENT,
/// overrides folded into their master event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Calendar {
    /// `METHOD`, if any.
    pub method: Option<Method>,
    /// `PRODID`, the program that wrote it.
    pub prodid: Option<String>,
    /// The events (each with `method` set to the calendar's).
    pub events: Vec<Appointment>,
    /// Components postwire does not model (VTODO, VJOURNAL, VFREEBUSY...), by name and line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

impl Attendee {
    /// An attendee with the defaults: required, needs action, no RSVP.
    pub fn new(email: impl Into<String>) -> Self {
        Self {
            email: email.into(),
            ..Self::default()
        }
    }
}
