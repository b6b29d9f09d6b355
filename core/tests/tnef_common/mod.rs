//! Helpers shared by the TNEF integration tests: scratch directories, the
//! external judges (`tnef`, `ytnef`, `ytnefprint`) run as processes, and a
//! sample message with known content.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;

use postwire_core::tnef::{
    RecipientKind, TnefAddress, TnefAttachment, TnefMessage, TnefRecipient, rtf_html,
};

/// A fresh, empty scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("postwire-tnef-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// Runs a judge; fails the test (never skips) when the tool is missing or fails.
pub fn run(tool: &str, args: &[&str], cwd: &Path) -> String {
    let out = Command::new(tool).args(args).current_dir(cwd).output().unwrap_or_else(|e| {
        panic!("cannot run `{tool}` ({e}): install it with scripts/setup.sh (Debian packages tnef, ytnef-tools)")
    });
    assert!(
        out.status.success(),
        "`{tool} {}` failed ({}): {}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Pseudo-random bytes (deterministic), so attachment content is not trivially compressible.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

/// Every file in `dir` (not recursive), sorted by name, with its bytes.
pub fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap_or_else(|e| panic!("{e}")).path();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bytes =
                std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
            (name, bytes)
        })
        .collect();
    v.sort();
    v
}

pub const HTML: &str = "<html><head><style>p { color: #036 }</style></head><body><p>Hola &amp; bienvenidos, <b>Bob</b>.</p>\n<p>Reuni\u{f3}n el martes.</p></body></html>";
pub const TEXT: &str = "Hola & bienvenidos, Bob.\nReunion el martes.\n";

/// A message with HTML, text, RTF, two recipients and two 100 KB attachments.
pub fn sample(att_len: usize) -> TnefMessage {
    TnefMessage {
        legacy_key: 0x1234,
        message_class: Some("IPM.Note".into()),
        subject: Some("Quarterly numbers".into()),
        from: Some(TnefAddress {
            name: Some("Ana Example".into()),
            email: "ana@example.com".into(),
            addr_type: "SMTP".into(),
        }),
        date_sent: Some(1_796_115_600),
        internet_message_id: Some("<q3.2026@example.com>".into()),
        correlator: Some("<q3.2026@example.com>".into()),
        text: Some(TEXT.into()),
        html: Some(HTML.into()),
        rtf: Some(rtf_html::encapsulate_html(HTML).into_bytes()),
        recipients: vec![
            TnefRecipient {
                kind: RecipientKind::To,
                address: TnefAddress {
                    name: Some("Bob".into()),
                    email: "bob@example.com".into(),
                    addr_type: "SMTP".into(),
                },
                properties: vec![],
            },
            TnefRecipient {
                kind: RecipientKind::Cc,
                address: TnefAddress {
                    name: None,
                    email: "carl@example.org".into(),
                    addr_type: "SMTP".into(),
                },
                properties: vec![],
            },
        ],
        attachments: vec![
            TnefAttachment {
                long_filename: Some("numbers.bin".into()),
                mime_type: Some("application/octet-stream".into()),
                data: noise(att_len, 1),
                ..Default::default()
            },
            TnefAttachment {
                long_filename: Some("chart.png".into()),
                mime_type: Some("image/png".into()),
                content_id: Some("chart@example.com".into()),
                data: noise(att_len, 2),
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}
