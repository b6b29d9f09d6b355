//! Time and entropy from the JavaScript host: core reads neither (it is
//! sans-IO), so the bindings ask `Date.now()` and `crypto.getRandomValues()`
//! (present in browsers and in Node.js 20 as `globalThis.crypto`) and pass
//! the answers into core as `BuildOptions`.

use wasm_bindgen::prelude::*;

use crate::errors::BindingError;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues, catch)]
    fn get_random_values(buf: &mut [u8]) -> Result<JsValue, JsValue>;
}

/// The current time in Unix seconds, from `Date.now()`.
pub fn now_unix_seconds() -> i64 {
    // Date.now() is an integral number of milliseconds well inside i64.
    (js_sys::Date::now() / 1000.0).floor() as i64
}

/// A fresh 64-bit seed from `crypto.getRandomValues`.
pub fn random_seed() -> Result<u64, BindingError> {
    let mut buf = [0u8; 8];
    get_random_values(&mut buf).map_err(|e| {
        BindingError::new(
            "INTERNAL",
            "",
            format!(
                "crypto.getRandomValues is not available: {}",
                e.as_string().unwrap_or_else(|| format!("{e:?}"))
            ),
        )
    })?;
    Ok(u64::from_le_bytes(buf))
}
