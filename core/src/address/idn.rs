//! Internationalised domain names: ToASCII of a domain (lower-casing, then
//! RFC 3492 Punycode per label with the `xn--` prefix) and the Punycode codec.
//!
//! Ours rather than the `idna` crate: that crate implements all of UTS #46
//! with its Unicode mapping, normalisation, bidi and joining tables, which
//! cost ~116 KB gzipped in the npm package's WebAssembly (measured: 366 KB ->
//! 250 KB gzipped without it, against a 300 KB budget; docs/perf.md). A mail
//! domain needs much less: the labels lower-cased and Punycode-encoded.
//!
//! What UTS #46 does and this does not: compatibility mapping (full-width
//! letters, ligatures) and NFC normalisation (such labels are encoded as
//! written), and the bidi and CONTEXTJ checks. Labels already in `xn--` form
//! must decode and re-encode to themselves, so a malformed A-label is refused.
//! The tests compare with the `idna` crate on ordinary internationalised
//! domains and with RFC 3492's sample strings.

const BASE: u32 = 36;
const T_MIN: u32 = 1;
const T_MAX: u32 = 26;
const SKEW: u32 = 38;
const DAMP: u32 = 700;
const INITIAL_BIAS: u32 = 72;
const INITIAL_N: u32 = 128;

/// The label separators UTS #46 maps to `.`: full stop, ideographic,
/// full-width and half-width ideographic full stops.
fn is_dot(c: char) -> bool {
    matches!(c, '.' | '\u{3002}' | '\u{FF0E}' | '\u{FF61}')
}

/// The domain in ASCII: every label lower-cased (per character, so no
/// final-sigma rule, as in UTS #46), non-ASCII labels as `xn--` + Punycode.
/// `None` when a label cannot be encoded or an `xn--` label is malformed;
/// the caller checks lengths and the characters of the result.
pub(super) fn domain_to_ascii(domain: &str) -> Option<String> {
    let mut out = String::with_capacity(domain.len());
    for (i, label) in domain.split(is_dot).enumerate() {
        if i > 0 {
            out.push('.');
        }
        let lower: Vec<char> = label.chars().flat_map(char::to_lowercase).collect();
        if lower.iter().all(char::is_ascii) {
            let ascii: String = lower.iter().collect();
            if let Some(encoded) = ascii.strip_prefix("xn--") {
                let decoded = decode(encoded)?;
                let lower_stable = decoded.iter().all(|&c| c.to_lowercase().eq([c]));
                if decoded.iter().all(char::is_ascii)
                    || !lower_stable
                    || !decoded.iter().all(|&c| allowed_in_label(c))
                    || encode(&decoded)? != encoded
                {
                    return None;
                }
            }
            out.push_str(&ascii);
        } else {
            if !lower.iter().all(|&c| allowed_in_label(c)) {
                return None;
            }
            out.push_str("xn--");
            out.push_str(&encode(&lower)?);
        }
    }
    Some(out)
}

/// Refuses control, white-space and private-use characters and the
/// non-characters in a label (the ASCII ones are checked by the caller).
fn allowed_in_label(c: char) -> bool {
    !c.is_control()
        && !c.is_whitespace()
        && !matches!(c as u32, 0xE000..=0xF8FF | 0xFDD0..=0xFDEF | 0xF0000..)
        && (c as u32) & 0xFFFE != 0xFFFE
}

/// RFC 3492 section 6.1.
fn adapt(delta: u32, num_points: u32, first_time: bool) -> u32 {
    let mut delta = if first_time { delta / DAMP } else { delta / 2 };
    delta += delta / num_points;
    let mut k = 0;
    while delta > ((BASE - T_MIN) * T_MAX) / 2 {
        delta /= BASE - T_MIN;
        k += BASE;
    }
    k + (BASE - T_MIN + 1) * delta / (delta + SKEW)
}

