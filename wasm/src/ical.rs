//! Meeting requests: `toIcs`, `parseIcs`, `parseCalendar` and `replyEml`,
//! the npm side of `postwire ics`, `postwire ics parse --all` and
//! `postwire reply` (core's `ical` module does the work).

use wasm_bindgen::prelude::*;

use postwire_core::ical::{self, Appointment, PartStat};

use crate::{
    errors::{BindingError, Coded, js},
    mime::bytes_from_js,
    options, spec,
};

#[wasm_bindgen(typescript_custom_section)]
const TS_ICAL: &str = r#"
/** How an attendee answers a meeting request. */
export type Answer = "ACCEPTED" | "DECLINED" | "TENTATIVE";
"#;

/// Writes an appointment as RFC 5545 text (CRLF line ends, folded), as
/// `postwire ics` does. `options.now` is the DTSTAMP when the appointment
/// has none (default: now).
///
/// Throws a `PostwireError` (`INVALID_SPEC`, `INVALID_CALENDAR` with the field in `path`).
#[wasm_bindgen(js_name = toIcs)]
pub fn to_ics(
    #[wasm_bindgen(unchecked_param_type = "Appointment")] appointment: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "BuildOptions")] options: Option<JsValue>,
) -> Result<String, JsValue> {
    let appt = appointment_from_js(appointment).map_err(js)?;
    let now = options::from_js(options).map_err(js)?.now;
    ical::to_ics(&appt, now).map_err(|e| js(relative_to_argument(&e)))
}

/// core names appointment fields as in a spec (`calendar.start`); for `toIcs`
/// the appointment is the argument itself, so its paths start below it.
fn relative_to_argument(err: &ical::IcalError) -> BindingError {
    let path = err.path();
    let message = err.to_string();
    let strip = |s: &str| {
        s.strip_prefix("calendar.")
            .or_else(|| s.strip_prefix("calendar"))
            .map(str::to_string)
            .unwrap_or_else(|| s.to_string())
    };
    BindingError::new(err.code(), strip(&path), strip(&message))
}

/// Reads the first event of an iCalendar text (a string or UTF-8 bytes).
///
/// Throws a `PostwireError` (`INVALID_ICS`, naming the line in the message).
#[wasm_bindgen(js_name = parseIcs, unchecked_return_type = "Appointment")]
pub fn parse_ics(
    #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] ics: JsValue,
) -> Result<JsValue, JsValue> {
    let bytes = text_from_js(&ics).map_err(js)?;
    let appt = ical::parse_ics(&bytes).map_err(js)?;
    spec::to_js(&appt).map_err(js)
}

/// Reads a whole iCalendar text: its METHOD and every event.
///
/// Throws a `PostwireError` (`INVALID_ICS`).
#[wasm_bindgen(js_name = parseCalendar, unchecked_return_type = "Calendar")]
pub fn parse_calendar(
    #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] ics: JsValue,
) -> Result<JsValue, JsValue> {
    let bytes = text_from_js(&ics).map_err(js)?;
    let calendar = ical::parse_calendar(&bytes).map_err(js)?;
    spec::to_js(&calendar).map_err(js)
}

/// An attendee's answer to a received meeting request (the request's bytes):
/// the REPLY message to the organizer, as `postwire reply` builds it.
/// `attendee` is the address as listed in the request.
///
/// Throws a `PostwireError` (`INVALID_ARGUMENT`, `ITIP` when the message holds
/// no request or the attendee is not invited, ...).
#[wasm_bindgen(js_name = replyEml, unchecked_return_type = "Uint8Array")]
pub fn reply_eml(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array")] request: JsValue,
    #[wasm_bindgen(unchecked_param_type = "Answer")] answer: JsValue,
    attendee: String,
    #[wasm_bindgen(unchecked_optional_param_type = "BuildOptions")] options: Option<JsValue>,
) -> Result<Vec<u8>, JsValue> {
    let bytes = bytes_from_js(&request, "").map_err(js)?;
    let partstat = match answer.as_string().as_deref() {
        Some("ACCEPTED") => PartStat::Accepted,
        Some("DECLINED") => PartStat::Declined,
        Some("TENTATIVE") => PartStat::Tentative,
        _ => {
            return Err(js(BindingError::new(
                "INVALID_ARGUMENT",
                "answer",
                "expected \"ACCEPTED\", \"DECLINED\" or \"TENTATIVE\"",
            )));
        }
    };
    let options = options::from_js(options).map_err(js)?;
    let request = postwire_core::parse(&bytes).map_err(js)?;
    let reply = ical::mime::reply_message(&request, &attendee, partstat).map_err(js)?;
    postwire_core::build(&reply, &options).map_err(js)
}

fn appointment_from_js(value: JsValue) -> Result<Appointment, BindingError> {
    spec::require_object(&value, "the appointment")?;
    spec::check_appointment_keys(&value, "")?;
    spec::deserialize(value, "")
}

/// The bytes of a string (UTF-8) or a `Uint8Array`.
fn text_from_js(value: &JsValue) -> Result<Vec<u8>, BindingError> {
    match value.as_string() {
        Some(text) => Ok(text.into_bytes()),
        None => bytes_from_js(value, "").map_err(|_| {
            BindingError::new(
                "INVALID_ARGUMENT",
                "",
                "expected the iCalendar text as a string or a Uint8Array",
            )
        }),
    }
}
