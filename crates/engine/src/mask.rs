//! Hiding secrets in log text, like GitHub's `SecretMasker` and its value encoders.
//!
//! Every registered value is stored with the forms GitHub also hides: JSON-string-escaped,
//! URI-data-escaped (`%XX`), XML-escaped, expression-escaped (`'` doubled), command-line
//! escaped (`"` as `\"`), without surrounding double quotes (values over 8 characters), and
//! base64 of the value's bytes from offsets 0, 1 and 2 (a value inside a longer base64 text
//! starts at any of three alignments), with the padding removed and with the last digit
//! removed when it also holds bits of whatever follows; URL-safe base64 (`-_`) too. Base64
//! forms shorter than [`MIN_BASE64_LEN`] are not registered: a two-letter fragment would hide
//! ordinary text everywhere.
//!
//! Masking scans each line once: at each byte, only the patterns starting with that byte and
//! the next are compared (a table indexed by the two bytes), longest first; overlapping and
//! touching matches merge into one `***`. The two-byte table (256 KiB) is allocated with the
//! first value, so share one `Masker` per job rather than cloning it per line.

use std::borrow::Cow;
use std::collections::HashSet;

/// The shortest base64 form of a value that is registered.
pub const MIN_BASE64_LEN: usize = 6;

/// What replaces a secret.
const MASK: &str = "***";

/// Replaces every registered secret in log text with `***`, like GitHub's SecretMasker.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// Every pattern hidden, literal values and their encoded forms.
    patterns: Vec<String>,
    known: HashSet<String>,
    /// For each first two bytes (`b0 << 8 | b1`), 1 + the index in `buckets` of the patterns
    /// starting with them, or 0 (empty until the first value is added).
    by_prefix: Vec<u32>,
    /// Patterns of two bytes or more sharing their first two bytes, longest first.
    buckets: Vec<Vec<usize>>,
    /// Single-byte patterns (empty until the first value is added).
    single: Vec<bool>,
}

