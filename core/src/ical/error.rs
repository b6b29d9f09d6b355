//! The one error type of the iCalendar module: every way that reading an
//! `.ics` text, validating an [`Appointment`](super::Appointment) or
//! building an iTIP message can fail, each with what was wrong and where
//! (a line number for text, a field path such as `calendar.start` for the model).

use thiserror::Error;

/// An iCalendar error. Parse errors carry the 1-based line number of the
/// physical line where the faulty content line starts.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IcalError {
    /// The text is not valid UTF-8 (RFC 5545 section 3.1.4 makes UTF-8 the charset).
    #[error("line {line}: the text is not valid UTF-8")]
    NotUtf8 {
        /// Line where the content line with the invalid bytes starts.
        line: usize,
    },
    /// A content line is not `NAME[;PARAM=VALUE...]:VALUE`.
    #[error("line {line}: {reason}")]
    Syntax {
        /// Line where the content line starts.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The text does not start with `BEGIN:VCALENDAR`.
    #[error("line {line}: expected BEGIN:VCALENDAR, found {found:?}")]
    NotACalendar {
        /// Line of the first content line.
        line: usize,
        /// The content line found instead (shortened).
        found: String,
    },
    /// A component was opened and never closed.
    #[error("line {line}: BEGIN:{component} is never closed by END:{component}")]
    Unterminated {
        /// The component name, such as `VEVENT`.
        component: String,
        /// Line of its `BEGIN`.
        line: usize,
    },
    /// An `END` that does not match the innermost open component.
    #[error("line {line}: END:{found} does not close BEGIN:{expected} (line {begin_line})")]
    MismatchedEnd {
        /// The component that is open.
        expected: String,
        /// The name in the `END` line.
        found: String,
        /// Line of the `END`.
        line: usize,
        /// Line of the open component's `BEGIN`.
        begin_line: usize,
    },
    /// Components nested deeper than any real calendar needs.
    #[error("line {line}: components nested deeper than {max} levels")]
    TooDeep {
        /// Line of the `BEGIN` that went too deep.
        line: usize,
        /// The limit.
        max: usize,
    },
    /// Content after `END:VCALENDAR`.
    #[error("line {line}: content after END:VCALENDAR")]
    TrailingContent {
        /// Line of the first content line after the calendar.
        line: usize,
    },
    /// A component lacks a property it must have.
    #[error("line {line}: {component} has no {property}")]
    MissingProperty {
        /// The component, such as `VEVENT`.
        component: String,
        /// The missing property, such as `UID`.
        property: String,
        /// Line of the component's `BEGIN`.
        line: usize,
    },
    /// A property value (or parameter) that cannot be read.
    #[error("line {line}: bad {property} value {value:?}: {reason}")]
    BadValue {
        /// The property, such as `DTSTART`.
        property: String,
        /// The offending value (shortened).
        value: String,
        /// Why it is wrong.
        reason: String,
        /// Line of the content line.
        line: usize,
    },
    /// The calendar holds no VEVENT.
    #[error("the calendar holds no VEVENT")]
    NoEvent,
    /// A field of the appointment model is invalid.
    #[error("{field}: {reason}")]
    InvalidField {
        /// Path of the field, such as `calendar.start` or `calendar.attendees[1].email`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A time zone name that is neither in the IANA table nor described by a rule.
    #[error("{field}: unknown time zone {name:?} (use an IANA name such as Europe/Madrid)")]
    UnknownTimeZone {
        /// The field that named it.
        field: String,
        /// The name.
        name: String,
    },
    /// An iTIP rule (RFC 5546) is broken, such as a REQUEST without attendees.
    #[error("iTIP {method}: {reason}")]
    Itip {
        /// The method, such as `REQUEST`.
        method: String,
        /// The rule that was broken.
        reason: String,
    },
}

impl IcalError {
    /// An [`IcalError::InvalidField`].
    pub(crate) fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The line number of a parse error, if the error has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::NotUtf8 { line }
            | Self::Syntax { line, .. }
            | Self::NotACalendar { line, .. }
            | Self::Unterminated { line, .. }
            | Self::MismatchedEnd { line, .. }
            | Self::TooDeep { line, .. }
            | Self::TrailingContent { line }
            | Self::MissingProperty { line, .. }
            | Self::BadValue { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// Shortens untrusted text for an error message (at most 60 characters).
pub(crate) fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}
