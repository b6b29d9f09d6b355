//! Replies and forwards as new messages: the subject prefix, the threading
//! headers, the recipients, and the original quoted in text and HTML or
//! attached whole as message/rfc822.
//!
//! Forwarding the original bytes unchanged to new recipients (a new envelope,
//! same bytes) is not done here: that is the SMTP client's `forward`.

pub use crate::html::escape_html;

use crate::{
    address::Mailbox,
    parse::{ParseError, parse},
    spec::{Attachment, MessageSpec, bracket_id},
};

/// Why a reply or forward could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The original has no From, Reply-To or Sender to answer.
    #[error("the original message has no From or Reply-To address to answer")]
    NoOneToAnswer,
    /// A forward needs at least one recipient.
    #[error("a forward needs at least one recipient")]
    NoRecipients,
    /// The original bytes are not a message.
    #[error(transparent)]
    Parse(#[from] ParseError),
}

/// What the replier adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyOptions {
    /// Who replies (the new From).
    pub from: Mailbox,
    /// Reply to everyone: the original To and Cc join the Cc, without the replier.
    pub all: bool,
    /// The new text, above the quote.
    pub text: String,
    /// The new HTML, above the quote; when absent the text is used, escaped.
    pub html: Option<String>,
}

/// How the original travels in a forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardMode {
    /// The original bytes, whole, as a message/rfc822 attachment.
    #[default]
    Attach,
    /// The original quoted in the body, its attachments kept.
    Inline,
}

/// What the forwarder adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardOptions {
    /// Who forwards (the new From).
    pub from: Mailbox,
    /// The new recipients.
    pub to: Vec<Mailbox>,
    /// The new text, above the forwarded message.
    pub text: String,
    /// Attach or quote.
    pub mode: ForwardMode,
}

/// `Re: subject`, without stacking prefixes.
pub fn reply_subject(subject: Option<&str>) -> String {
    prefixed("Re:", subject, &["re:", "aw:", "sv:"])
}

/// `Fwd: subject`, without stacking prefixes.
pub fn forward_subject(subject: Option<&str>) -> String {
    prefixed("Fwd:", subject, &["fwd:", "fw:"])
}

fn prefixed(prefix: &str, subject: Option<&str>, known: &[&str]) -> String {
    let s = subject.unwrap_or("").trim();
    let lower = s.to_lowercase();
    if known.iter().any(|k| lower.starts_with(k)) {
        s.to_string()
    } else if s.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix} {s}")
    }
}

/// A reply to `original` (a parsed message).
pub fn reply(original: &MessageSpec, options: &ReplyOptions) -> Result<MessageSpec, ReplyError> {
    let to: Vec<Mailbox> = if !original.reply_to.is_empty() {
        original.reply_to.clone()
    } else {
        original
            .from
            .iter()
            .chain(original.sender.iter())
            .take(1)
            .cloned()
            .collect()
    };
    if to.is_empty() {
        return Err(ReplyError::NoOneToAnswer);
    }
    let same = |a: &Mailbox, b: &Mailbox| a.email.eq_ignore_ascii_case(&b.email);
    let mut cc: Vec<Mailbox> = Vec::new();
    if options.all {
        for m in original.to.iter().chain(&original.cc) {
            let known = same(m, &options.from)
                || to.iter().any(|t| same(t, m))
                || cc.iter().any(|c| same(c, m));
            if !known {
                cc.push(m.clone());
            }
        }
    }
    let mut references = original.references.clone();
    if references.is_empty() {
        references.extend(original.in_reply_to.iter().cloned());
    }
    if let Some(id) = &original.message_id {
        references.push(bracket_id(id));
    }
    let attribution = attribution(original);
    let quoted_text = original.text.as_deref().map(quote_text).unwrap_or_default();
    let text = format!(
        "{}\n\n{attribution}\n{quoted_text}",
        options.text.trim_end()
    );
    let new_html = options
        .html
        .clone()
        .unwrap_or_else(|| text_to_html(&options.text));
    let original_html = original
        .html
        .clone()
        .or_else(|| original.text.as_deref().map(text_to_html))
        .unwrap_or_default();
    let html = format!(
        "{new_html}\n<div class=\"postwire-quote\"><p>{}</p>\n<blockquote type=\"cite\" style=\"margin:0 0 0 .8ex;border-left:1px solid #ccc;padding-left:1ex\">\n{original_html}\n</blockquote></div>\n",
        escape_html(&attribution)
    );
    Ok(MessageSpec {
        from: Some(options.from.clone()),
        to,
        cc,
        subject: Some(reply_subject(original.subject.as_deref())),
        in_reply_to: original.message_id.as_deref().map(bracket_id),
        references,
        text: Some(text),
        html: Some(html),
        ..MessageSpec::default()
    })
}

/// A forward of the original message bytes.
pub fn forward(original: &[u8], options: &ForwardOptions) -> Result<MessageSpec, ReplyError> {
    if options.to.is_empty() {
        return Err(ReplyError::NoRecipients);
    }
    let parsed = parse(original)?;
    let subject = forward_subject(parsed.subject.as_deref());
    let mut spec = MessageSpec {
        from: Some(options.from.clone()),
        to: options.to.clone(),
        subject: Some(subject),
        ..MessageSpec::default()
    };
    match options.mode {
        ForwardMode::Attach => {
            let name = parsed
                .subject
                .as_deref()
                .map(safe_file_name)
                .filter(|n| !n.is_empty());
            spec.text = Some(options.text.clone());
            spec.attachments.push(Attachment {
                filename: Some(format!(
                    "{}.eml",
                    name.unwrap_or_else(|| "message".to_string())
                )),
                content_type: "message/rfc822".to_string(),
                content: original.to_vec(),
                inline: false,
                content_id: None,
            });
        }
        ForwardMode::Inline => {
            let header = forward_header(&parsed);
            let body = parsed.text.clone().unwrap_or_default();
            spec.text = Some(format!("{}\n\n{header}\n{body}", options.text.trim_end()));
            let original_html = parsed.html.clone().unwrap_or_else(|| text_to_html(&body));
            spec.html = Some(format!(
                "{}\n<div class=\"postwire-forward\"><pre>{}</pre>\n{original_html}\n</div>\n",
                text_to_html(&options.text),
                escape_html(&header)
            ));
            spec.attachments = parsed.attachments;
        }
    }
    Ok(spec)
}

