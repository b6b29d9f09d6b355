//! `BuildOptions` from JavaScript: `{ now?: Date | number, seed?: number | bigint }`.
//! What is not given comes from the host (`Date.now()`, `crypto.getRandomValues`);
//! fixing both makes `buildEml` byte-identical to `postwire build --now S --seed N`.

use js_sys::{BigInt, Date, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue, prelude::wasm_bindgen};

use postwire_core::BuildOptions;

use crate::{errors::BindingError, host};

// Read by the typescript_custom_section below (which rustc does not count as a
// use) and by the drift test.
#[allow(dead_code)]
pub(crate) const TS_OPTIONS: &str = r#"
/**
 * How `buildEml` fills in what the spec leaves open. Fix both for reproducible
 * bytes (the same as `postwire build --now <seconds> --seed <seed>`).
 */
export interface BuildOptions {
  /** The time used for `Date` when the spec has no `date`: a Date, or milliseconds since the epoch (as `Date.now()`). Default: now. */
  now?: Date | number;
  /** Seeds the message id (when the spec has none) and the MIME boundaries: an integer in 0..2^64-1. Default: from `crypto.getRandomValues`. */
  seed?: number | bigint;
}
"#;

#[wasm_bindgen(typescript_custom_section)]
const TS_OPTIONS_SECTION: &str = TS_OPTIONS;

// Read by the typescript_custom_section below and by the drift test.
#[allow(dead_code)]
pub(crate) const TS_PARSE_OPTIONS: &str = r#"
/** How `parseEml` and `decodeTnef` return what they read. */
export interface ParseOptions {
  /** Attachment `content` as a `Uint8Array` (copied out of the module once) instead of base64 text. Default `false`, the CLI's JSON form. */
  bytes?: boolean;
}

/** Options of `decodeTnef`: `ParseOptions`, and `strict` to throw on any damage instead of keeping what could be read. */
export interface TnefDecodeOptions extends ParseOptions {
  strict?: boolean;
}
"#;

#[wasm_bindgen(typescript_custom_section)]
const TS_PARSE_OPTIONS_SECTION: &str = TS_PARSE_OPTIONS;

/// The keys a `ParseOptions` object may have (also checked against the TS interface).
pub(crate) const PARSE_OPTION_KEYS: &[&str] = &["bytes"];

/// Reads the `ParseOptions` argument: whether attachment content should come
/// back as bytes (`undefined`/`null` means the default, base64 text).
pub fn parse_options_from_js(value: Option<JsValue>) -> Result<bool, BindingError> {
    Ok(flags_from_js(value, PARSE_OPTION_KEYS)?[0])
}

/// The keys of `decodeTnef`'s options: `ParseOptions` and `strict`.
pub(crate) const TNEF_DECODE_OPTION_KEYS: &[&str] = &["bytes", "strict"];

/// Reads `decodeTnef`'s `{ bytes?, strict? }`: (bytes, strict).
pub fn tnef_decode_options_from_js(value: Option<JsValue>) -> Result<(bool, bool), BindingError> {
    let [bytes, strict] = flags_from_js(value, TNEF_DECODE_OPTION_KEYS)?[..] else {
        return Ok((false, false));
    };
    Ok((bytes, strict))
}

/// Reads an options object of boolean flags: one value per key of `keys`
/// (absent, `undefined` and `null` read as false); any other key is refused.
fn flags_from_js(value: Option<JsValue>, keys: &[&str]) -> Result<Vec<bool>, BindingError> {
    let mut flags = vec![false; keys.len()];
    let Some(value) = value.filter(|v| !v.is_undefined() && !v.is_null()) else {
        return Ok(flags);
    };
    if !value.is_object() {
        return Err(invalid(
            "",
            format!("options must be an object {{ {}? }}", keys.join("?, ")),
        ));
    }
    for key in Object::keys(value.unchecked_ref::<Object>()).iter() {
        let key = key.as_string().unwrap_or_default();
        if !keys.contains(&key.as_str()) {
            return Err(invalid(
                &key,
                format!("unknown option `{key}`, expected `{}`", keys.join("` or `")),
            ));
        }
    }
    for (flag, key) in flags.iter_mut().zip(keys) {
        *flag = match Reflect::get(&value, &(*key).into()).unwrap_or(JsValue::UNDEFINED) {
            v if v.is_undefined() || v.is_null() => false,
            v => v
                .as_bool()
                .ok_or_else(|| invalid(key, format!("`{key}` must be true or false")))?,
        };
    }
    Ok(flags)
}

/// The keys a `BuildOptions` object may have (also checked against the TS interface).
pub(crate) const OPTION_KEYS: &[&str] = &["now", "seed"];

fn invalid(path: &str, message: impl Into<String>) -> BindingError {
    BindingError::new("INVALID_OPTIONS", path, message)
}

/// Reads the options argument (`undefined`/`null` means all defaults).
pub fn from_js(value: Option<JsValue>) -> Result<BuildOptions, BindingError> {
    let value = value.filter(|v| !v.is_undefined() && !v.is_null());
    let Some(value) = value else {
        return Ok(BuildOptions {
            now: host::now_unix_seconds(),
            seed: host::random_seed()?,
        });
    };
    if !value.is_object() {
        return Err(invalid("", "options must be an object { now?, seed? }"));
    }
    for key in Object::keys(value.unchecked_ref::<Object>()).iter() {
        let key = key.as_string().unwrap_or_default();
        if !OPTION_KEYS.contains(&key.as_str()) {
            return Err(invalid(
                &key,
                format!("unknown option `{key}`, expected one of `now`, `seed`"),
            ));
        }
    }
    let get = |k: &str| Reflect::get(&value, &k.into()).unwrap_or(JsValue::UNDEFINED);
    let now = match get("now") {
        v if v.is_undefined() || v.is_null() => host::now_unix_seconds(),
        v => now_from_js(&v)?,
    };
    let seed = match get("seed") {
        v if v.is_undefined() || v.is_null() => host::random_seed()?,
        v => seed_from_js(&v)?,
    };
    Ok(BuildOptions { now, seed })
}

/// Milliseconds since the epoch, from a Date or a number, as whole Unix seconds.
fn now_from_js(v: &JsValue) -> Result<i64, BindingError> {
    let millis = if let Some(d) = v.dyn_ref::<Date>() {
        d.get_time()
    } else if let Some(n) = v.as_f64() {
        n
    } else {
        return Err(invalid(
            "now",
            "expected a Date or milliseconds since the epoch",
        ));
    };
    // ±8.64e15 ms is the range of a JS Date.
    if !millis.is_finite() || millis.abs() > 8.64e15 {
        return Err(invalid(
            "now",
            "not a valid time (NaN, infinite or out of range)",
        ));
    }
    Ok((millis / 1000.0).floor() as i64)
}

/// A u64 seed from a non-negative safe integer or a bigint below 2^64.
fn seed_from_js(v: &JsValue) -> Result<u64, BindingError> {
    if let Some(n) = v.as_f64() {
        if n.fract() != 0.0 || !(0.0..=9_007_199_254_740_991.0).contains(&n) {
            return Err(invalid(
                "seed",
                "a number seed must be a non-negative safe integer; use a bigint for larger seeds",
            ));
        }
        return Ok(n as u64);
    }
    if let Some(b) = v.dyn_ref::<BigInt>() {
        let text = b
            .to_string(10)
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_default();
        return text
            .parse::<u64>()
            .map_err(|_| invalid("seed", format!("bigint seed {text} is not in 0..2^64-1")));
    }
    Err(invalid("seed", "expected a number or a bigint"))
}
