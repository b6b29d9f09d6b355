//! TNEF speed: decode and encode of a winmail.dat with two 100 KB
//! attachments, HTML, text and compressed RTF bodies; and the LZFu codec.
//! Run: `cargo bench -p postwire-core --bench tnef` (figures in docs/perf.md).
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

#[path = "../tests/tnef_common/mod.rs"]
mod tnef_common;

use postwire_core::tnef::{self, rtf};

fn bench(c: &mut Criterion) {
    let message = tnef_common::sample(100 * 1024);
    let bytes = tnef::encode(&message).unwrap_or_default();
    let mut g = c.benchmark_group("tnef");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("decode 2x100KB", |b| {
        b.iter(|| tnef::decode(black_box(&bytes)))
    });
    g.bench_function("encode 2x100KB", |b| {
        b.iter(|| tnef::encode(black_box(&message)))
    });
    g.finish();

    // A 64 KB RTF body, the size of a long formatted mail.
    let html: String = (0..700)
        .map(|i| format!("<p>Paragraph {i}: <b>bold</b> and <i>italic</i> text.</p>\n"))
        .collect();
    let rtf_body = tnef::rtf_html::encapsulate_html(&html).into_bytes();
    let packed = rtf::compress(&rtf_body).unwrap_or_default();
    let mut g = c.benchmark_group("lzfu");
    g.throughput(Throughput::Bytes(rtf_body.len() as u64));
    g.bench_function("compress", |b| {
        b.iter(|| rtf::compress(black_box(&rtf_body)))
    });
    g.bench_function("decompress", |b| {
        b.iter(|| rtf::decompress(black_box(&packed)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
