//! TNEF (winmail.dat): `encodeTnef` (the bytes of `postwire tnef encode`) and
//! `decodeTnef` (a winmail.dat read into a spec: bodies, sender and
//! recipients, attachments with their bytes; what `parseEml` does with a
//! winmail.dat it finds in a message).

use wasm_bindgen::prelude::*;

use postwire_core::{MessageSpec, tnef};

use crate::{errors::js, mime::bytes_from_js, options, spec};

/// The winmail.dat of a spec, as `postwire tnef encode` writes it (fix
/// `options` for reproducible bytes).
///
/// Throws a `PostwireError` (`INVALID_SPEC`, `MISSING_FROM`, ...).
#[wasm_bindgen(js_name = encodeTnef, unchecked_return_type = "Uint8Array")]
pub fn encode_tnef(
    #[wasm_bindgen(unchecked_param_type = "MessageSpec<BinaryInput>")] spec: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "BuildOptions")] options: Option<JsValue>,
) -> Result<Vec<u8>, JsValue> {
    let spec = spec::from_js(spec).map_err(js)?;
    let options = options::from_js(options).map_err(js)?;
    tnef::spec::encode_spec(&spec, &options).map_err(js)
}

/// Reads a winmail.dat (the bytes of an `application/ms-tnef` attachment)
/// into a spec. Lenient, as `parseEml`: a damaged file gives what could be
/// read; `{ strict: true }` throws on any damage instead.
///
/// Throws a `PostwireError` (`INVALID_ARGUMENT`, `INVALID_TNEF`,
/// `INVALID_OPTIONS`). Attachment `content` is base64 text, or a
/// `Uint8Array` with `{ bytes: true }`.
#[wasm_bindgen(js_name = decodeTnef, unchecked_return_type = "MessageSpec<string | Uint8Array>")]
pub fn decode_tnef(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array")] bytes: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "TnefDecodeOptions")] options: Option<JsValue>,
) -> Result<JsValue, JsValue> {
    let (as_bytes, strict) = options::tnef_decode_options_from_js(options).map_err(js)?;
    let bytes = bytes_from_js(&bytes, "").map_err(js)?;
    let message = tnef::decode_with(&bytes, tnef::DecodeOptions { strict })
        .map_err(js)?
        .message;
    let mut spec = MessageSpec::default();
    tnef::spec::from_tnef(&message, &mut spec).map_err(js)?;
    spec::spec_to_js(spec, as_bytes).map_err(js)
}
