//! Content-Type strings of the spec (`text/calendar; method=REQUEST`), split
//! into the media type and its parameters, and validated, so that a bad value
//! is refused with a reason instead of being written into a header.

/// Why a content type was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid content type {value:?}: {reason}")]
pub struct ContentTypeError {
    /// The value as given.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// A parsed content type: `type/subtype` in lower case, then its parameters in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// `type/subtype`, lower case.
    pub essence: String,
    /// `(name, value)` pairs, names lower case, values unquoted.
    pub params: Vec<(String, String)>,
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c)
}

impl MediaType {
    /// Parses `type/subtype; name=value; name="quoted value"`.
    pub fn parse(value: &str) -> Result<Self, ContentTypeError> {
        let err = |reason| ContentTypeError {
            value: value.to_string(),
            reason,
        };
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(err("control characters are not allowed"));
        }
        let mut rest = value.trim();
        let end = rest.find(';').unwrap_or(rest.len());
        let essence = rest[..end].trim().to_ascii_lowercase();
        rest = &rest[end..];
        let (ty, sub) = essence
            .split_once('/')
            .ok_or_else(|| err("expected type/subtype"))?;
        if ty.is_empty()
            || sub.is_empty()
            || !ty.chars().all(is_token_char)
            || !sub.chars().all(is_token_char)
        {
            return Err(err("type and subtype must be non-empty tokens"));
        }
        let mut params = Vec::new();
        while let Some(after) = rest.strip_prefix(';') {
            let after = after.trim_start();
            if after.is_empty() {
                break;
            }
            let eq = after
                .find('=')
                .ok_or_else(|| err("parameter without '='"))?;
            let name = after[..eq].trim().to_ascii_lowercase();
            if name.is_empty() || !name.chars().all(is_token_char) {
                return Err(err("parameter name must be a token"));
            }
            let v = after[eq + 1..].trim_start();
            let (val, remainder) = if let Some(q) = v.strip_prefix('"') {
                let mut out = String::new();
                let mut chars = q.char_indices();
                let mut close = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some((_, e)) => out.push(e),
                            None => break,
                        },
                        '"' => {
                            close = Some(i);
                            break;
                        }
                        _ => out.push(c),
                    }
                }
                let close = close.ok_or_else(|| err("unterminated quoted parameter value"))?;
                (out, q[close + 1..].trim_start())
            } else {
                let end = v.find(';').unwrap_or(v.len());
                let token = v[..end].trim();
                if token.is_empty() || !token.chars().all(is_token_char) {
                    return Err(err("unquoted parameter value must be a token"));
                }
                (token.to_string(), &v[end..])
            };
            if !remainder.is_empty() && !remainder.starts_with(';') {
                return Err(err("expected ';' between parameters"));
            }
            params.push((name, val));
            rest = remainder;
        }
        Ok(MediaType { essence, params })
    }

    /// The value of parameter `name` (lower case), if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// True for `text/*`.
    pub fn is_text(&self) -> bool {
        self.essence.starts_with("text/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_parameters_quoted_and_not() {
        let m = MediaType::parse("Text/Calendar; method=REQUEST; name=\"invite; 1.ics\"")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.essence, "text/calendar");
        assert_eq!(m.param("method"), Some("REQUEST"));
        assert_eq!(m.param("name"), Some("invite; 1.ics"));
    }

    #[test]
    fn refuses_malformed_values() {
        for bad in [
            "",
            "text",
            "text/",
            "text/plain; charset",
            "text/plain; a=\"x",
            "text/plain\r\nX: y",
            "text/plain; a=b c",
        ] {
            assert!(MediaType::parse(bad).is_err(), "{bad:?}");
        }
    }
}
