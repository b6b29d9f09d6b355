//! The field blocks of report bodies (RFC 3464 2.1, RFC 5965 3.1): header
//! fields in groups separated by empty lines, read leniently. A line that is
//! neither a field nor a continuation is skipped and counted.

/// One group of fields, names as written, values unfolded and trimmed.
#[derive(Debug, Default)]
pub(super) struct Group {
    pub(super) fields: Vec<(String, String)>,
}

impl Group {
    /// The first value of `name` (case-insensitive).
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub(super) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The groups of `text` and how many lines were not fields.
pub(super) fn groups(text: &str) -> (Vec<Group>, usize) {
    let mut groups = Vec::new();
    let mut current = Group::default();
    let mut skipped = 0;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !current.fields.is_empty() {
                groups.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match current.fields.last_mut() {
                Some((_, value)) => {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                None => skipped += 1,
            }
            continue;
        }
        match field(line) {
            Some((name, value)) => current.fields.push((name.to_string(), value.to_string())),
            None => skipped += 1,
        }
    }
    if !current.fields.is_empty() {
        groups.push(current);
    }
    (groups, skipped)
}

/// The header block at the start of `text` (up to the first empty line) as one group.
pub(super) fn header_block(text: &str) -> Group {
    let end = text
        .find("\n\n")
        .into_iter()
        .chain(text.find("\r\n\r\n"))
        .min()
        .unwrap_or(text.len());
    let (mut groups, _) = groups(text.get(..end).unwrap_or(text));
    if groups.is_empty() {
        Group::default()
    } else {
        groups.swap_remove(0)
    }
}

/// `Name: value` with a name of printable ASCII without spaces.
fn field(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once(':')?;
    let name = name.trim_end();
    let ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    ok.then(|| (name, value.trim()))
}

/// A typed value `type; text` (Final-Recipient, Diagnostic-Code, Remote-MTA):
/// the text after the type, or the whole value when it has no type.
pub(super) fn untyped(value: &str) -> String {
    let text = match value.split_once(';') {
        Some((kind, rest)) if is_type(kind.trim()) => rest,
        _ => value,
    };
    strip_angles(text.trim()).to_string()
}

fn is_type(kind: &str) -> bool {
    !kind.is_empty()
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `<addr>` -> `addr`.
pub(super) fn strip_angles(text: &str) -> &str {
    text.strip_prefix('<')
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_split_on_empty_lines_and_unfold() {
        let (g, skipped) = groups("A: 1\r\nB: 2\r\n  more\r\n\r\n\r\nC: 3\nnot a field\n");
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].get("b"), Some("2 more"));
        assert_eq!(g[1].get("C"), Some("3"));
        assert_eq!(skipped, 1);
    }

    #[test]
    fn typed_values_lose_their_type() {
        assert_eq!(untyped("rfc822; <a@b.example>"), "a@b.example");
        assert_eq!(
            untyped("smtp; 550 5.1.1 no; really"),
            "550 5.1.1 no; really"
        );
        assert_eq!(untyped("a@b.example"), "a@b.example");
    }
}
