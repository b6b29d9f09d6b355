//! The message spec across the boundary: JS object -> `MessageSpec` (with
//! the failing field's path, through serde_path_to_error over
//! serde-wasm-bindgen) and back, plus the TypeScript interfaces of the spec.
//! The interfaces mirror core's serde model field by field; the `ts_drift`
//! test fails when a field is added to core and not here.

use js_sys::Reflect;
use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue, prelude::wasm_bindgen};

use postwire_core::{Alternate, Attachment, MessageSpec};

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

/** A file attached to the message, or an inline resource that the HTML refers to by `cid:`. */
export interface Attachment {
  /** The file name, any Unicode. */
  filename?: string | null;
  /** The media type; `application/octet-stream` when not given. */
  contentType?: string;
  /** The bytes, base64-encoded (standard alphabet). */
  content: string;
  /** Shown inline rather than as a file. */
  inline?: boolean;
  /** The Content-ID the HTML refers to, without angle brackets. */
  contentId?: string | null;
}

/**
 * A whole message, as `buildEml` takes it and `parseEml` returns it: the same
 * JSON as the `postwire` CLI reads and prints. Unknown fields are errors.
 */
export interface MessageSpec {
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
  attachments?: Attachment[];
  /** Any other header, in order, as `[name, value]` pairs. */
  headers?: [string, string][];
  /** Priority (default `normal`). */
  priority?: Priority;
  /** Where read receipts go (`Disposition-Notification-To`). */
  dispositionNotificationTo?: Mailbox[];
}
"#;

#[wasm_bindgen(typescript_custom_section)]
const TS_SPEC_SECTION: &str = TS_SPEC;

/// Reads a `MessageSpec` from a JS value; errors name the field path.
pub fn from_js(value: JsValue) -> Result<MessageSpec, BindingError> {
    if !value.is_object() || js_sys::Array::is_array(&value) {
        return Err(BindingError::new(
            "INVALID_SPEC",
            "",
            "the message spec must be an object",
        ));
    }
    check_unknown_keys(&value)?;
    let de = serde_wasm_bindgen::Deserializer::from(value);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let path = if path == "." { String::new() } else { path };
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
/// but serde-wasm-bindgen never shows them to serde): at the top level and in
/// each attachment and alternate.
fn check_unknown_keys(spec: &JsValue) -> Result<(), BindingError> {
    check_keys(spec, fields::of::<MessageSpec>(), "")?;
    for (list, allowed) in [
        ("attachments", fields::of::<Attachment>()),
        ("alternates", fields::of::<Alternate>()),
    ] {
        let items = Reflect::get(spec, &list.into()).unwrap_or(JsValue::UNDEFINED);
        if let Some(items) = items.dyn_ref::<js_sys::Array>() {
            for (i, item) in items.iter().enumerate() {
                check_keys(&item, allowed, &format!("{list}[{i}]"))?;
            }
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
