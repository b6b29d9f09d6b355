//! The message spec across the boundary: JS object -> `MessageSpec` (with
//! the failing field's path, through serde_path_to_error over
//! serde-wasm-bindgen) and back, plus the TypeScript interfaces of the spec.
//! The interfaces mirror core's serde model field by field; the `ts_drift`
//! test fails when a field is added to core and not here.

use js_sys::Reflect;
use serde::{Serialize, de::DeserializeOwned};
use wasm_bindgen::{JsCast, JsValue, prelude::wasm_bindgen};

use postwire_core::{
    Alternate, Attachment, MessageSpec,
    ical::{Alarm, Appointment, Attendee},
};

use crate::{errors::BindingError, fields};

// Read by the typescript_custom_section below (which rustc does not count as a
// use) and by the drift test.
#[allow(dead_code)]
pub(crate) const TS_SPEC: &str = r#"
/** A mailbox in RFC 5322 form: `"Ana Núñez <ana@example.com>"` or `"ana@example.com"`. */
export type Mailbox = string;

/** Message priority: `high` and `low` write `X-Priority` and `Importance`. */
export type Priority = "high" | "normal" | "low";

/** An alternative view of the body in another content type (text/calendar, text/watch-html, ...). */
export interface Alternate {
  /** Full content type with parameters, e.g. `text/calendar; method=REQUEST`. */
  contentType: string;
  /** The content as text. */
  content: string;
}

/**
 * Binary content as the functions take it: the bytes (`Uint8Array`, a Node.js
 * `Buffer`, `ArrayBuffer` or any typed-array view; copied into the module once)
 * or base64 text (standard alphabet), as the CLI's JSON has it. A `Blob`/`File`
 * must be read first (`new Uint8Array(await file.arrayBuffer())`); the
 * RelayClient's `send` reads them itself.
 */
export type BinaryInput = string | Uint8Array | ArrayBuffer | ArrayBufferView;

/**
 * A file attached to the message, or an inline resource that the HTML refers to by `cid:`.
 * `C` is the type of `content`: base64 `string` by default (what `parseEml`
 * returns unless asked for `{ bytes: true }`), `Uint8Array` with that option,
 * `BinaryInput` for what `buildEml` takes.
 */
export interface Attachment<C = string> {
  /** The file name, any Unicode. */
  filename?: string | null;
  /** The media type; `application/octet-stream` when not given. */
  contentType?: string;
  /** The bytes: base64 text, or a `Uint8Array` (see `C`). */
  content: C;
  /** Shown inline rather than as a file. */
  inline?: boolean;
  /** The Content-ID the HTML refers to, without angle brackets. */
  contentId?: string | null;
}

/**
 * A whole message, as `buildEml` takes it and `parseEml` returns it: the same
 * JSON as the `postwire` CLI reads and prints. Unknown fields are errors.
 */
export interface MessageSpec<C = string> {
  /** The author (`From`); required to build. */
  from?: Mailbox | null;
  /** The agent that sent it on the author's behalf (`Sender`); also MAIL FROM when set. */
  sender?: Mailbox | null;
  /** Primary recipients. */
  to?: Mailbox[];
  /** Carbon-copy recipients. */
  cc?: Mailbox[];
  /** Blind recipients: in the envelope, never in the bytes. */
  bcc?: Mailbox[];
  /** Where replies go (`Reply-To`). */
  replyTo?: Mailbox[];
  /** The subject, any Unicode. */
  subject?: string | null;
  /** The origination date, RFC 3339 (`2026-12-01T09:00:00Z`); default: `BuildOptions.now`. */
  date?: string | null;
  /** `<id@domain>`; default: generated from `BuildOptions.seed`. */
  messageId?: string | null;
  /** The message this one answers (`In-Reply-To`). */
  inReplyTo?: string | null;
  /** The thread (`References`), oldest first. */
  references?: string[];
  /** The plain-text body. */
  text?: string | null;
  /** The HTML body. */
  html?: string | null;
  /** Further alternative views. */
  alternates?: Alternate[];
  /** Attached files and inline resources. */
  attachments?: Attachment<C>[];
  /** Any other header, in order, as `[name, value]` pairs. */
  headers?: [string, string][];
  /** Priority (default `normal`). */
  priority?: Priority;
  /** Where read receipts go (`Disposition-Notification-To`). */
  dispositionNotificationTo?: Mailbox[];
  /** A meeting request (or reply, cancel...) sent as a `text/calendar` part plus `invite.ics` (RFC 6047); read back from one. */
  calendar?: Appointment | null;
  /** Send as TNEF: a text/plain body plus an `application/ms-tnef` winmail.dat carrying the whole message (the shape Outlook sends); set by `parseEml` when a message carries a winmail.dat. */
  tnef?: boolean;
  /** Delivery status notifications to ask the receiving servers for (RFC 3461); travels in the envelope, never in the message's bytes. */
  dsn?: Dsn | null;
  /** REQUIRETLS (RFC 8689): every hop must use verified TLS; travels in the envelope. */
  requireTls?: boolean;
}

