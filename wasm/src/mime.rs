//! Building and parsing messages: `buildEml` and `parseEml`.

use wasm_bindgen::prelude::*;

use crate::{
    errors::{BindingError, js},
    options, spec,
};

/// Builds the RFC 5322 bytes of a message (CRLF line ends; Bcc never appears).
///
/// Throws a `PostwireError` (`INVALID_SPEC`, `INVALID_OPTIONS`, `MISSING_FROM`,
/// `INVALID_HEADER`, ...) naming the field in `path`.
///
/// Attachment `content` may be bytes (`Uint8Array`, `ArrayBuffer`) or base64 text.
#[wasm_bindgen(js_name = buildEml, unchecked_return_type = "Uint8Array")]
pub fn build_eml(
    #[wasm_bindgen(unchecked_param_type = "MessageSpec<BinaryInput>")] spec: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "BuildOptions")] options: Option<JsValue>,
) -> Result<Vec<u8>, JsValue> {
    let spec = spec::from_js(spec).map_err(js)?;
    let options = options::from_js(options).map_err(js)?;
    postwire_core::build(&spec, &options).map_err(js)
}

/// Parses message bytes into a spec (lenient: best effort on broken input).
///
/// Throws a `PostwireError` (`INVALID_ARGUMENT` for a non-`Uint8Array`,
/// `EMPTY_INPUT`, `NOT_A_MESSAGE`, `INVALID_OPTIONS`). Attachment `content`
/// is base64 text, or a `Uint8Array` with `{ bytes: true }`.
#[wasm_bindgen(js_name = parseEml, unchecked_return_type = "MessageSpec<string | Uint8Array>")]
pub fn parse_eml(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array")] bytes: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "ParseOptions")] options: Option<JsValue>,
) -> Result<JsValue, JsValue> {
    let as_bytes = options::parse_options_from_js(options).map_err(js)?;
    let bytes = bytes_from_js(&bytes, "").map_err(js)?;
    let parsed = postwire_core::parse::parse_with_decoder(&bytes, &HostTextDecoder).map_err(js)?;
    drop(bytes);
    spec::spec_to_js(parsed.spec, as_bytes).map_err(js)
}

#[wasm_bindgen]
extern "C" {
    /// The host's `TextDecoder` (browsers and Node.js both have one).
    type TextDecoder;

    #[wasm_bindgen(constructor, catch)]
    fn new(label: &str) -> Result<TextDecoder, JsValue>;

    #[wasm_bindgen(method)]
    fn decode(this: &TextDecoder, bytes: &[u8]) -> String;
}

/// The legacy multi-byte charsets through the host's `TextDecoder`: the npm
/// build leaves encoding_rs's tables out (docs/npm.md), and every browser
/// and Node.js carries the same WHATWG decoders already.
struct HostTextDecoder;

impl postwire_core::parse::LegacyDecoder for HostTextDecoder {
    fn decode(&self, encoding: &str, bytes: &[u8]) -> Option<String> {
        // An unknown label throws a RangeError: the caller keeps its lossy reading.
        TextDecoder::new(encoding).ok().map(|d| d.decode(bytes))
    }
}

/// The bytes of a `Uint8Array` (a Node.js `Buffer` is one), or an `INVALID_ARGUMENT` error.
pub(crate) fn bytes_from_js(value: &JsValue, path: &str) -> Result<Vec<u8>, BindingError> {
    match value.dyn_ref::<js_sys::Uint8Array>() {
        Some(array) => Ok(array.to_vec()),
        None => Err(BindingError::new(
            "INVALID_ARGUMENT",
            path,
            "expected the message bytes as a Uint8Array",
        )),
    }
}
