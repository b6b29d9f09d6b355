//! HTML escaping for the bodies postwire writes itself (a calendar
//! invitation's summary, a reply's quoted original). Model level: it imports
//! nothing of the crate.

/// Escapes `&`, `<`, `>`, `"` for HTML text and attributes.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}
