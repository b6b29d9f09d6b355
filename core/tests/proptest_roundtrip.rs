//! parse(build(spec)) == spec.normalized() over generated specs: display
//! names with specials and non-ASCII, internationalised domains, Unicode
//! subjects, bodies with long lines, trailing spaces and CRLF, attachments of
//! random bytes with Unicode names, inline parts with Content-IDs, alternate
//! views, custom headers, priorities, threading ids.
//!
//! Case counts are kept moderate for a 2-core CI; raise them locally with
//! `PROPTEST_CASES=2000 cargo test -p postwire-core --test proptest_roundtrip`.

use postwire_core::{
    Alternate, Attachment, BuildOptions, Mailbox, MessageSpec, Priority, Timestamp, build, parse,
    spec::to_json,
};
use proptest::{collection::vec, option, prelude::*, sample::select};

/// Display names: letters, digits, RFC 5322 specials, quotes, backslashes, non-ASCII.
fn display_name() -> impl Strategy<Value = Option<String>> {
    option::of(
        "[A-Za-z0-9 .,;:@<>()\\[\\]\"\\\\'!#&éüñøÅßЖж漢字かな한Ω🎉-]{1,24}"
            .prop_map(|s| s.split_whitespace().collect::<Vec<_>>().join(" ")),
    )
}

/// Domains: ASCII, internationalised (to be turned into A-labels), and an address literal.
fn domain() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,8}[a-z0-9]\\.(com|org|example|co\\.uk)",
        select(vec![
            "bücher.example",
            "例え.jp",
            "münchen.de",
            "ПРИМЕР.рф",
            "Example.COM",
            "xn--bcher-kva.example",
            "[192.0.2.7]",
        ])
        .prop_map(str::to_string),
    ]
}

fn mailbox() -> impl Strategy<Value = Mailbox> {
    (
        display_name(),
        "[a-z0-9!#$%&'*+/=?^_`{|}~-]{1,12}(\\.[a-z0-9]{1,6}){0,2}",
        domain(),
    )
        .prop_filter_map("valid mailbox", |(name, local, domain)| {
            Mailbox::new(name.as_deref(), &format!("{local}@{domain}")).ok()
        })
}

fn message_id() -> impl Strategy<Value = String> {
    "<[a-z0-9][a-z0-9.$_-]{0,20}@[a-z0-9]{1,10}\\.example>"
}

/// Unicode text without control characters, as one header line.
fn header_text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!(
        "[A-Za-z0-9 ,.;:!?'\"()<>=_@/&%$-]{{0,{max}}}|[a-zA-Z ÀÉÎõüçÆØßЖж漢字日本語한국어🎉😀≠€]{{0,{max}}}"
    ))
    .unwrap_or_else(|e| panic!("{e}"))
    .prop_map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// A body: lines of printable Unicode, some long, some with trailing spaces
/// or tabs, joined with LF or CRLF.
fn body() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        4 => "[ -~]{0,80}",
        2 => "[a-zA-Z äöüßéè漢字😀=.-]{0,120}",
        1 => "[a-z ]{900,1200}",
        1 => "[a-z]{1,20}[ \t]{1,4}",
        1 => Just(".".to_string()),
        1 => Just("From the start".to_string()),
    ];
    (vec(line, 0..12), any::<bool>(), any::<bool>()).prop_map(|(lines, crlf, final_nl)| {
        let sep = if crlf { "\r\n" } else { "\n" };
        let mut s = lines.join(sep);
        if final_nl {
            s.push_str(sep);
        }
        s
    })
}

fn filename() -> impl Strategy<Value = Option<String>> {
    option::of(
        "[A-Za-z0-9 _.()\\[\\]'#&+,;=@äöüÉñ漢字データ€-]{1,40}\\.(pdf|png|txt|bin|tar\\.gz)"
            .prop_map(|s| s.trim().to_string()),
    )
}

fn attachment(with_cid: bool) -> impl Strategy<Value = Attachment> {
    (
        filename(),
        select(vec![
            "application/octet-stream",
            "application/pdf",
            "image/png",
            "text/plain; charset=utf-8",
            "text/csv; charset=iso-8859-1",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ]),
        vec(any::<u8>(), 0..3000),
        "[a-z0-9.]{1,12}@[a-z]{1,8}\\.example",
    )
        .prop_map(move |(filename, content_type, content, cid)| Attachment {
            filename,
            content_type: content_type.to_string(),
            content,
            inline: with_cid,
            content_id: with_cid.then_some(cid),
        })
}

