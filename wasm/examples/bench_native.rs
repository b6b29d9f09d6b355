//! The native side of the npm package's benchmark (`wasm/bench/bench.mjs`):
//! postwire-core's `build` and `parse`, natively, on the very inputs the
//! benchmark gives the WebAssembly module, timed the same way (median of 15
//! batches over a time budget per case and operation).
//!
//! ```sh
//! cargo build --release -p postwire-wasm --example bench_native
//! target/release/examples/bench_native DIR [BUDGET_MS]
//! ```
//!
//! `DIR` holds `NAME.json` (a spec, base64 contents as the CLI reads them)
//! and `NAME.eml` per case; prints one JSON object `{ NAME: { build, parse } }`
//! with milliseconds per operation. The spec is decoded before the clock
//! starts (the content is bytes, as the JavaScript side hands it over).
#![allow(missing_docs, clippy::print_stdout)]

use std::{
    fs,
    time::{Duration, Instant},
};

use postwire_core::BuildOptions;

const BATCHES: u32 = 15;

fn measure(budget: Duration, mut op: impl FnMut()) -> f64 {
    for _ in 0..3 {
        op();
    }
    let per_batch = budget / BATCHES;
    let mut samples = Vec::new();
    for _ in 0..BATCHES {
        let start = Instant::now();
        let mut n = 0u32;
        while {
            op();
            n += 1;
            start.elapsed() < per_batch
        } {}
        samples.push(start.elapsed().as_secs_f64() * 1000.0 / f64::from(n));
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: bench_native DIR [BUDGET_MS]")?;
    let budget = Duration::from_millis(args.next().map_or(Ok(3000), |s| s.parse())?);
    let options = BuildOptions {
        now: 1_764_000_000,
        seed: 42,
    };
    let mut names: Vec<String> = fs::read_dir(&dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let spec =
            postwire_core::spec::from_json(&fs::read_to_string(format!("{dir}/{name}.json"))?)?;
        let eml = fs::read(format!("{dir}/{name}.eml"))?;
        let build = measure(budget, || {
            std::hint::black_box(postwire_core::build(&spec, &options).ok());
        });
        let parse = measure(budget, || {
            std::hint::black_box(postwire_core::parse(&eml).ok());
        });
        out.push(format!(
            "\"{name}\": {{ \"build\": {build}, \"parse\": {parse} }}"
        ));
    }
    println!("{{ {} }}", out.join(", "));
    Ok(())
}
