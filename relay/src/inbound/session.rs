//! One SMTP session of the inbound server (RFC 5321, server side), over any
//! buffered stream: the state machine of EHLO/HELO, MAIL, RCPT, DATA, RSET,
//! NOOP, QUIT and STARTTLS, every reply, and the limits (line lengths,
//! message size, recipients, errors, time per command).
//!
//! Pipelined commands work as they come: each line is answered in order.
//! STARTTLS with commands already buffered behind it is refused and the
//! connection closed (no command injected before TLS may run after it).

use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::line::{Line, read_line};
use super::{Config, Mailbox};

/// Longest command line (RFC 5321 4.5.3.1.4 says 512; room for parameters).
const MAX_COMMAND: usize = 2048;
/// Longest line of message text (RFC 5321 says 1000; some MTAs send longer).
const MAX_TEXT_LINE: usize = 64 << 10;
/// Bad commands before the server gives up on a client.
const MAX_ERRORS: u32 = 10;
/// Time to wait for one line of the message text (RFC 5321 4.5.3.2.5: 3 min).
const DATA_LINE_TIMEOUT: Duration = Duration::from_secs(180);

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// QUIT, the peer left, a timeout, or too many errors.
    Closed,
    /// STARTTLS was accepted: the caller upgrades the stream and runs a new session.
    StartTls,
}

#[derive(Default)]
struct Transaction {
    mail_from: Option<String>,
    rcpts: Vec<String>,
}

/// The address in `<...>` after `FROM:` / `TO:`, and the parameters after it.
fn path(arg: &str) -> Option<(String, &str)> {
    let arg = arg.trim_start();
    let rest = arg.strip_prefix('<')?;
    let end = rest.find('>')?;
    let addr = &rest[..end];
    if addr.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return None;
    }
    // A source route (`<@a,@b:user@c>`, RFC 5321 4.1.2) is ignored.
    let addr = match addr.split_once(':') {
        Some((route, a)) if route.starts_with('@') => a,
        _ => addr,
    };
    Some((addr.to_string(), rest[end + 1..].trim()))
}

/// The value of `SIZE=` in MAIL parameters.
fn size_param(params: &str) -> Option<u64> {
    params.split_ascii_whitespace().find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.eq_ignore_ascii_case("SIZE").then(|| v.parse().ok())?
    })
}

async fn reply<S: AsyncWrite + Unpin>(s: &mut S, text: &str) -> std::io::Result<()> {
    s.write_all(text.as_bytes()).await?;
    s.write_all(b"\r\n").await?;
    s.flush().await
}

