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
//! Masking scans each line once: for each byte, only the values starting with that byte are
//! compared, longest first; overlapping and touching matches merge into one `***`.

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
    /// For each first byte, the patterns starting with it, longest first (empty until the
    /// first value is added).
    by_first_byte: Vec<Vec<usize>>,
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
        if self.patterns.is_empty() || self.by_first_byte.len() != 256 {
            return Cow::Borrowed(text);
        }
        let bytes = text.as_bytes();
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for (i, byte) in bytes.iter().enumerate() {
            let candidates = &self.by_first_byte[usize::from(*byte)];
            if candidates.is_empty() {
                continue;
            }
            let rest = &bytes[i..];
            let Some(len) = candidates
                .iter()
                .map(|&p| self.patterns[p].as_bytes())
                .find(|pattern| rest.starts_with(pattern))
                .map(<[u8]>::len)
            else {
                continue;
            };
            let end = i + len;
            match ranges.last_mut() {
                Some(last) if i <= last.1 => last.1 = last.1.max(end),
                _ => ranges.push((i, end)),
            }
        }
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

    fn add_pattern(&mut self, pattern: String) {
        let Some(&first) = pattern.as_bytes().first() else {
            return;
        };
        if self.known.contains(&pattern) {
            return;
        }
        if self.by_first_byte.len() != 256 {
            self.by_first_byte = vec![Vec::new(); 256];
        }
        let index = self.patterns.len();
        self.known.insert(pattern.clone());
        self.patterns.push(pattern);
        let bucket = &mut self.by_first_byte[usize::from(first)];
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
                out.push(char::from(BASE64_DIGITS[((n >> (18 - 6 * k)) & 63) as usize]));
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