fn attribution(original: &MessageSpec) -> String {
    let who = original
        .from
        .as_ref()
        .map_or_else(|| "someone".to_string(), ToString::to_string);
    match original.date {
        Some(d) => format!("On {}, {who} wrote:", d.to_rfc5322()),
        None => format!("{who} wrote:"),
    }
}

fn forward_header(original: &MessageSpec) -> String {
    let mut h = String::from("---------- Forwarded message ----------\n");
    if let Some(from) = &original.from {
        h.push_str(&format!("From: {from}\n"));
    }
    if let Some(d) = original.date {
        h.push_str(&format!("Date: {}\n", d.to_rfc5322()));
    }
    if let Some(s) = &original.subject {
        h.push_str(&format!("Subject: {s}\n"));
    }
    if !original.to.is_empty() {
        let to: Vec<String> = original.to.iter().map(ToString::to_string).collect();
        h.push_str(&format!("To: {}\n", to.join(", ")));
    }
    h
}

fn quote_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    for line in text.lines() {
        out.push_str(if line.starts_with('>') { ">" } else { "> " });
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn text_to_html(text: &str) -> String {
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .map(|p| escape_html(p).replace('\n', "<br>\n"))
        .collect();
    format!("<p>{}</p>", paragraphs.join("</p>\n<p>"))
}

fn safe_file_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || " -_.,()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BuildOptions, build, spec::from_json};

    fn original() -> MessageSpec {
        from_json(
            r#"{"from": "Ana <ana@example.com>", "to": ["me@example.com", "bob@example.com"], "cc": ["carl@example.com"],
            "subject": "Plan", "date": "2026-12-01T09:00:00Z", "messageId": "<m1@example.com>", "references": ["<m0@example.com>"],
            "text": "Line one\nLine two", "attachments": [{"filename": "a.pdf", "contentType": "application/pdf", "content": "JVBERg=="}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn reply_all_threads_quotes_and_leaves_out_the_replier() {
        let me = Mailbox::parse("Me <me@example.com>").unwrap();
        let r = reply(
            &original(),
            &ReplyOptions {
                from: me,
                all: true,
                text: "Sounds good".into(),
                html: None,
            },
        )
        .unwrap();
        assert_eq!(r.subject.as_deref(), Some("Re: Plan"));
        assert_eq!(r.to[0].email, "ana@example.com");
        let cc: Vec<_> = r.cc.iter().map(|m| m.email.as_str()).collect();
        assert_eq!(cc, ["bob@example.com", "carl@example.com"]);
        assert_eq!(r.in_reply_to.as_deref(), Some("<m1@example.com>"));
        assert_eq!(r.references, ["<m0@example.com>", "<m1@example.com>"]);
        let text = r.text.unwrap();
        assert!(text.starts_with("Sounds good\n\nOn Tue, 1 Dec 2026 09:00:00 +0000, Ana <ana@example.com> wrote:\n> Line one\n> Line two"), "{text}");
        assert!(r.html.unwrap().contains("<blockquote type=\"cite\""));
        assert_eq!(reply_subject(Some("RE: Plan")), "RE: Plan");
    }

    #[test]
    fn forward_attaches_the_original_bytes_or_quotes_them_with_attachments() {
        let bytes = build(&original(), &BuildOptions::default()).unwrap();
        let me = Mailbox::parse("me@example.com").unwrap();
        let to = vec![Mailbox::parse("dan@example.com").unwrap()];
        let opts = ForwardOptions {
            from: me,
            to,
            text: "FYI".into(),
            mode: ForwardMode::Attach,
        };
        let f = forward(&bytes, &opts).unwrap();
        assert_eq!(f.subject.as_deref(), Some("Fwd: Plan"));
        assert_eq!(f.attachments[0].content, bytes);
        assert_eq!(f.attachments[0].content_type, "message/rfc822");
        // It builds and the attachment comes back byte for byte.
        let again = parse(&build(&f, &BuildOptions::default()).unwrap()).unwrap();
        assert_eq!(again.attachments[0].content, bytes);

        let inline = forward(
            &bytes,
            &ForwardOptions {
                mode: ForwardMode::Inline,
                ..opts
            },
        )
        .unwrap();
        assert!(
            inline
                .text
                .unwrap()
                .contains("---------- Forwarded message ----------\nFrom: Ana <ana@example.com>")
        );
        assert_eq!(inline.attachments[0].filename.as_deref(), Some("a.pdf"));
        assert!(matches!(
            forward(
                b"",
                &ForwardOptions {
                    to: vec![],
                    ..ForwardOptions {
                        from: Mailbox::parse("a@b.c").unwrap(),
                        to: vec![],
                        text: String::new(),
                        mode: ForwardMode::Attach
                    }
                }
            ),
            Err(ReplyError::NoRecipients)
        ));
    }
}
