//! Reading one CRLF- (or LF-) terminated line with a length limit, from a
//! buffered reader: a longer line is consumed to its end and reported as
//! [`Line::TooLong`] without ever being held in memory.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// What [`read_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line, in the caller's buffer, with its line ending.
    Complete,
    /// A line longer than the limit (consumed, not kept).
    TooLong,
    /// The peer closed the connection (a partial last line is dropped).
    Eof,
}

/// Reads one line into `out` (cleared first), up to `max` bytes with its ending.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    max: usize,
    out: &mut Vec<u8>,
) -> std::io::Result<Line> {
    out.clear();
    let mut too_long = false;
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Line::Eof);
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if !too_long {
            if out.len() + take > max {
                too_long = true;
                out.clear();
            } else {
                out.extend_from_slice(&buf[..take]);
            }
        }
        r.consume(take);
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_cut_at_their_ends_and_long_ones_are_skipped_whole() {
        let input: &[u8] = b"EHLO a\r\nxxxxxxxxxxxxxxxxxxxx\r\nNOOP\npartial";
        let mut r = tokio::io::BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut r, 10, &mut buf).await.unwrap(),
            Line::Complete
        );
        assert_eq!(buf, b"EHLO a\r\n");
        assert_eq!(
            read_line(&mut r, 10, &mut buf).await.unwrap(),
            Line::TooLong
        );
        assert!(buf.is_empty());
        assert_eq!(
            read_line(&mut r, 10, &mut buf).await.unwrap(),
            Line::Complete
        );
        assert_eq!(buf, b"NOOP\n");
        assert_eq!(read_line(&mut r, 10, &mut buf).await.unwrap(), Line::Eof);
    }
}