/// Runs one session on `conn` (the greeting was sent by the caller).
/// `tls` says whether the stream is already encrypted.
pub async fn run<S>(
    conn: &mut BufReader<S>,
    cfg: &Config,
    mailbox: &dyn Mailbox,
    tls: bool,
    peer: &str,
) -> std::io::Result<End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut greeted = false;
    let mut tx = Transaction::default();
    let mut errors = 0u32;
    let mut line = Vec::new();
    let host = &cfg.hostname;
    loop {
        if errors >= MAX_ERRORS {
            reply(conn.get_mut(), "421 4.7.0 too many errors; closing").await?;
            return Ok(End::Closed);
        }
        let got = match tokio::time::timeout(
            cfg.command_timeout,
            read_line(conn, MAX_COMMAND, &mut line),
        )
        .await
        {
            Err(_) => {
                reply(conn.get_mut(), "421 4.4.2 timeout; closing").await?;
                return Ok(End::Closed);
            }
            Ok(r) => r?,
        };
        match got {
            Line::Eof => return Ok(End::Closed),
            Line::TooLong => {
                errors += 1;
                reply(conn.get_mut(), "500 5.5.6 line too long").await?;
                continue;
            }
            Line::Complete => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let (verb, arg) = match text.split_once(' ') {
            Some((v, a)) => (v, a),
            None => (text, ""),
        };
        let verb = verb.to_ascii_uppercase();
        let w = conn.get_mut();
        match verb.as_str() {
            "EHLO" | "HELO" if arg.trim().is_empty() => {
                errors += 1;
                reply(w, "501 5.5.4 a domain or address literal is required").await?;
            }
            "HELO" => {
                greeted = true;
                tx = Transaction::default();
                reply(w, &format!("250 {host}")).await?;
            }
            "EHLO" => {
                greeted = true;
                tx = Transaction::default();
                let mut lines = vec![
                    format!("{host} greets {}", arg.trim()),
                    "PIPELINING".to_string(),
                    format!("SIZE {}", cfg.max_size),
                    "8BITMIME".to_string(),
                    "SMTPUTF8".to_string(),
                    "ENHANCEDSTATUSCODES".to_string(),
                ];
                if cfg.tls.is_some() && !tls {
                    lines.push("STARTTLS".to_string());
                }
                let last = lines.len() - 1;
                let mut out = String::new();
                for (i, l) in lines.iter().enumerate() {
                    out.push_str(&format!("250{}{l}\r\n", if i == last { ' ' } else { '-' }));
                }
                w.write_all(out.as_bytes()).await?;
                w.flush().await?;
            }
            "STARTTLS" => {
                if cfg.tls.is_none() || tls {
                    errors += 1;
                    reply(conn.get_mut(), "502 5.5.1 STARTTLS not available").await?;
                } else if !arg.trim().is_empty() {
                    errors += 1;
                    reply(conn.get_mut(), "501 5.5.4 STARTTLS takes no parameters").await?;
                } else if !conn.buffer().is_empty() {
                    tracing::info!(
                        peer,
                        "inbound SMTP: commands pipelined after STARTTLS; closing"
                    );
                    reply(
                        conn.get_mut(),
                        "554 5.5.1 commands sent after STARTTLS; closing",
                    )
                    .await?;
                    return Ok(End::Closed);
                } else {
                    reply(conn.get_mut(), "220 2.0.0 ready to start TLS").await?;
                    return Ok(End::StartTls);
                }
            }
            "MAIL" => {
                let Some(rest) = arg
                    .get(..5)
                    .filter(|p| p.eq_ignore_ascii_case("FROM:"))
                    .map(|_| &arg[5..])
                else {
                    errors += 1;
                    reply(w, "501 5.5.4 syntax: MAIL FROM:<address>").await?;
                    continue;
                };
                if !greeted {
                    errors += 1;
                    reply(w, "503 5.5.1 send EHLO or HELO first").await?;
                } else if tx.mail_from.is_some() {
                    errors += 1;
                    reply(w, "503 5.5.1 nested MAIL command").await?;
                } else {
                    match path(rest) {
                        None => {
                            errors += 1;
                            reply(w, "501 5.1.7 bad sender address syntax").await?;
                        }
                        Some((_, params))
                            if size_param(params).is_some_and(|n| n > cfg.max_size as u64) =>
                        {
                            reply(w, "552 5.3.4 message too large").await?;
                        }
                        Some((addr, _)) => {
                            tx.mail_from = Some(addr);
                            reply(w, "250 2.1.0 ok").await?;
                        }
                    }
                }
            }
            "RCPT" => {
                let Some(rest) = arg
                    .get(..3)
                    .filter(|p| p.eq_ignore_ascii_case("TO:"))
                    .map(|_| &arg[3..])
                else {
                    errors += 1;
                    reply(w, "501 5.5.4 syntax: RCPT TO:<address>").await?;
                    continue;
                };
                if tx.mail_from.is_none() {
                    errors += 1;
                    reply(w, "503 5.5.1 send MAIL first").await?;
                    continue;
                }
                match path(rest) {
                    None => {
                        errors += 1;
                        reply(w, "501 5.1.3 bad recipient address syntax").await?;
                    }
                    Some((addr, _)) if !mailbox.accepts(&addr) => {
                        errors += 1;
                        tracing::info!(peer, rcpt = %addr, "inbound SMTP: refused a recipient outside the bounce domain");
                        reply(
                            w,
                            &format!(
                                "550 5.7.1 relaying denied: only mail for {} is accepted here",
                                cfg.domain
                            ),
                        )
                        .await?;
                    }
                    Some(_) if tx.rcpts.len() >= cfg.max_rcpts => {
                        reply(w, "452 4.5.3 too many recipients").await?;
                    }
                    Some((addr, _)) => {
                        tx.rcpts.push(addr);
                        reply(w, "250 2.1.5 ok").await?;
                    }
                }
            }
            "DATA" => {
                if tx.mail_from.is_none() {
                    errors += 1;
                    reply(w, "503 5.5.1 send MAIL first").await?;
                    continue;
                }
                if tx.rcpts.is_empty() {
                    errors += 1;
                    reply(w, "554 5.5.1 no valid recipients").await?;
                    continue;
                }
                reply(w, "354 end data with <CR><LF>.<CR><LF>").await?;
                let Some((bytes, fault)) = read_data(conn, cfg.max_size).await? else {
                    // The peer left or stopped sending mid-message: nothing accepted.
                    let _ = reply(conn.get_mut(), "421 4.4.2 timeout in DATA; closing").await;
                    return Ok(End::Closed);
                };
                let t = std::mem::take(&mut tx);
                let w = conn.get_mut();
                match fault {
                    Some(DataFault::TooLarge) => {
                        reply(w, "552 5.3.4 message too large").await?;
                    }
                    None => {
                        let from = t.mail_from.unwrap_or_default();
                        match mailbox.deliver(from, t.rcpts, bytes).await {
                            Ok(()) => reply(w, "250 2.0.0 ok").await?,
                            Err(e) => {
                                tracing::error!(peer, error = %e, "inbound SMTP: cannot record a report; the sender will retry");
                                reply(w, "451 4.3.0 cannot take the message now; try again later")
                                    .await?;
                            }
                        }
                    }
                }
            }
            "RSET" => {
                tx = Transaction::default();
                reply(w, "250 2.0.0 ok").await?;
            }
            "NOOP" => reply(w, "250 2.0.0 ok").await?,
            "QUIT" => {
                reply(w, &format!("221 2.0.0 {host} closing")).await?;
                return Ok(End::Closed);
            }
            "VRFY" | "EXPN" => reply(w, "252 2.5.0 cannot verify").await?,
            "HELP" => {
                reply(
                    w,
                    "214 2.0.0 EHLO HELO MAIL RCPT DATA RSET NOOP QUIT STARTTLS",
                )
                .await?
            }
            _ => {
                errors += 1;
                reply(w, "500 5.5.2 command not recognized").await?;
            }
        }
    }
}

