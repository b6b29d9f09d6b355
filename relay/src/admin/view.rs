//! The admin API's JSON: a [`MessageView`] as the operator sees it, message
//! ids (the spool key, base64url-encoded), list filters and cursors.
//! Pure functions; no I/O here.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::bounces::rfc3339;
use crate::spool::{Key, MessageView, RcptState};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The opaque, URL-safe id of a message: its token name and client id.
pub fn encode_id(key: &Key) -> String {
    let mut raw = Vec::with_capacity(key.token.len() + key.id.len() + 1);
    raw.extend_from_slice(key.token.as_bytes());
    raw.push(0);
    raw.extend_from_slice(key.id.as_bytes());
    B64.encode(raw)
}

/// The key an id names, if it is one.
pub fn decode_id(id: &str) -> Option<Key> {
    if id.len() > 4096 {
        return None;
    }
    let raw = B64.decode(id).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (token, id) = text.split_once('\0')?;
    Some(Key {
        token: token.to_string(),
        id: id.to_string(),
    })
}

/// The state of a recipient as the API names it.
pub fn rcpt_state_name(view: &MessageView, state: &RcptState) -> &'static str {
    match state {
        RcptState::Queued | RcptState::Deferred { .. } if view.held => "held",
        RcptState::Queued | RcptState::Deferred { .. } if view.in_flight => "delivering",
        RcptState::Queued => "queued",
        RcptState::Deferred { .. } => "deferred",
        RcptState::Delivered { .. } => "delivered",
        RcptState::Failed { .. } => "failed",
        RcptState::Bounced { .. } => "bounced",
        RcptState::Complained { .. } => "complained",
    }
}

fn reply_of(state: &RcptState) -> Option<String> {
    match state {
        RcptState::Queued => None,
        RcptState::Deferred { reason, .. } | RcptState::Failed { reason } => Some(reason.clone()),
        RcptState::Delivered { response } => Some(response.clone()),
        RcptState::Bounced {
            status, diagnostic, ..
        } => Some(match diagnostic {
            Some(d) => format!("{status} {d}"),
            None => status.clone(),
        }),
        RcptState::Complained { feedback_type, .. } => Some(format!(
            "complaint: {}",
            feedback_type.as_deref().unwrap_or("abuse")
        )),
    }
}

/// The SMTP code of a reply: its first word of three digits starting with
/// 2, 4 or 5 (`451`, `250-...`), wherever the relay's prefix put it
/// ("server refused MAIL FROM: 451 4.3.2 ...").
fn smtp_code(reply: Option<&str>) -> Option<u16> {
    reply?
        .split([' ', ':'])
        .map(|w| w.split('-').next().unwrap_or(w))
        .find(|w| {
            w.len() == 3
                && w.bytes().all(|b| b.is_ascii_digit())
                && matches!(w.as_bytes()[0], b'2' | b'4' | b'5')
        })
        .and_then(|w| w.parse().ok())
}

/// The message's state: `held`, `queued` (some recipient not final),
/// `delivered`, `failed`, or `partial` (final, some delivered, some not).
pub fn message_state(view: &MessageView) -> &'static str {
    let all_final = view.rcpts.iter().all(|r| r.state.is_final());
    if !all_final {
        return if view.held { "held" } else { "queued" };
    }
    let delivered = |s: &RcptState| {
        matches!(
            s,
            RcptState::Delivered { .. } | RcptState::Complained { .. }
        )
    };
    if view.rcpts.iter().all(|r| delivered(&r.state)) {
        "delivered"
    } else if view.rcpts.iter().any(|r| delivered(&r.state)) {
        "partial"
    } else {
        "failed"
    }
}