/** An iCalendar token: the known values, or any other (x-name or IANA) token. */
export type Token<Known extends string> = Known | (string & {});

/** The iTIP method (RFC 5546). */
export type Method = Token<"REQUEST" | "CANCEL" | "REPLY" | "PUBLISH" | "COUNTER" | "DECLINECOUNTER" | "REFRESH" | "ADD">;

/**
 * A meeting or event (one VEVENT and its calendar's METHOD). Dates are strings:
 * `2026-12-01T10:00:00` (local to `timeZone`, floating without one),
 * `2026-12-01T09:00:00Z` (UTC) or `2026-12-01` (all day).
 */
export interface Appointment {
  /** The iTIP method; `null` for a plain calendar file (a message built with `null` is sent as REQUEST). */
  method?: Method | null;
  /** The globally unique id (`UID`), the same in every update and reply. */
  uid: string;
  /** Revision number (`SEQUENCE`). */
  sequence?: number;
  /** When this revision was created (`DTSTAMP`), UTC; default: the build's `now`. */
  dtstamp?: string | null;
  /** Start: local to `timeZone`, UTC with `Z`, or a date when `allDay`. */
  start: string;
  /** End (exclusive); at most one of `end` and `duration`. */
  end?: string | null;
  /** Length as an RFC 5545 duration (`PT1H30M`), instead of `end`. */
  duration?: string | null;
  /** IANA zone name (`Europe/Madrid`) of the local times; `null` for UTC or floating. */
  timeZone?: string | null;
  /** POSIX TZ rule when `timeZone` is not an IANA name. */
  timeZoneRule?: string | null;
  /** An all-day event: `start` and `end` are dates. */
  allDay?: boolean;
  /** Title (`SUMMARY`). */
  summary?: string | null;
  /** Description, plain text. */
  description?: string | null;
  /** Location. */
  location?: string | null;
  /** The organizer, `Name <addr>` or `addr`. */
  organizer?: Mailbox | null;
  /** The attendees. */
  attendees?: Attendee[];
  /** `STATUS`. */
  status?: Token<"TENTATIVE" | "CONFIRMED" | "CANCELLED"> | null;
  /** `TRANSP`: busy or free. */
  transparency?: Token<"OPAQUE" | "TRANSPARENT"> | null;
  /** `PRIORITY`, 0 (undefined), 1 (highest) to 9 (lowest). */
  priority?: number | null;
  /** Recurrence rule as RFC 5545 writes it: `FREQ=WEEKLY;COUNT=4`. */
  rrule?: string | null;
  /** Excluded occurrences, in the same form as `start`. */
  exdates?: string[];
  /** Extra occurrences, in the same form as `start`. */
  rdates?: string[];
  /** For an override of one occurrence: its original start (`RECURRENCE-ID`). */
  recurrenceId?: string | null;
  /** Reminders (`VALARM`). */
  alarms?: Alarm[];
  /** `CATEGORIES`. */
  categories?: string[];
  /** `URL`. */
  url?: string | null;
  /** Changed occurrences of a recurring event (same UID, with `recurrenceId`). */
  overrides?: Appointment[];
  /** Properties without a field, as unfolded content lines, written back as they are. */
  extra?: string[];
}

