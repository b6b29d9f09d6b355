//! postwire-wasm: wasm-bindgen facade over postwire-core (the npm package `postwire`).
