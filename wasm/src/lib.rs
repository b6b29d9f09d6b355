//! postwire-wasm: wasm-bindgen facade over postwire-core (the npm package `postwire`).
use wasm_bindgen::prelude::*;

/// Version of the package.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
