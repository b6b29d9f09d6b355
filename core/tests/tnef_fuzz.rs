//! Runs the cargo-fuzz target fuzz/fuzz_targets/tnef_reader.rs briefly:
//! 200 000 libFuzzer executions from a fixed seed, starting from the golden
//! files. Needs the nightly toolchain and cargo-fuzz (scripts/setup.d/30-tnef.sh
//! installs cargo-fuzz); a missing one fails the test. A crash fails it with
//! libFuzzer's report and leaves the input in fuzz/artifacts/tnef_reader/.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_tnef_reader_survives_a_short_libfuzzer_run() {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let corpus = std::env::temp_dir().join(format!("postwire-tnef-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&corpus);
    std::fs::create_dir_all(&corpus).unwrap_or_else(|e| panic!("{e}"));
    for entry in
        std::fs::read_dir(root.join("core/tests/data/tnef")).unwrap_or_else(|e| panic!("{e}"))
    {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.extension().is_some_and(|x| x == "tnef") {
            std::fs::copy(&path, corpus.join(path.file_name().unwrap_or_default()))
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root.join("fuzz"))
        .args(["+nightly", "fuzz", "run", "tnef_reader"])
        .arg(&corpus)
        .args(["--", "-runs=200000", "-seed=1", "-max_len=8192"]);
    // Let the nested cargo pick its own toolchain and target directory.
    for var in [
        "RUSTUP_TOOLCHAIN",
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_ENCODED_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo: {e}"));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the fuzz run failed ({}); needs `rustup toolchain nightly` and `cargo install cargo-fuzz` (scripts/setup.sh):\n{}",
        out.status,
        &log[log.len().saturating_sub(6000)..]
    );
    assert!(
        log.contains("Done 200000 runs"),
        "libFuzzer did not finish its runs:\n{}",
        &log[log.len().saturating_sub(3000)..]
    );
    let _ = std::fs::remove_dir_all(&corpus);
}
