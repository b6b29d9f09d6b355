//! The MIME structure of a message: where each entity's header block and
//! body begin and end, and which entities a multipart holds (RFC 2046 5.1).
//!
//! This module owns the splitting; mail-parser reads each header block
//! (`MessageStream::parse_headers`, which never looks at a body) and the decoders, so its
//! multipart state machine, and the debug assertions in it, are never run.
//! The reading follows Python's `email` feed parser, which real-world mail
//! is judged against:
//! - a delimiter is a whole line: `--boundary`, optionally `--`, then only
//!   white space; a boundary met in the middle of a line is text;
//! - a delimiter line of any enclosing multipart ends the current entity,
//!   so a multipart that is never closed (even one inside an attached
//!   message) ends at its parent's next delimiter instead of swallowing it;
//! - the header block ends at the first empty line, or at the first line
//!   that is neither a field nor a continuation (that line starts the body);
//! - the line break before a delimiter belongs to the delimiter.
//!
//! What had to be repaired is reported as a warning by the walk in `parse.rs`
//! through [`Entity::defect`].

use std::ops::Range;

use mail_parser::{HeaderName, MessageParser, MessagePart, MimeHeaders};

/// How many multiparts deep the split goes; a deeper multipart is kept as
/// one unsplit entity with [`Defect::TooDeep`].
pub(super) const MAX_NESTING: usize = 100;

/// One MIME entity: its header fields and where its body lies in the input.
pub(crate) struct Entity<'x> {
    /// The header fields as mail-parser reads them (the first of a repeated
    /// field wins in lookups).
    pub(crate) head: MessagePart<'x>,
    /// The body's bytes, before transfer decoding, as a range of the input.
    pub(crate) body: Range<usize>,
    /// The entities of a multipart, in order; empty for a leaf.
    pub(crate) children: Vec<Entity<'x>>,
    /// Whether this entity was split as a multipart.
    pub(crate) multipart: bool,
    /// What had to be repaired in this entity's structure, if anything.
    pub(crate) defect: Option<Defect>,
    /// How many Content-Type fields the header block has.
    pub(crate) content_types: usize,
    /// Lines in the header block that are not fields, passed over.
    pub(crate) skipped_lines: usize,
    /// The header block ended at a line that is not a field, without the
    /// empty line: that line starts the body.
    pub(crate) unterminated_head: bool,
}

/// Where a header block ends (see [`Splitter::header_end`]).
struct HeadEnd {
    head_end: usize,
    body_start: usize,
    skipped: usize,
    unterminated: bool,
}

/// A repaired structural fault of one entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Defect {
    /// A multipart without a `boundary` parameter: read as one text entity.
    NoBoundary,
    /// A multipart whose first delimiter never appears: read as one text entity.
    NoParts,
    /// A multipart whose close delimiter is missing: it ends at the next
    /// delimiter of an enclosing multipart, or at the end of the input.
    Unclosed,
    /// Nested deeper than [`MAX_NESTING`]: kept unsplit.
    TooDeep,
}

/// Splits `input` (a whole message) into its entity tree.
pub(super) fn split<'x>(parser: &MessageParser, input: &'x [u8]) -> Entity<'x> {
    let mut splitter = Splitter {
        parser,
        input,
        boundaries: Vec::new(),
    };
    let (entity, _) = splitter.entity(0, 0);
    entity
}

struct Splitter<'p, 'x> {
    parser: &'p MessageParser,
    input: &'x [u8],
    /// The boundaries of the enclosing multiparts, outermost first.
    boundaries: Vec<Vec<u8>>,
}

/// What a delimiter line is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Delimiter {
    /// `--b` of the multipart at this depth of the boundary stack.
    Open(usize),
    /// `--b--` of the multipart at this depth.
    Close(usize),
}

