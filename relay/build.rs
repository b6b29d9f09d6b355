//! Build script of postwire-relay: says, at build time, when the binary is
//! about to embed no composer page. `src/web_assets.rs` embeds `web/dist`
//! (rust-embed); when that folder has not been built, the binary serves a
//! short page saying so, which is easy to miss until someone opens `/`. The
//! README's build command, `scripts/build-release.sh`, builds the page first.
use std::path::Path;

fn main() {
    // scripts/build-web.sh touches web_assets.rs after each page build.
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/web_assets.rs");
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let index = Path::new(&manifest).join("../web/dist/index.html");
    if !index.is_file() {
        println!(
            "cargo:warning=web/dist is not built: this postwire binary will serve a page that says \
             the composer was not built. Build with scripts/build-release.sh (or scripts/build-web.sh \
             before cargo build), or serve a built copy with --web-dir."
        );
    }
}
