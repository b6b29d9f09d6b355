//! iTIP (RFC 5546): the four methods postwire sends. REQUEST (invite or
//! update), CANCEL (STATUS:CANCELLED, SEQUENCE raised), REPLY (one attendee's
//! answer to a request) and PUBLISH (no replies expected), plus [`check`],
//! the per-method rules a message is held to before it is built.

use super::error::IcalError;
use super::model::{Appointment, Method, PartStat, Status};
use crate::address::Mailbox;

fn itip(method: &Method, reason: impl Into<String>) -> IcalError {
    IcalError::Itip {
        method: method.to_string(),
        reason: reason.into(),
    }
}

/// Checks the RFC 5546 rules of the appointment's method (REQUEST when `null`):
/// REQUEST and CANCEL need an organizer and attendees, REPLY an organizer
/// and exactly one attendee, PUBLISH an organizer. Field checks are done by
/// the writer.
pub fn check(appt: &Appointment) -> Result<(), IcalError> {
    let method = appt.method.clone().unwrap_or(Method::Request);
    let needs_organizer = matches!(
        method,
        Method::Request | Method::Cancel | Method::Reply | Method::Publish
    );
    if needs_organizer && appt.organizer.is_none() {
        return Err(itip(&method, "calendar.organizer is required"));
    }
    match method {
        Method::Request | Method::Cancel if appt.attendees.is_empty() => Err(itip(
            &method,
            "calendar.attendees must list at least one attendee",
        )),
        Method::Reply if appt.attendees.len() != 1 => Err(itip(
            &method,
            format!(
                "a reply carries exactly one attendee, the one answering (found {})",
                appt.attendees.len()
            ),
        )),
        Method::Publish if !appt.attendees.is_empty() => Err(itip(
            &method,
            "a PUBLISH has no attendees (send a REQUEST to invite people)",
        )),
        _ => Ok(()),
    }
}

/// The request as a REQUEST.
pub fn request(appt: &Appointment) -> Appointment {
    Appointment {
        method: Some(Method::Request),
        ..appt.clone()
    }
}

/// The appointment as a PUBLISH.
pub fn publish(appt: &Appointment) -> Appointment {
    Appointment {
        method: Some(Method::Publish),
        ..appt.clone()
    }
}

/// The cancellation of an event: METHOD:CANCEL, STATUS:CANCELLED and
/// SEQUENCE one higher, for the same UID and attendees. `dtstamp` is cleared
/// so that the writer stamps the cancellation with its own time.
pub fn cancel(appt: &Appointment) -> Appointment {
    Appointment {
        method: Some(Method::Cancel),
        status: Some(Status::Cancelled),
        sequence: appt.sequence.saturating_add(1),
        dtstamp: None,
        alarms: Vec::new(),
        overrides: Vec::new(),
        ..appt.clone()
    }
}

/// An attendee's answer to `request`: METHOD:REPLY with the same UID,
/// SEQUENCE, times and organizer, and only the answering attendee, whose
/// PARTSTAT is `partstat` (ACCEPTED, DECLINED or TENTATIVE). `attendee` is
/// the address (or `Name <address>`) as listed in the request, compared
/// without regard to case.
pub fn reply(
    request: &Appointment,
    attendee: &str,
    partstat: PartStat,
) -> Result<Appointment, IcalError> {
    let method = Method::Reply;
    match &request.method {
        Some(Method::Request) | None => {}
        Some(other) => {
            return Err(itip(
                &method,
                format!("only a REQUEST can be answered, this is a {other}"),
            ));
        }
    }
    if !matches!(
        partstat,
        PartStat::Accepted | PartStat::Declined | PartStat::Tentative
    ) {
        return Err(itip(
            &method,
            format!("the answer must be ACCEPTED, DECLINED or TENTATIVE, not {partstat}"),
        ));
    }
    if request.organizer.is_none() {
        return Err(itip(&method, "the request has no organizer to reply to"));
    }
    let addr = Mailbox::parse(attendee)
        .map_err(|e| IcalError::field("attendee", e.to_string()))?
        .email;
    let Some(found) = request
        .attendees
        .iter()
        .find(|a| a.email.eq_ignore_ascii_case(&addr))
    else {
        return Err(itip(
            &method,
            format!("{addr} is not an attendee of this request"),
        ));
    };
    let mut me = found.clone();
    me.partstat = partstat;
    me.rsvp = false;
    Ok(Appointment {
        method: Some(method),
        uid: request.uid.clone(),
        sequence: request.sequence,
        dtstamp: None,
        start: request.start.clone(),
        end: request.end.clone(),
        duration: request.duration.clone(),
        time_zone: request.time_zone.clone(),
        time_zone_rule: request.time_zone_rule.clone(),
        all_day: request.all_day,
        summary: request.summary.clone(),
        organizer: request.organizer.clone(),
        attendees: vec![me],
        rrule: request.rrule.clone(),
        exdates: request.exdates.clone(),
        rdates: request.rdates.clone(),
        recurrence_id: request.recurrence_id.clone(),
        ..Appointment::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ical::Attendee;

    fn invite() -> Appointment {
        Appointment {
            method: Some(Method::Request),
            uid: "u1@example.com".into(),
            sequence: 2,
            start: "2026-12-01T10:00:00".into(),
            end: Some("2026-12-01T11:00:00".into()),
            time_zone: Some("Europe/Madrid".into()),
            organizer: Mailbox::parse("Ana <ana@example.com>").ok(),
            attendees: vec![Attendee {
                rsvp: true,
                name: Some("Bob".into()),
                ..Attendee::new("Bob@Example.org")
            }],
            description: Some("agenda".into()),
            ..Appointment::default()
        }
    }

    #[test]
    fn reply_keeps_identity_and_only_the_answering_attendee() {
        let r = reply(&invite(), "bob@example.org", PartStat::Accepted).expect("reply");
        assert_eq!(r.method, Some(Method::Reply));
        assert_eq!((r.uid.as_str(), r.sequence), ("u1@example.com", 2));
        assert_eq!(r.attendees.len(), 1);
        assert_eq!(r.attendees[0].partstat, PartStat::Accepted);
        assert!(!r.attendees[0].rsvp);
        assert_eq!(r.description, None);
        check(&r).expect("valid reply");
    }

    #[test]
    fn reply_refuses_strangers_and_non_answers() {
        let err = reply(&invite(), "eve@example.org", PartStat::Accepted).expect_err("stranger");
        assert!(
            err.to_string()
                .contains("eve@example.org is not an attendee"),
            "{err}"
        );
        assert!(reply(&invite(), "bob@example.org", PartStat::NeedsAction).is_err());
        assert!(reply(&cancel(&invite()), "bob@example.org", PartStat::Accepted).is_err());
    }

    #[test]
    fn cancel_raises_sequence_and_sets_status() {
        let c = cancel(&invite());
        assert_eq!(c.sequence, 3);
        assert_eq!(c.status, Some(Status::Cancelled));
        check(&c).expect("valid cancel");
    }

    #[test]
    fn method_rules() {
        let mut a = invite();
        a.attendees.clear();
        assert!(check(&a).is_err());
        assert!(check(&publish(&a)).is_ok());
        assert!(check(&publish(&invite())).is_err());
        a.organizer = None;
        assert!(check(&publish(&a)).is_err());
    }
}