/// The list item of a message.
pub fn summary(view: &MessageView) -> Value {
    let rcpts: Vec<Value> = view
        .rcpts
        .iter()
        .map(|r| {
            let attempts = match &r.state {
                RcptState::Deferred { attempts, .. } => *attempts,
                RcptState::Queued => view.attempts,
                _ => view.attempts.max(1),
            };
            let next = (!r.state.is_final())
                .then_some(view.next_attempt_ms)
                .flatten()
                .map(rfc3339);
            json!({
                "address": r.rcpt,
                "state": rcpt_state_name(view, &r.state),
                "attempts": attempts,
                "lastReply": reply_of(&r.state),
                "nextAttempt": next,
            })
        })
        .collect();
    json!({
        "id": encode_id(&view.key),
        "token": view.key.token,
        "clientId": view.key.id,
        "from": view.mail_from,
        "recipients": rcpts,
        "size": view.size,
        "acceptedAt": rfc3339(view.received_ms),
        "state": message_state(view),
    })
}

/// The detail of a message: [`summary`] with its header block and each
/// recipient's history.
pub fn detail(view: &MessageView, bytes: Option<&[u8]>) -> Value {
    let mut v = summary(view);
    let headers: Vec<Value> = bytes
        .map(header_fields)
        .unwrap_or_default()
        .into_iter()
        .map(|(n, val)| json!([n, val]))
        .collect();
    v["headers"] = Value::Array(headers);
    if let Some(rcpts) = v["recipients"].as_array_mut() {
        for (item, r) in rcpts.iter_mut().zip(&view.rcpts) {
            let history: Vec<Value> = view
                .history
                .iter()
                .filter(|h| h.rcpt == r.rcpt)
                .map(|h| {
                    let reply = reply_of(&h.state);
                    json!({
                        "at": rfc3339(h.at_ms),
                        "state": match &h.state {
                            RcptState::Queued => "queued",
                            RcptState::Deferred { .. } => "deferred",
                            RcptState::Delivered { .. } => "delivered",
                            RcptState::Failed { .. } => "failed",
                            RcptState::Bounced { .. } => "bounced",
                            RcptState::Complained { .. } => "complained",
                        },
                        "smtpCode": smtp_code(reply.as_deref()),
                        "reply": reply,
                    })
                })
                .collect();
            item["history"] = Value::Array(history);
        }
    }
    v
}

/// The header fields of a message (its header block only, never the body),
/// unfolded, decoded as text (invalid UTF-8 replaced).
pub fn header_fields(bytes: &[u8]) -> Vec<(String, String)> {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .or_else(|| bytes.windows(2).position(|w| w == b"\n\n").map(|p| p + 1))
        .unwrap_or(bytes.len());
    let text = String::from_utf8_lossy(&bytes[..end]);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    out
}

/// The filters of `GET /admin/v1/messages`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Filter {
    /// Exact token name.
    pub token: Option<String>,
    /// Substring of the envelope sender, without case.
    pub sender: Option<String>,
    /// Substring of a recipient, without case.
    pub recipient: Option<String>,
    /// Message state (`queued`, `held`, `delivered`, `failed`, `partial`).
    pub state: Option<String>,
    /// Accepted at or after (RFC 3339, or ms since the epoch).
    pub since: Option<String>,
    /// Accepted before (RFC 3339, or ms since the epoch).
    pub until: Option<String>,
    /// Most messages in a page (default 100, at most 1000).
    pub limit: Option<usize>,
    /// Where the previous page ended.
    pub cursor: Option<String>,
}

/// A bad filter value.
#[derive(Debug, thiserror::Error)]
#[error("bad {field}: {why}")]
pub struct BadFilter {
    /// The parameter.
    pub field: &'static str,
    /// Why.
    pub why: String,
}

/// Parses a time: ms since the epoch, or RFC 3339 `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`.
pub fn parse_time(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<u64>() {
        return Some(ms);
    }
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut ms = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let f = &frac[..digits];
        ms = format!("{:0<3}", &f[..f.len().min(3)]).parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_s = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            let o = oh * 3600 + om * 60;
            if rest.starts_with('-') { -o } else { o }
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_s;
    u64::try_from(secs * 1000 + ms).ok()
}

/// Where a page ends: the last message's acceptance time and id.
pub fn encode_cursor(view: &MessageView) -> String {
    B64.encode(format!("{}.{}", view.received_ms, encode_id(&view.key)))
}

fn decode_cursor(c: &str) -> Option<(u64, String)> {
    let raw = String::from_utf8(B64.decode(c).ok()?).ok()?;
    let (ms, id) = raw.split_once('.')?;
    Some((ms.parse().ok()?, id.to_string()))
}