/** One attendee. */
export interface Attendee {
  /** The address (without `mailto:`). */
  email: string;
  /** The display name (`CN`). */
  name?: string | null;
  /** `ROLE` (default REQ-PARTICIPANT). */
  role?: Token<"CHAIR" | "REQ-PARTICIPANT" | "OPT-PARTICIPANT" | "NON-PARTICIPANT">;
  /** `PARTSTAT` (default NEEDS-ACTION). */
  partstat?: PartStat;
  /** Whether the organizer asks for a reply. */
  rsvp?: boolean;
  /** `CUTYPE` (INDIVIDUAL when absent). */
  cutype?: Token<"INDIVIDUAL" | "GROUP" | "RESOURCE" | "ROOM" | "UNKNOWN"> | null;
}

/** An attendee's participation status. */
export type PartStat = Token<"NEEDS-ACTION" | "ACCEPTED" | "DECLINED" | "TENTATIVE" | "DELEGATED">;

/** A reminder (`VALARM`). */
export interface Alarm {
  /** A duration relative to the start (`-PT15M`), or a UTC time. */
  trigger: string;
  /** Relative to the end instead of the start. */
  relatedEnd?: boolean;
  /** `ACTION`; `null` means DISPLAY. */
  action?: string | null;
  /** The text shown. */
  description?: string | null;
  /** Other VALARM properties, as unfolded content lines. */
  extra?: string[];
}

/** A whole calendar file: its METHOD and every VEVENT (overrides folded into their master). */
export interface Calendar {
  /** `METHOD`, if any. */
  method: Method | null;
  /** `PRODID`, the program that wrote it. */
  prodid: string | null;
  /** The events. */
  events: Appointment[];
  /** Components postwire does not model (VTODO, VFREEBUSY...), by name and line. */
  skipped?: string[];
}
"#;

#[wasm_bindgen(typescript_custom_section)]
const TS_SPEC_SECTION: &str = TS_SPEC;

/// Reads a `MessageSpec` from a JS value; errors name the field path.
///
/// Attachment `content` may be base64 text (core's serde form) or bytes: a
/// `Uint8Array`, `ArrayBuffer` or other typed-array view. Bytes are copied
/// into the module once, straight into the attachment's `Vec<u8>`; serde
/// sees a shallow copy of the spec with those contents left empty, so they
/// never pass through base64.
pub fn from_js(value: JsValue) -> Result<MessageSpec, BindingError> {
    require_object(&value, "the message spec")?;
    check_unknown_keys(&value)?;
    let (value, binary) = take_binary_contents(value)?;
    let mut spec: MessageSpec = deserialize(value, "")?;
    for (i, bytes) in binary {
        if let Some(a) = spec.attachments.get_mut(i) {
            a.content = bytes;
        }
    }
    Ok(spec)
}

/// The bytes of a binary value (`Uint8Array`, `ArrayBuffer`, other
/// `ArrayBufferView`), copied once into WebAssembly memory; `None` for
/// anything else (a string goes to serde's base64).
pub(crate) fn binary_of(value: &JsValue) -> Option<Vec<u8>> {
    if let Some(array) = value.dyn_ref::<js_sys::Uint8Array>() {
        return Some(array.to_vec());
    }
    if let Some(buffer) = value.dyn_ref::<js_sys::ArrayBuffer>() {
        return Some(js_sys::Uint8Array::new(buffer).to_vec());
    }
    if js_sys::ArrayBuffer::is_view(value) {
        let get = |k: &str| Reflect::get(value, &k.into()).unwrap_or(JsValue::UNDEFINED);
        let buffer = get("buffer");
        let offset = get("byteOffset").as_f64().unwrap_or(0.0) as u32;
        let length = get("byteLength").as_f64().unwrap_or(0.0) as u32;
        return Some(
            js_sys::Uint8Array::new_with_byte_offset_and_length(&buffer, offset, length).to_vec(),
        );
    }
    None
}

#[wasm_bindgen]
extern "C" {
    /// The host's `TextEncoder` (browsers and Node.js both have one).
    type TextEncoder;

    #[wasm_bindgen(constructor)]
    fn new() -> TextEncoder;

    /// UTF-8 bytes of a JS string, taken as a JS value (no glue copy).
    #[wasm_bindgen(method)]
    fn encode(this: &TextEncoder, text: &JsValue) -> js_sys::Uint8Array;
}