fn alternate() -> impl Strategy<Value = Alternate> {
    (
        select(vec![
            "text/watch-html",
            "text/calendar; method=REQUEST",
            "text/x-amp-html",
        ]),
        body(),
    )
        .prop_map(|(content_type, content)| Alternate {
            content_type: content_type.to_string(),
            content,
        })
}

fn custom_header() -> impl Strategy<Value = (String, String)> {
    ("X-[A-Za-z0-9]{1,12}(-[A-Za-z0-9]{1,8})?", header_text(60))
}

prop_compose! {
    fn addressing()(
        from in mailbox(),
        sender in option::of(mailbox()),
        to in vec(mailbox(), 0..5),
        cc in vec(mailbox(), 0..3),
        bcc in vec(mailbox(), 0..2),
        reply_to in vec(mailbox(), 0..2),
        dnt in vec(mailbox(), 0..2),
    ) -> (Mailbox, Option<Mailbox>, Vec<Mailbox>, Vec<Mailbox>, Vec<Mailbox>, Vec<Mailbox>, Vec<Mailbox>) {
        (from, sender, to, cc, bcc, reply_to, dnt)
    }
}

prop_compose! {
    fn content()(
        text in option::of(body()),
        html in option::of(body().prop_map(|b| format!("<div>{b}</div>"))),
        alternates in vec(alternate(), 0..2),
        attachments in vec(attachment(false), 0..3),
        inline in vec(attachment(true), 0..3),
    ) -> (Option<String>, Option<String>, Vec<Alternate>, Vec<Attachment>) {
        let mut all = attachments;
        // Inline parts with a Content-ID only make sense next to HTML.
        if html.is_some() {
            all.extend(inline);
        }
        (text, html, alternates, all)
    }
}

prop_compose! {
    fn spec()(
        (from, sender, to, cc, bcc, reply_to, dnt) in addressing(),
        subject in option::of(header_text(120)),
        date in option::of((0i64..4_102_444_800, -720i32..=840).prop_map(|(unix, off)| Timestamp {
            unix,
            offset_minutes: off - off % 15,
        })),
        message_id in option::of(message_id()),
        in_reply_to in option::of(message_id()),
        references in vec(message_id(), 0..4),
        (text, html, alternates, attachments) in content(),
        headers in vec(custom_header(), 0..4),
        priority in select(vec![Priority::Normal, Priority::High, Priority::Low]),
    ) -> MessageSpec {
        MessageSpec {
            from: Some(from),
            sender,
            to,
            cc,
            bcc,
            reply_to,
            subject,
            date,
            message_id,
            in_reply_to,
            references,
            text,
            html,
            alternates,
            attachments,
            headers,
            priority,
            disposition_notification_to: dnt,
            calendar: None,
            tnef: false,
            #[cfg(feature = "transfer-requests")]
            dsn: None,
            #[cfg(feature = "transfer-requests")]
            require_tls: false,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(160),
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn parse_of_build_is_the_normal_form(spec in spec(), seed in any::<u64>()) {
        let options = BuildOptions { now: 1_764_000_000, seed };
        let bytes = build(&spec, &options).map_err(|e| TestCaseError::fail(format!("build: {e}")))?;
        prop_assert!(
            !String::from_utf8_lossy(&bytes).to_ascii_lowercase().contains("\nbcc:"),
            "a Bcc header went out"
        );
        let back = parse(&bytes).map_err(|e| TestCaseError::fail(format!("parse: {e}")))?;
        let mut expected = spec.normalized();
        if expected.date.is_none() {
            prop_assert_eq!(back.date, Some(Timestamp::from_unix(options.now)));
            expected.date = back.date;
        }
        if expected.message_id.is_none() {
            prop_assert!(back.message_id.is_some(), "build did not fill the message id");
            expected.message_id = back.message_id.clone();
        }
        prop_assert_eq!(
            to_json(&back),
            to_json(&expected),
            "\n--- message ---\n{}",
            String::from_utf8_lossy(&bytes)
        );
        prop_assert_eq!(back, expected);
    }
}