impl<'x> Splitter<'_, 'x> {
    /// The end of the line starting at `pos` (after its line break).
    fn line_end(&self, pos: usize) -> usize {
        self.input
            .get(pos..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
            .map_or(self.input.len(), |i| pos + i + 1)
    }

    /// The line at `pos` read as a delimiter of an enclosing multipart, the
    /// innermost first (Python's matchers are tried the same way).
    fn delimiter(&self, pos: usize, end: usize) -> Option<Delimiter> {
        let line = self.input.get(pos..end)?;
        let rest = line.strip_prefix(b"--")?;
        for (depth, boundary) in self.boundaries.iter().enumerate().rev() {
            let Some(after) = rest.strip_prefix(boundary.as_slice()) else {
                continue;
            };
            let (close, tail) = match after.strip_prefix(b"--") {
                Some(tail) => (true, tail),
                None => (false, after),
            };
            if tail.iter().all(|b| b" \t\r\n".contains(b)) {
                return Some(if close {
                    Delimiter::Close(depth)
                } else {
                    Delimiter::Open(depth)
                });
            }
        }
        None
    }

    /// From `pos`, the first line that is a delimiter of an enclosing
    /// multipart: its start and what it is (the input's end and `None` if
    /// there is none).
    fn next_delimiter(&self, mut pos: usize) -> (usize, Option<Delimiter>) {
        if self.boundaries.is_empty() {
            return (self.input.len(), None);
        }
        while pos < self.input.len() {
            let end = self.line_end(pos);
            if self.input.get(pos) == Some(&b'-')
                && let Some(d) = self.delimiter(pos, end)
            {
                return (pos, Some(d));
            }
            pos = end;
        }
        (self.input.len(), None)
    }

    /// `pos` less the line break just before it, where one is: the end of
    /// the content before the delimiter line at `pos` (the input's end is
    /// kept as it is).
    fn before_break(&self, start: usize, pos: usize) -> usize {
        let mut end = pos;
        if pos >= self.input.len() {
            return pos;
        }
        if end > start && self.input.get(end - 1) == Some(&b'\n') {
            end -= 1;
            if end > start && self.input.get(end - 1) == Some(&b'\r') {
                end -= 1;
            }
        }
        end
    }

    /// Whether the line `at..end` is a header field (`name:`), a
    /// continuation, or (first) an mbox `From ` line.
    fn is_field_line(&self, at: usize, end: usize, first: bool) -> bool {
        let line = self.input.get(at..end).unwrap_or_default();
        let content = line.trim_ascii_end();
        let field = content
            .iter()
            .position(|&b| b == b':')
            .is_some_and(|colon| {
                content[..colon]
                    .iter()
                    .all(|&b| b.is_ascii_graphic() || b >= 0x80 || b == b' ')
            });
        let continuation = !first && matches!(content.first(), Some(b' ' | b'\t'));
        field || continuation || (first && content.starts_with(b"From "))
    }

    /// Where the header block starting at `pos` ends, and where the body
    /// begins. A line that is neither a field nor a continuation starts the
    /// body, as in Python's email; only in the message's own header block
    /// (`lenient`), such a line with a field right after it is passed over
    /// (as mail-parser does), and counted.
    fn header_end(&self, pos: usize, lenient: bool) -> HeadEnd {
        let mut at = pos;
        let mut first = true;
        let mut skipped = 0;
        while at < self.input.len() {
            let end = self.line_end(at);
            let line = self.input.get(at..end).unwrap_or_default();
            if line == b"\n" || line == b"\r\n" {
                return HeadEnd {
                    head_end: at,
                    body_start: end,
                    skipped,
                    unterminated: false,
                };
            }
            if self.delimiter(at, end).is_some() {
                // A part with header fields only.
                return HeadEnd {
                    head_end: at,
                    body_start: at,
                    skipped,
                    unterminated: false,
                };
            }
            if !self.is_field_line(at, end, first) {
                let next = self.line_end(end);
                if lenient && end < next && self.is_field_line(end, next, false) {
                    skipped += 1;
                } else {
                    return HeadEnd {
                        head_end: at,
                        body_start: at,
                        skipped,
                        unterminated: true,
                    };
                }
            }
            first = false;
            at = end;
        }
        HeadEnd {
            head_end: self.input.len(),
            body_start: self.input.len(),
            skipped,
            unterminated: false,
        }
    }

    /// The entity whose header block starts at `pos`; it ends at the next
    /// delimiter line of an enclosing multipart (returned with the entity).
    fn entity(&mut self, pos: usize, depth: usize) -> (Entity<'x>, (usize, Option<Delimiter>)) {
        let HeadEnd {
            head_end,
            body_start,
            skipped,
            unterminated,
        } = self.header_end(pos, depth == 0);
        let head = self.head(pos, head_end);
        let content_types = head
            .headers
            .iter()
            .filter(|h| h.name == HeaderName::ContentType)
            .count();
        let mut entity = Entity {
            head,
            body: body_start..body_start,
            children: Vec::new(),
            multipart: false,
            defect: None,
            content_types,
            skipped_lines: skipped,
            unterminated_head: unterminated,
        };
        let content_type = entity.head.content_type();
        let is_multipart =
            content_type.is_some_and(|ct| ct.ctype().eq_ignore_ascii_case("multipart"));
        let boundary = content_type
            .and_then(|ct| ct.attribute("boundary"))
            .filter(|b| !b.is_empty())
            .map(|b| b.as_bytes().to_vec());
        if is_multipart {
            match boundary {
                None => entity.defect = Some(Defect::NoBoundary),
                Some(_) if depth >= MAX_NESTING => entity.defect = Some(Defect::TooDeep),
                Some(boundary) => return self.multipart(entity, boundary, depth),
            }
        }
        let next = self.next_delimiter(body_start);
        entity.body = body_start..self.before_break(body_start, next.0);
        (entity, next)
    }

    fn multipart(
        &mut self,
        mut entity: Entity<'x>,
        boundary: Vec<u8>,
        depth: usize,
    ) -> (Entity<'x>, (usize, Option<Delimiter>)) {
        let body_start = entity.body.start;
        let level = self.boundaries.len();
        self.boundaries.push(boundary);
        entity.multipart = true;
        let mut next = self.next_delimiter(body_start);
        if next.1 != Some(Delimiter::Open(level)) {
            // The first delimiter never comes: the body is one text entity.
            self.boundaries.truncate(level);
            entity.multipart = false;
            entity.defect = Some(Defect::NoParts);
            let next = if matches!(next.1, Some(Delimiter::Open(d) | Delimiter::Close(d)) if d == level)
            {
                // Only a close delimiter: the body ends there.
                let after = self.line_end(next.0);
                let end = self.before_break(body_start, next.0);
                entity.body = body_start..end;
                self.next_delimiter(after)
            } else {
                entity.body = body_start..self.before_break(body_start, next.0);
                next
            };
            return (entity, next);
        }
        let end;
        loop {
            match next.1 {
                Some(Delimiter::Open(d)) if d == level => {
                    let child_start = self.line_end(next.0);
                    let (child, after) = self.entity(child_start, depth + 1);
                    entity.children.push(child);
                    next = after;
                }
                Some(Delimiter::Close(d)) if d == level => {
                    // The epilogue runs to the enclosing multipart's next delimiter.
                    end = self.line_end(next.0);
                    self.boundaries.truncate(level);
                    next = self.next_delimiter(end);
                    break;
                }
                // An enclosing multipart's delimiter, or the end of the input:
                // this multipart was never closed.
                _ => {
                    entity.defect = Some(Defect::Unclosed);
                    end = self.before_break(body_start, next.0);
                    self.boundaries.truncate(level);
                    break;
                }
            }
        }
        entity.body = body_start..end.max(body_start);
        (entity, next)
    }

    /// The header fields of `input[start..end]`, offsets relative to the input.
    fn head(&self, start: usize, end: usize) -> MessagePart<'x> {
        let input: &'x [u8] = self.input;
        let block = input.get(start..end).unwrap_or_default();
        // The header reader alone: mail-parser's message state machine (and
        // its body decoders) is never called, nor linked into the browser module.
        let mut headers = Vec::new();
        mail_parser::parsers::MessageStream::new(block).parse_headers(self.parser, &mut headers);
        let shift = |o: u32| o.saturating_add(u32::try_from(start).unwrap_or(u32::MAX));
        for h in &mut headers {
            h.offset_field = shift(h.offset_field);
            h.offset_start = shift(h.offset_start);
            h.offset_end = shift(h.offset_end);
        }
        MessagePart {
            headers,
            is_encoding_problem: false,
            body: mail_parser::PartType::Text("".into()),
            encoding: mail_parser::Encoding::None,
            offset_header: u32::try_from(start).unwrap_or(u32::MAX),
            offset_body: u32::try_from(end).unwrap_or(u32::MAX),
            offset_end: u32::try_from(end).unwrap_or(u32::MAX),
        }
    }
}