/// Why a message read in DATA is refused.
enum DataFault {
    TooLarge,
}

/// Reads message text up to the lone `.`, dot-unstuffed. Text past
/// `max_size` is read and dropped. `None` when the peer left or timed out
/// before the end.
async fn read_data<R: AsyncBufRead + Unpin>(
    r: &mut R,
    max_size: usize,
) -> std::io::Result<Option<(Vec<u8>, Option<DataFault>)>> {
    let mut out = Vec::new();
    let mut fault = None;
    let mut line = Vec::new();
    loop {
        let got =
            match tokio::time::timeout(DATA_LINE_TIMEOUT, read_line(r, MAX_TEXT_LINE, &mut line))
                .await
            {
                Err(_) => return Ok(None),
                Ok(got) => got?,
            };
        match got {
            Line::Eof => return Ok(None),
            // A line too long to keep is dropped; the message as a whole is
            // still read and (if it fits) handed over: a report is read leniently.
            Line::TooLong => continue,
            Line::Complete => {}
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(Some((out, fault)));
        }
        if fault.is_some() {
            continue;
        }
        let text = line.strip_prefix(b".").unwrap_or(&line);
        if out.len() + text.len() > max_size {
            fault = Some(DataFault::TooLarge);
            out = Vec::new();
            continue;
        }
        out.extend_from_slice(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_sizes_are_read_from_the_arguments() {
        assert_eq!(path("<a@b.c> SIZE=10"), Some(("a@b.c".into(), "SIZE=10")));
        assert_eq!(path("<>"), Some((String::new(), "")));
        assert_eq!(path(" <@r1,@r2:u@d.e>"), Some(("u@d.e".into(), "")));
        assert_eq!(path("a@b.c"), None);
        assert_eq!(path("<a b@c>"), None);
        assert_eq!(size_param("BODY=8BITMIME size=1234"), Some(1234));
        assert_eq!(size_param("SIZE=x"), None);
    }
}