/// Attachment contents taken out of a spec, by attachment index.
type TakenContents = Vec<(usize, Vec<u8>)>;

/// Takes the attachment contents out of a spec object, bytes as they are and
/// valid base64 text decoded: the object serde should read (the spec itself
/// when no content was taken, else a shallow copy with `""` for those) and
/// the bytes by index.
fn take_binary_contents(spec: JsValue) -> Result<(JsValue, TakenContents), BindingError> {
    let list = Reflect::get(&spec, &"attachments".into()).unwrap_or(JsValue::UNDEFINED);
    let Some(list) = list.dyn_ref::<js_sys::Array>() else {
        return Ok((spec, Vec::new()));
    };
    let mut binary = Vec::new();
    let copy = js_sys::Array::new();
    for (i, item) in list.iter().enumerate() {
        let content = if item.is_object() {
            Reflect::get(&item, &"content".into()).unwrap_or(JsValue::UNDEFINED)
        } else {
            JsValue::UNDEFINED
        };
        let bytes = binary_of(&content).or_else(|| {
            // Base64 text: decoded here, by core's decoder compiled at this
            // crate's opt-level (3; core is built for size). Anything it
            // refuses stays text for serde, which reports the error.
            if !content.is_string() {
                return None;
            }
            // Through the host's TextEncoder, not wasm-bindgen's string
            // glue, which copies an ASCII string char by char in JS (56% of
            // `buildEml` with a 5 MB attachment as base64).
            let text = TextEncoder::new().encode(&content).to_vec();
            postwire_core::b64::decode(&text)
        });
        if let Some(bytes) = bytes {
            binary.push((i, bytes));
            let plain = js_sys::Object::assign(&js_sys::Object::new(), item.unchecked_ref());
            let _ = Reflect::set(&plain, &"content".into(), &JsValue::from_str(""));
            copy.push(&plain);
        } else {
            if is_blob(&content) {
                return Err(BindingError::new(
                    "INVALID_SPEC",
                    format!("attachments[{i}].content"),
                    "a Blob or File must be read first: `new Uint8Array(await file.arrayBuffer())` \
                     (RelayClient.send reads it for you)",
                ));
            }
            copy.push(&item);
        }
    }
    if binary.is_empty() {
        return Ok((spec, binary));
    }
    let top = js_sys::Object::assign(&js_sys::Object::new(), spec.unchecked_ref());
    let _ = Reflect::set(&top, &"attachments".into(), &copy);
    Ok((top.into(), binary))
}

/// Whether `value` is a `Blob` (a `File` is one), without requiring the
/// host to have the class.
fn is_blob(value: &JsValue) -> bool {
    if !value.is_object() {
        return false;
    }
    let get = |k: &str| Reflect::get(value, &k.into()).unwrap_or(JsValue::UNDEFINED);
    get("arrayBuffer").is_function() && get("size").as_f64().is_some() && get("slice").is_function()
}

/// An `INVALID_SPEC` error unless `value` is a (non-array) object.
pub(crate) fn require_object(value: &JsValue, what: &str) -> Result<(), BindingError> {
    if !value.is_object() || js_sys::Array::is_array(value) {
        return Err(BindingError::new(
            "INVALID_SPEC",
            "",
            format!("{what} must be an object"),
        ));
    }
    Ok(())
}

/// Deserialises any core model type from a JS value; errors name the field
/// path, prefixed with `prefix` (such as `calendar`) when it is not empty.
pub(crate) fn deserialize<T: DeserializeOwned>(
    value: JsValue,
    prefix: &str,
) -> Result<T, BindingError> {
    let de = serde_wasm_bindgen::Deserializer::from(value);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let inner = err.path().to_string();
        let path = match (prefix.is_empty(), inner == ".") {
            (_, true) => prefix.to_string(),
            (true, false) => inner,
            (false, false) => format!("{prefix}.{inner}"),
        };
        BindingError::new(
            "INVALID_SPEC",
            path,
            plain_message(&err.into_inner().to_string()),
        )
    })
}