/// The threshold `t` for the digit position `k` (RFC 3492 section 6.2/6.3).
fn threshold(k: u32, bias: u32) -> u32 {
    if k <= bias {
        T_MIN
    } else if k >= bias + T_MAX {
        T_MAX
    } else {
        k - bias
    }
}

/// The lower-case digit for a value below 36.
fn digit(d: u32) -> char {
    match d {
        0..=25 => char::from(b'a' + d as u8),
        _ => char::from(b'0' + (d - 26) as u8),
    }
}

/// The value of a digit, either case.
fn digit_value(c: char) -> Option<u32> {
    match c {
        'a'..='z' => Some(c as u32 - 'a' as u32),
        'A'..='Z' => Some(c as u32 - 'A' as u32),
        '0'..='9' => Some(c as u32 - '0' as u32 + 26),
        _ => None,
    }
}

/// Punycode of `input` (RFC 3492 section 6.3), basic code points kept as they
/// are; `None` on arithmetic overflow (inputs far longer than a label).
pub(super) fn encode(input: &[char]) -> Option<String> {
    let mut output: String = input.iter().filter(|c| c.is_ascii()).collect();
    let basic = u32::try_from(output.len()).ok()?;
    if basic > 0 {
        output.push('-');
    }
    let total = u32::try_from(input.len()).ok()?;
    let (mut n, mut delta, mut bias, mut handled) = (INITIAL_N, 0u32, INITIAL_BIAS, basic);
    while handled < total {
        let m = input.iter().map(|&c| c as u32).filter(|&c| c >= n).min()?;
        delta = delta.checked_add((m - n).checked_mul(handled + 1)?)?;
        n = m;
        for &c in input {
            let c = c as u32;
            if c < n {
                delta = delta.checked_add(1)?;
            }
            if c == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = threshold(k, bias);
                    if q < t {
                        break;
                    }
                    output.push(digit(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                output.push(digit(q));
                bias = adapt(delta, handled + 1, handled == basic);
                delta = 0;
                handled += 1;
            }
        }
        delta = delta.checked_add(1)?;
        n = n.checked_add(1)?;
    }
    Some(output)
}

/// The code points of a Punycode string (RFC 3492 section 6.2); `None` when
/// it is malformed (bad digit, overflow, a value that is no character).
pub(super) fn decode(input: &str) -> Option<Vec<char>> {
    let (basic, extended) = match input.rfind('-') {
        Some(at) => (&input[..at], &input[at + 1..]),
        None => ("", input),
    };
    if !basic.is_ascii() {
        return None;
    }
    let mut output: Vec<char> = basic.chars().collect();
    let (mut n, mut i, mut bias) = (INITIAL_N, 0u32, INITIAL_BIAS);
    let mut digits = extended.chars();
    while let Some(first) = digits.next() {
        let old_i = i;
        let mut w = 1u32;
        let mut k = BASE;
        let mut c = Some(first);
        loop {
            let d = digit_value(c?)?;
            i = i.checked_add(d.checked_mul(w)?)?;
            let t = threshold(k, bias);
            if d < t {
                break;
            }
            w = w.checked_mul(BASE - t)?;
            k += BASE;
            c = digits.next();
        }
        let len = u32::try_from(output.len()).ok()?.checked_add(1)?;
        bias = adapt(i - old_i, len, old_i == 0);
        n = n.checked_add(i / len)?;
        i %= len;
        let ch = char::from_u32(n)?;
        output.insert(usize::try_from(i).ok()?, ch);
        i += 1;
    }
    Some(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3492 section 7.1, samples A-E, G and L-S (code points, Punycode).
    fn samples() -> Vec<(Vec<u32>, &'static str)> {
        vec![
            (
                vec![
                    0x644, 0x64A, 0x647, 0x645, 0x627, 0x628, 0x62A, 0x643, 0x644, 0x645, 0x648,
                    0x634, 0x639, 0x631, 0x628, 0x64A, 0x61F,
                ],
                "egbpdaj6bu4bxfgehfvwxn",
            ),
            (
                vec![
                    0x4ED6, 0x4EEC, 0x4E3A, 0x4EC0, 0x4E48, 0x4E0D, 0x8BF4, 0x4E2D, 0x6587,
                ],
                "ihqwcrb4cv8a8dqg056pqjye",
            ),
            (
                vec![
                    0x4ED6, 0x5011, 0x7232, 0x4EC0, 0x9EBD, 0x4E0D, 0x8AAA, 0x4E2D, 0x6587,
                ],
                "ihqwctvzc91f659drss3x8bo0yb",
            ),
            (
                vec![
                    0x50, 0x72, 0x6F, 0x10D, 0x70, 0x72, 0x6F, 0x73, 0x74, 0x11B, 0x6E, 0x65, 0x6D,
                    0x6C, 0x75, 0x76, 0xED, 0x10D, 0x65, 0x73, 0x6B, 0x79,
                ],
                "Proprostnemluvesky-uyb24dma41a",
            ),
            (
                vec![
                    0x5DC, 0x5DE, 0x5D4, 0x5D4, 0x5DD, 0x5E4, 0x5E9, 0x5D5, 0x5D8, 0x5DC, 0x5D0,
                    0x5DE, 0x5D3, 0x5D1, 0x5E8, 0x5D9, 0x5DD, 0x5E2, 0x5D1, 0x5E8, 0x5D9, 0x5EA,
                ],
                "4dbcagdahymbxekheh6e0a7fei0b",
            ),
            (
                vec![
                    0x306A, 0x305C, 0x307F, 0x3093, 0x306A, 0x65E5, 0x672C, 0x8A9E, 0x3092, 0x8A71,
                    0x3057, 0x3066, 0x304F, 0x308C, 0x306A, 0x3044, 0x306E, 0x304B,
                ],
                "n8jok5ay5dzabd5bym9f0cm5685rrjetr6pdxa",
            ),
            (
                vec![0x33, 0x5E74, 0x42, 0x7D44, 0x91D1, 0x516B, 0x5148, 0x751F],
                "3B-ww4c5e180e575a65lsy2b",
            ),
            (
                vec![
                    0x5B89, 0x5BA4, 0x5948, 0x7F8E, 0x6075, 0x2D, 0x77, 0x69, 0x74, 0x68, 0x2D,
                    0x53, 0x55, 0x50, 0x45, 0x52, 0x2D, 0x4D, 0x4F, 0x4E, 0x4B, 0x45, 0x59, 0x53,
                ],
                "-with-SUPER-MONKEYS-pc58ag80a8qai00g7n9n",
            ),
            (
                vec![
                    0x48, 0x65, 0x6C, 0x6C, 0x6F, 0x2D, 0x41, 0x6E, 0x6F, 0x74, 0x68, 0x65, 0x72,
                    0x2D, 0x57, 0x61, 0x79, 0x2D, 0x305D, 0x308C, 0x305E, 0x308C, 0x306E, 0x5834,
                    0x6240,
                ],
                "Hello-Another-Way--fc4qua05auwb3674vfr0b",
            ),
            (
                vec![0x3072, 0x3068, 0x3064, 0x5C4B, 0x6839, 0x306E, 0x4E0B, 0x32],
                "2-u9tlzr9756bt3uc0v",
            ),
            (
                vec![
                    0x4D, 0x61, 0x6A, 0x69, 0x3067, 0x4B, 0x6F, 0x69, 0x3059, 0x308B, 0x35, 0x79D2,
                    0x524D,
                ],
                "MajiKoi5-783gue6qz075azm5e",
            ),
            (
                vec![
                    0x30D1, 0x30D5, 0x30A3, 0x30FC, 0x64, 0x65, 0x30EB, 0x30F3, 0x30D0,
                ],
                "de-jg4avhby1noc0d",
            ),
            (
                vec![0x305D, 0x306E, 0x30B9, 0x30D4, 0x30FC, 0x30C9, 0x3067],
                "d9juau41awczczp",
            ),
            (
                vec![
                    0x2D, 0x3E, 0x20, 0x24, 0x31, 0x2E, 0x30, 0x30, 0x20, 0x3C, 0x2D,
                ],
                "-> $1.00 <--",
            ),
        ]
    }

    fn chars(points: &[u32]) -> Vec<char> {
        points
            .iter()
            .map(|&p| char::from_u32(p).unwrap_or('\u{FFFD}'))
            .collect()
    }

    #[test]
    fn rfc3492_samples_encode() {
        for (points, puny) in samples() {
            assert_eq!(encode(&chars(&points)).as_deref(), Some(puny), "{puny}");
        }
    }

    #[test]
    fn rfc3492_samples_decode() {
        for (points, puny) in samples() {
            assert_eq!(decode(puny), Some(chars(&points)), "{puny}");
            // Digits are case-insensitive.
            let upper = match puny.rfind('-') {
                Some(at) => format!("{}{}", &puny[..=at], puny[at + 1..].to_uppercase()),
                None => puny.to_uppercase(),
            };
            assert_eq!(decode(&upper), Some(chars(&points)), "{upper}");
        }
    }

    #[test]
    fn malformed_punycode_is_refused() {
        assert_eq!(decode("abc-\u{e9}"), None, "non-basic digit");
        assert_eq!(decode("\u{e9}-abc"), None, "non-ASCII basic part");
        assert_eq!(decode("99999999999"), None, "overflow");
        assert_eq!(decode("b"), None, "truncated variable-length integer");
    }

    #[test]
    fn domains_to_ascii() {
        let cases = [
            ("Example.COM", "example.com"),
            ("bücher.example", "xn--bcher-kva.example"),
            ("BÜCHER.example", "xn--bcher-kva.example"),
            ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
            ("пример。испытание", "xn--e1afmkfd.xn--80akhbyknj4f"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
            ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
            ("ΣΊΣΥΦΟΣ.gr", "xn--kxa6akbbkh.gr"),
        ];
        for (input, want) in cases {
            assert_eq!(domain_to_ascii(input).as_deref(), Some(want), "{input}");
            assert_eq!(
                idna::domain_to_ascii(input).ok().as_deref(),
                Some(want),
                "idna on {input}"
            );
        }
    }

    #[test]
    fn malformed_a_labels_are_refused() {
        assert_eq!(
            domain_to_ascii("xn--abc-.example"),
            None,
            "decodes to ASCII only"
        );
        assert_eq!(domain_to_ascii("xn--99999999999.example"), None);
        assert_eq!(domain_to_ascii("xn--a.example"), None, "U+0080, a control");
        assert_eq!(
            domain_to_ascii("xn--bcher-kva.exa\u{0}mple"),
            Some("xn--bcher-kva.exa\u{0}mple".into()),
            "ASCII left to the caller"
        );
        assert_eq!(
            domain_to_ascii("b\u{fc}\u{85}cher.example"),
            None,
            "a C1 control"
        );
        assert_eq!(
            domain_to_ascii("b\u{fc}\u{e000}.example"),
            None,
            "private use"
        );
    }

    proptest::proptest! {
        /// Same result as the `idna` crate (UTS #46) on labels of letters and
        /// digits from several scripts, upper and lower case.
        #[test]
        fn agrees_with_idna(labels in proptest::collection::vec(
            "[a-zA-Z0-9éÉüÜßñÑöÖçдДжЖяЯ中文日本語αβΓΔ]{1,12}", 1..4)) {
            let domain = labels.join(".");
            let ours = domain_to_ascii(&domain);
            let theirs = idna::domain_to_ascii(&domain).ok();
            proptest::prop_assert_eq!(ours, theirs, "{}", domain);
        }
    }
}