impl Masker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a value: ignored if empty or only whitespace; a multi-line value also
    /// registers each of its lines (trimmed of `\r`, non-blank); also registers the encoded
    /// forms GitHub masks (see the module documentation).
    pub fn add(&mut self, value: &str) {
        if value.trim().is_empty() {
            return;
        }
        self.add_with_encodings(value);
        if value.contains(['\n', '\r']) {
            for line in value.split('\n') {
                let line = line.trim_matches('\r');
                if !line.trim().is_empty() {
                    self.add_with_encodings(line);
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The line with every registered value replaced by `***` (longest first; overlapping
    /// matches merged).
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.patterns.is_empty() {
            return Cow::Borrowed(text);
        }
        let ranges = self.ranges(text);
        if ranges.is_empty() {
            return Cow::Borrowed(text);
        }
        // Patterns are whole UTF-8 strings, so every range starts and ends on a char boundary.
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        for (start, end) in ranges {
            out.push_str(&text[pos..start]);
            out.push_str(MASK);
            pos = end;
        }
        out.push_str(&text[pos..]);
        Cow::Owned(out)
    }

    /// Masks `piece`, a line cut before `next` (its continuation; empty for the last
    /// piece), so that a secret across the cut is hidden as in the whole line: the first
    /// `skip` bytes of `piece` are left out (the previous piece's `***` covers them), and
    /// a value running on into `next` ends `piece` with `***`. Returns the masked piece and
    /// how many bytes of `next` that `***` covers, the `skip` for `next`.
    pub fn mask_piece(&self, piece: &str, skip: usize, next: &str) -> (String, usize) {
        let mut skip = skip.min(piece.len());
        while !piece.is_char_boundary(skip) {
            skip += 1;
        }
        if self.patterns.is_empty() {
            return (piece[skip..].to_owned(), 0);
        }
        let mut joined = String::with_capacity(piece.len() + next.len());
        joined.push_str(piece);
        joined.push_str(next);
        let mut out = String::with_capacity(piece.len() - skip);
        let mut pos = skip;
        let mut carry = 0;
        for (start, end) in self.ranges(&joined) {
            if end <= pos {
                continue;
            }
            if start >= piece.len() {
                break;
            }
            // A range reaching into the skipped bytes (or touching them) continues the
            // previous piece's `***`.
            if skip == 0 || start > skip {
                out.push_str(&piece[pos..start.max(pos)]);
                out.push_str(MASK);
            }
            if end > piece.len() {
                carry = end - piece.len();
                pos = piece.len();
                break;
            }
            pos = end;
        }
        out.push_str(&piece[pos..]);
        (out, carry)
    }

    /// The byte ranges of `text` to hide, in order, overlapping and touching ones merged.
    fn ranges(&self, text: &str) -> Vec<(usize, usize)> {
        let bytes = text.as_bytes();
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for i in 0..bytes.len() {
            let Some(len) = self.longest_match_at(&bytes[i..]) else {
                continue;
            };
            let end = i + len;
            match ranges.last_mut() {
                Some(last) if i <= last.1 => last.1 = last.1.max(end),
                _ => ranges.push((i, end)),
            }
        }
        ranges
    }

    fn add_with_encodings(&mut self, value: &str) {
        self.add_pattern(value.to_string());
        self.add_pattern(json_escape(value));
        self.add_pattern(uri_data_escape(value));
        self.add_pattern(xml_escape(value));
        self.add_pattern(value.replace('\'', "''"));
        self.add_pattern(value.replace('"', "\\\""));
        if value.len() > 8 && value.starts_with('"') && value.ends_with('"') {
            self.add_pattern(value[1..value.len() - 1].to_string());
        }
        for form in base64_forms(value.as_bytes()) {
            if form.len() >= MIN_BASE64_LEN {
                if form.contains(['+', '/']) {
                    self.add_pattern(form.replace('+', "-").replace('/', "_"));
                }
                self.add_pattern(form);
            }
        }
    }

    /// The length of the longest pattern `rest` starts with.
    fn longest_match_at(&self, rest: &[u8]) -> Option<usize> {
        let first = *rest.first()?;
        if let Some(&second) = rest.get(1) {
            let key = usize::from(first) << 8 | usize::from(second);
            let bucket = self.by_prefix.get(key).copied().unwrap_or(0);
            if bucket != 0 {
                let found = self.buckets[bucket as usize - 1]
                    .iter()
                    .map(|&p| self.patterns[p].as_bytes())
                    .find(|pattern| rest.starts_with(pattern))
                    .map(<[u8]>::len);
                if found.is_some() {
                    return found;
                }
            }
        }
        self.single
            .get(usize::from(first))
            .copied()
            .unwrap_or(false)
            .then_some(1)
    }

    fn add_pattern(&mut self, pattern: String) {
        let bytes = pattern.as_bytes();
        let Some(&first) = bytes.first() else {
            return;
        };
        if self.known.contains(&pattern) {
            return;
        }
        if self.single.is_empty() {
            self.single = vec![false; 256];
            self.by_prefix = vec![0; 1 << 16];
        }
        let index = self.patterns.len();
        let second = bytes.get(1).copied();
        self.known.insert(pattern.clone());
        self.patterns.push(pattern);
        let Some(second) = second else {
            self.single[usize::from(first)] = true;
            return;
        };
        let key = usize::from(first) << 8 | usize::from(second);
        if self.by_prefix[key] == 0 {
            self.buckets.push(Vec::new());
            self.by_prefix[key] = u32::try_from(self.buckets.len()).unwrap_or(u32::MAX);
        }
        let Some(bucket) = self.buckets.get_mut(self.by_prefix[key] as usize - 1) else {
            return;
        };
        bucket.push(index);
        let patterns = &self.patterns;
        bucket.sort_by_key(|&p| std::cmp::Reverse(patterns[p].len()));
    }
}

/// The value as inside a JSON string (Newtonsoft's default escaping, quotes removed).
fn json_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}') => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

/// The value percent-encoded like .NET's `Uri.EscapeDataString` (RFC 3986 unreserved kept).
fn uri_data_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The value escaped for XML text (`SecurityElement.Escape`).
fn xml_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out
}

const BASE64_DIGITS: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let digits = chunk.len() + 1;
        for k in 0..4 {
            if k < digits {
                out.push(char::from(
                    BASE64_DIGITS[((n >> (18 - 6 * k)) & 63) as usize],
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The base64 forms of `bytes` that can appear in a log: the whole padded encoding, and for
/// each starting offset 0..=2 the encoding without padding and without its last digit when
/// that digit is only partly the value's.
fn base64_forms(bytes: &[u8]) -> Vec<String> {
    let mut forms = vec![base64(bytes)];
    for offset in 0..=2 {
        let Some(tail) = bytes.get(offset..).filter(|t| !t.is_empty()) else {
            break;
        };
        let unpadded = base64(tail).trim_end_matches('=').to_string();
        if tail.len() % 3 != 0 {
            forms.push(unpadded[..unpadded.len() - 1].to_string());
        }
        forms.push(unpadded);
    }
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masker(values: &[&str]) -> Masker {
        let mut m = Masker::new();
        for v in values {
            m.add(v);
        }
        m
    }

    #[test]
    fn empty_masker_borrows() {
        let m = Masker::new();
        assert!(m.is_empty());
        assert!(matches!(m.mask("secret"), Cow::Borrowed("secret")));
    }

    #[test]
    fn blank_values_are_ignored() {
        let m = masker(&["", "   ", "\n\t\r\n"]);
        assert!(m.is_empty());
        assert_eq!(m.mask("a b"), "a b");
    }

    #[test]
    fn masks_every_occurrence() {
        let m = masker(&["secret value"]);
        assert!(!m.is_empty());
        assert_eq!(m.mask("secret value"), "***");
        assert_eq!(
            m.mask("a secret value, another secret value."),
            "a ***, another ***."
        );
        assert!(matches!(m.mask("nothing here"), Cow::Borrowed(_)));
        assert_eq!(m.mask("secret valu"), "secret valu");
    }

    #[test]
    fn adjacent_and_overlapping_occurrences_merge() {
        let m = masker(&["abab"]);
        assert_eq!(m.mask("abababab"), "***");
        assert_eq!(m.mask("ababab!"), "***!");
        let m = masker(&["abc"]);
        assert_eq!(m.mask("abcabc x abc"), "*** x ***");
    }

    #[test]
    fn overlapping_secrets_merge() {
        let m = masker(&["hello wor", "world peace"]);
        assert_eq!(m.mask("say hello world peace now"), "say *** now");
    }

    #[test]
    fn secret_inside_another_uses_the_longest() {
        let m = masker(&["pass", "password123"]);
        assert_eq!(m.mask("password123"), "***");
        assert_eq!(m.mask("password"), "***word");
        let m = masker(&["password123", "pass"]);
        assert_eq!(m.mask("x password123 y pass"), "x *** y ***");
    }

    #[test]
    fn multi_line_secret_masked_per_line() {
        let m = masker(&["-----BEGIN KEY-----\r\nAAAA1111\r\n\r\n  \nBBBB2222\n-----END KEY-----"]);
        assert_eq!(m.mask("AAAA1111"), "***");
        assert_eq!(m.mask("line: BBBB2222 end"), "line: *** end");
        assert_eq!(m.mask("-----END KEY-----"), "***");
        // Whole value too, when a caller masks a multi-line chunk.
        assert_eq!(
            m.mask("-----BEGIN KEY-----\r\nAAAA1111\r\n\r\n  \nBBBB2222\n-----END KEY-----"),
            "***"
        );
        // Blank lines of the secret are not registered.
        assert_eq!(m.mask("a  b"), "a  b");
    }

    #[test]
    fn unicode_secrets() {
        let m = masker(&["pässwörd", "秘密"]);
        assert_eq!(m.mask("x=pässwörd; y=秘密の鍵"), "x=***; y=***の鍵");
        assert_eq!(m.mask("passwort 秘"), "passwort 秘");
    }

    #[test]
    fn single_character_secret() {
        let m = masker(&["x"]);
        assert_eq!(m.mask("xyx"), "***y***");
    }

    #[test]
    fn json_escaped_form() {
        let m = masker(&["a\"b\\c\nd\u{1}e"]);
        assert_eq!(
            m.mask(r#"{"token":"a\"b\\c\nd\u0001e"}"#),
            r#"{"token":"***"}"#
        );
        assert_eq!(json_escape("\u{2028}\t\u{8}\u{c}"), "\\u2028\\t\\b\\f");
    }

    #[test]
    fn uri_escaped_form() {
        let m = masker(&["p@ss w/rd+ü"]);
        assert_eq!(
            m.mask("https://x/?t=p%40ss%20w%2Frd%2B%C3%BC&y=1"),
            "https://x/?t=***&y=1"
        );
        assert_eq!(uri_data_escape("A-z_0.9~"), "A-z_0.9~");
    }

    #[test]
    fn other_escaped_forms() {
        let m = masker(&["it's \"x\" & <y>"]);
        assert_eq!(m.mask("'it''s \"x\" & <y>'"), "'***'");
        assert_eq!(m.mask("-e T=\"it's \\\"x\\\" & <y>\""), "-e T=\"***\"");
        assert_eq!(
            m.mask("<v>it&apos;s &quot;x&quot; &amp; &lt;y&gt;</v>"),
            "<v>***</v>"
        );
        let m = masker(&["\"quoted-secret\""]);
        assert_eq!(m.mask("value quoted-secret"), "value ***");
        // Short quoted values keep their quotes.
        let m = masker(&["\"ab\""]);
        assert_eq!(m.mask("ab"), "ab");
    }

    #[test]
    fn base64_encoder() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b"abc\n"), "YWJjCg==");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn base64_of_the_secret_alone() {
        let m = masker(&["supersecret"]);
        assert_eq!(m.mask(&base64(b"supersecret")), "***");
        // Followed by a newline, the last digit mixes the secret with the newline: it stays.
        let encoded = base64(b"supersecret\n");
        let masked = m.mask(&encoded);
        assert!(
            masked.starts_with("***") && masked.len() <= 3 + 4,
            "{encoded} -> {masked}"
        );
    }

    #[test]
    fn base64_inside_longer_content_at_every_alignment() {
        let secret = "hunter2-is-my-password";
        let m = masker(&[secret]);
        for prefix in ["", "u", "us", "use", "user:", "user:x"] {
            for suffix in ["", "\n", "!", "!!", "!!!"] {
                let encoded = base64(format!("{prefix}{secret}{suffix}").as_bytes());
                let masked = m.mask(&encoded);
                assert!(
                    masked.contains(MASK),
                    "{prefix:?} {suffix:?}: {encoded} -> {masked}"
                );
                // At most a digit or two of padding-dependent text stays on either side.
                assert!(
                    masked.len()
                        <= MASK.len() + 3 + prefix.len() * 4 / 3 + 2 + suffix.len() * 2 + 2,
                    "{prefix:?} {suffix:?}: {encoded} -> {masked}"
                );
            }
        }
    }

    #[test]
    fn base64_url_safe_form() {
        // Bytes chosen so the standard encoding has `+` and `/`.
        let secret = "\u{7ff}\u{7ff}>>>???";
        let m = masker(&[secret]);
        let standard = base64(secret.as_bytes());
        assert!(standard.contains(['+', '/']), "{standard}");
        let url_safe = standard.replace('+', "-").replace('/', "_");
        assert_eq!(m.mask(&url_safe), "***");
        assert_eq!(m.mask(&standard), "***");
    }

    #[test]
    fn short_values_get_no_base64_forms() {
        let m = masker(&["abc"]);
        // base64("abc") = "YWJj" is too short to register: it would hide ordinary text.
        assert_eq!(m.mask("YWJj"), "YWJj");
        assert_eq!(m.mask("abc"), "***");
    }

    #[test]
    fn mask_values_workflow() {
        // act's mask-values workflow registers the base64 text of "abc\n".
        let m = masker(&["secret value", "YWJjCg=="]);
        assert_eq!(m.mask("secret value"), "***");
        assert_eq!(m.mask("YWJjCg=="), "***");
    }

    #[test]
    fn single_byte_and_longer_secrets_sharing_a_first_byte() {
        let m = masker(&["q", "qwerty"]);
        assert_eq!(m.mask("qwertyq qw"), "*** ***w");
    }

    #[test]
    fn secrets_with_special_characters_and_at_line_edges() {
        let m = masker(&["a.*b[c]$", "(x|y)"]);
        assert_eq!(m.mask("a.*b[c]$ and (x|y)"), "*** and ***");
        assert_eq!(m.mask("aXXb x|y"), "aXXb x|y");
    }

    #[test]
    fn duplicates_are_registered_once() {
        let mut m = masker(&["same-secret"]);
        let count = m.patterns.len();
        m.add("same-secret");
        assert_eq!(m.patterns.len(), count);
        assert_eq!(m.mask("same-secret"), "***");
    }

    /// Masks a line cut into pieces the way the output reader does.
    fn mask_in_pieces(m: &Masker, pieces: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        let mut skip = 0;
        for (i, piece) in pieces.iter().enumerate() {
            let next = pieces.get(i + 1).copied().unwrap_or("");
            let (masked, carry) = m.mask_piece(piece, skip, next);
            out.push(masked);
            skip = carry;
        }
        out
    }

    #[test]
    fn a_secret_across_a_cut_is_masked_on_both_sides() {
        let m = masker(&["hunter2"]);
        assert_eq!(
            mask_in_pieces(&m, &["aaa hun", "ter2 bbb"]),
            ["aaa ***", " bbb"]
        );
        assert_eq!(mask_in_pieces(&m, &["hunter2", "hunter2"]), ["***", ""]);
        assert_eq!(mask_in_pieces(&m, &["x hunter2", " y"]), ["x ***", " y"]);
        assert_eq!(
            mask_in_pieces(&m, &["xh", "unter2hun", "ter2!"]),
            ["x***", "", "!"]
        );
        assert_eq!(mask_in_pieces(&m, &["plain", " text"]), ["plain", " text"]);
        assert_eq!(mask_in_pieces(&Masker::new(), &["a", "b"]), ["a", "b"]);
        // A value right after a masked one at the cut merges into the same `***`.
        assert_eq!(mask_in_pieces(&m, &["hun", "ter2hunter2 q"]), ["***", " q"]);
    }

    #[test]
    fn many_lines_many_secrets() {
        // Speed check without a timing assert: 10k lines x 50 secrets (plus encodings).
        let secrets: Vec<String> = (0..50).map(|i| format!("s3cr3t-{i:03}-token-Zq")).collect();
        let mut m = Masker::new();
        for s in &secrets {
            m.add(s);
        }
        let mut masked_lines = 0;
        for i in 0..10_000 {
            let line = if i % 100 == 0 {
                format!(
                    "step {i}: using {} for auth, then continuing",
                    secrets[i % 50]
                )
            } else {
                format!("step {i}: compiling crate number {i} with some ordinary text in it ok")
            };
            let out = m.mask(&line);
            if matches!(out, Cow::Owned(_)) {
                masked_lines += 1;
                assert!(!out.contains("s3cr3t"), "{out}");
            }
        }
        assert_eq!(masked_lines, 100);
    }
}