/// serde-wasm-bindgen's errors are JS errors turned into text (`Error: ...`);
/// a `TypeError` there means the value had the wrong JS type for the field.
fn plain_message(text: &str) -> String {
    if let Some(rest) = text.strip_prefix("Error: ") {
        rest.to_string()
    } else if let Some(rest) = text.strip_prefix("TypeError: ") {
        format!("invalid type for this field ({rest})")
    } else {
        text.to_string()
    }
}

/// Refuses keys that core's model does not have (core denies unknown fields,
/// but serde-wasm-bindgen never shows them to serde): at the top level, in
/// each attachment and alternate, and throughout `calendar`.
fn check_unknown_keys(spec: &JsValue) -> Result<(), BindingError> {
    check_keys(spec, fields::of::<MessageSpec>(), "")?;
    check_items(spec, "attachments", fields::of::<Attachment>(), "")?;
    check_items(spec, "alternates", fields::of::<Alternate>(), "")?;
    let calendar = Reflect::get(spec, &"calendar".into()).unwrap_or(JsValue::UNDEFINED);
    check_appointment_keys(&calendar, "calendar")
}

/// Unknown keys of an appointment, its attendees, alarms and overrides.
pub(crate) fn check_appointment_keys(appt: &JsValue, path: &str) -> Result<(), BindingError> {
    if !appt.is_object() {
        return Ok(());
    }
    check_keys(appt, fields::of::<Appointment>(), path)?;
    check_items(appt, "attendees", fields::of::<Attendee>(), path)?;
    check_items(appt, "alarms", fields::of::<Alarm>(), path)?;
    let overrides = Reflect::get(appt, &"overrides".into()).unwrap_or(JsValue::UNDEFINED);
    if let Some(list) = overrides.dyn_ref::<js_sys::Array>() {
        for (i, item) in list.iter().enumerate() {
            check_appointment_keys(&item, &format!("{path}.overrides[{i}]"))?;
        }
    }
    Ok(())
}

/// Unknown keys in each object of the array `obj[list]`.
fn check_items(
    obj: &JsValue,
    list: &str,
    allowed: &[&str],
    path: &str,
) -> Result<(), BindingError> {
    let items = Reflect::get(obj, &list.into()).unwrap_or(JsValue::UNDEFINED);
    if let Some(items) = items.dyn_ref::<js_sys::Array>() {
        let base = if path.is_empty() {
            list.to_string()
        } else {
            format!("{path}.{list}")
        };
        for (i, item) in items.iter().enumerate() {
            check_keys(&item, allowed, &format!("{base}[{i}]"))?;
        }
    }
    Ok(())
}

fn check_keys(obj: &JsValue, allowed: &[&str], path: &str) -> Result<(), BindingError> {
    if !obj.is_object() || js_sys::Array::is_array(obj) {
        return Ok(()); // not an object: deserialisation reports the type error
    }
    for key in js_sys::Object::keys(obj.unchecked_ref::<js_sys::Object>()).iter() {
        let key = key.as_string().unwrap_or_default();
        if !allowed.contains(&key.as_str()) {
            let at = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            return Err(BindingError::new(
                "INVALID_SPEC",
                at,
                format!(
                    "unknown field `{key}`, expected one of {}",
                    allowed
                        .iter()
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Turns any serialisable core value (spec, envelope) into a plain JS object.
pub fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, BindingError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| BindingError::new("INTERNAL", "", e.to_string()))
}

/// A parsed spec as a JS object; with `bytes`, each attachment's `content` is
/// a `Uint8Array` (one copy out of the module) instead of base64 text.
pub fn spec_to_js(mut spec: MessageSpec, bytes: bool) -> Result<JsValue, BindingError> {
    if !bytes {
        return to_js(&spec);
    }
    let contents: Vec<Vec<u8>> = spec
        .attachments
        .iter_mut()
        .map(|a| std::mem::take(&mut a.content))
        .collect();
    let value = to_js(&spec)?;
    let list = Reflect::get(&value, &"attachments".into()).unwrap_or(JsValue::UNDEFINED);
    if let Some(list) = list.dyn_ref::<js_sys::Array>() {
        for (i, content) in contents.iter().enumerate() {
            let array = js_sys::Uint8Array::from(content.as_slice());
            let _ = Reflect::set(&list.get(i as u32), &"content".into(), &array);
        }
    }
    Ok(value)
}