/// One page of messages, newest first, and the cursor of the next page.
pub fn page(
    mut views: Vec<MessageView>,
    f: &Filter,
) -> Result<(Vec<MessageView>, Option<String>), BadFilter> {
    let bad = |field, why: &str| BadFilter {
        field,
        why: why.to_string(),
    };
    let since = f
        .since
        .as_deref()
        .map(|s| parse_time(s).ok_or_else(|| bad("since", "not RFC 3339 nor ms since the epoch")))
        .transpose()?;
    let until = f
        .until
        .as_deref()
        .map(|s| parse_time(s).ok_or_else(|| bad("until", "not RFC 3339 nor ms since the epoch")))
        .transpose()?;
    if let Some(st) = f.state.as_deref()
        && !["queued", "held", "delivered", "failed", "partial"].contains(&st)
    {
        return Err(bad(
            "state",
            "one of queued, held, delivered, failed, partial",
        ));
    }
    let cursor = f
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| decode_cursor(c).ok_or_else(|| bad("cursor", "not a cursor this API gave")))
        .transpose()?;
    let limit = f.limit.unwrap_or(100).clamp(1, 1000);
    let sender = f.sender.as_deref().map(str::to_lowercase);
    let recipient = f.recipient.as_deref().map(str::to_lowercase);
    views.retain(|v| {
        f.token.as_deref().is_none_or(|t| v.key.token == t)
            && sender
                .as_deref()
                .is_none_or(|s| v.mail_from.to_lowercase().contains(s))
            && recipient
                .as_deref()
                .is_none_or(|s| v.rcpts.iter().any(|r| r.rcpt.to_lowercase().contains(s)))
            && f.state.as_deref().is_none_or(|s| message_state(v) == s)
            && since.is_none_or(|t| v.received_ms >= t)
            && until.is_none_or(|t| v.received_ms < t)
    });
    let mut ids: Vec<(String, MessageView)> =
        views.into_iter().map(|v| (encode_id(&v.key), v)).collect();
    ids.sort_by(|a, b| {
        b.1.received_ms
            .cmp(&a.1.received_ms)
            .then_with(|| a.0.cmp(&b.0))
    });
    if let Some((ms, id)) = cursor {
        ids.retain(|(vid, v)| v.received_ms < ms || (v.received_ms == ms && *vid > id));
    }
    let more = ids.len() > limit;
    ids.truncate(limit);
    let next = if more {
        ids.last().map(|(_, v)| encode_cursor(v))
    } else {
        None
    };
    Ok((ids.into_iter().map(|(_, v)| v).collect(), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_garbage_is_no_id() {
        let k = Key {
            token: "web".into(),
            id: "a/b?c d".into(),
        };
        let id = encode_id(&k);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(decode_id(&id), Some(k));
        assert_eq!(decode_id("!!"), None);
        assert_eq!(decode_id(&B64.encode("no separator")), None);
    }

    #[test]
    fn times_parse_as_rfc3339_or_ms() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("2026-12-05T02:04:24Z"), Some(1_796_436_264_000));
        assert_eq!(
            parse_time("2026-12-05T03:04:24.5+01:00"),
            Some(1_796_436_264_500)
        );
        assert_eq!(parse_time("42"), Some(42));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn headers_stop_at_the_body_and_unfold() {
        let h = header_fields(b"Subject: a\r\n b\r\nFrom: x@y\r\n\r\nBody: no\r\n");
        assert_eq!(
            h,
            vec![
                ("Subject".to_string(), "a b".to_string()),
                ("From".to_string(), "x@y".to_string())
            ]
        );
    }

    #[test]
    fn smtp_codes_are_read_from_replies() {
        assert_eq!(smtp_code(Some("451 4.3.0 try later")), Some(451));
        assert_eq!(
            smtp_code(Some("server refused MAIL FROM: 451 4.3.2 busy")),
            Some(451)
        );
        assert_eq!(smtp_code(Some("connection refused")), None);
        assert_eq!(smtp_code(None), None);
    }
}
