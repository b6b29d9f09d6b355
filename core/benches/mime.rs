//! Criterion benchmarks of postwire-core's MIME engine: `build` and `parse`
//! of (a) a short text message and (b) text + HTML + two 100 KB attachments.
//! Figures and the command that reproduces them are in docs/perf.md
//! ("Core MIME (postwire-core)"):
//!
//! ```text
//! cargo bench -p postwire-core --bench mime
//! ```

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use postwire_core::{Attachment, BuildOptions, Mailbox, MessageSpec, build, parse};

const OPTIONS: BuildOptions = BuildOptions {
    now: 1_764_000_000,
    seed: 7,
};

fn mailbox(name: Option<&str>, email: &str) -> Mailbox {
    Mailbox::new(name, email).unwrap_or_else(|e| panic!("{email}: {e}"))
}

/// (a): one recipient, a subject, a few lines of plain text.
fn short_text() -> MessageSpec {
    MessageSpec {
        from: Some(mailbox(Some("Ana Núñez"), "ana@example.com")),
        to: vec![mailbox(None, "bob@example.org")],
        subject: Some("Lunch on Thursday?".into()),
        text: Some("Hi Bob,\n\nAre you free for lunch on Thursday?\n\nAna\n".into()),
        ..MessageSpec::default()
    }
}

/// Deterministic pseudo-random bytes (xorshift), so the attachments are
/// incompressible like real files and every run measures the same input.
fn noise(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// (b): text + HTML + two 100 KB attachments (a PDF-like and a PNG-like file).
fn rich() -> MessageSpec {
    let paragraph = "Please find the quarterly figures attached. Die Zahlen für das \
                     dritte Quartal sind beigefügt. ";
    let text = paragraph.repeat(40);
    let html = format!("<html><body><p>{}</p></body></html>", paragraph.repeat(40));
    MessageSpec {
        from: Some(mailbox(Some("Jörg Müller"), "joerg@example.de")),
        to: vec![
            mailbox(Some("Buchhaltung"), "buchhaltung@example.de"),
            mailbox(None, "cfo@example.de"),
        ],
        cc: vec![mailbox(Some("Archiv"), "archiv@example.de")],
        subject: Some("Quartalszahlen Q3 – Unterlagen".into()),
        text: Some(text),
        html: Some(html),
        attachments: vec![
            Attachment {
                filename: Some("Quartalsbericht Q3.pdf".into()),
                content_type: "application/pdf".into(),
                content: noise(100 * 1024, 0x9E37_79B9_7F4A_7C15),
                inline: false,
                content_id: None,
            },
            Attachment {
                filename: Some("chart.png".into()),
                content_type: "image/png".into(),
                content: noise(100 * 1024, 0xD1B5_4A32_D192_ED03),
                inline: false,
                content_id: None,
            },
        ],
        ..MessageSpec::default()
    }
}

fn bench_case(c: &mut Criterion, name: &str, spec: &MessageSpec) {
    let bytes = build(spec, &OPTIONS).unwrap_or_else(|e| panic!("{name}: {e}"));
    // Measure the real work: the parsed copy must carry every attachment byte.
    let back = parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(back.attachments, spec.attachments, "{name}: attachments");
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("build", |b| {
        b.iter(|| build(black_box(spec), black_box(&OPTIONS)))
    });
    group.bench_function("parse", |b| b.iter(|| parse(black_box(&bytes))));
    group.finish();
}

fn mime(c: &mut Criterion) {
    bench_case(c, "short_text", &short_text());
    bench_case(c, "text_html_2x100k", &rich());
}

criterion_group!(benches, mime);
criterion_main!(benches);
