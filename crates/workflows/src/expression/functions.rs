//! The built-in functions: which exist, how many arguments each takes, and what each
//! computes (`contains`, `startsWith`, `endsWith`, `format`, `join`, `toJSON`, `fromJSON`,
//! `case`, `hashFiles` through the [`Host`](super::Host), and the status functions).

use std::borrow::Cow;

use super::compare::{loose_equals, to_upper_special};
use super::convert::{is_primitive, to_display_string, to_json_pretty_within};
use super::memory::{MemoryExceeded, max_units, utf16_len};
use super::value::Value;

/// A function the language knows. Names are matched ignoring case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Contains,
    StartsWith,
    EndsWith,
    Format,
    Join,
    ToJson,
    FromJson,
    Case,
    HashFiles,
    Success,
    Always,
    Failure,
    Cancelled,
}

const ALL: [Function; 13] = [
    Function::Contains,
    Function::StartsWith,
    Function::EndsWith,
    Function::Format,
    Function::Join,
    Function::ToJson,
    Function::FromJson,
    Function::Case,
    Function::HashFiles,
    Function::Success,
    Function::Always,
    Function::Failure,
    Function::Cancelled,
];

/// The most arguments a variadic function takes.
const MAX_ARGUMENTS: usize = 255;

impl Function {
    pub fn lookup(name: &str) -> Option<Function> {
        ALL.into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// The name as GitHub's documentation spells it.
    pub fn name(self) -> &'static str {
        match self {
            Function::Contains => "contains",
            Function::StartsWith => "startsWith",
            Function::EndsWith => "endsWith",
            Function::Format => "format",
            Function::Join => "join",
            Function::ToJson => "toJSON",
            Function::FromJson => "fromJSON",
            Function::Case => "case",
            Function::HashFiles => "hashFiles",
            Function::Success => "success",
            Function::Always => "always",
            Function::Failure => "failure",
            Function::Cancelled => "cancelled",
        }
    }

    /// Available everywhere (the others only where [`Allowed::functions`](super::Allowed) lists them).
    pub fn is_core(self) -> bool {
        !self.is_status() && self != Function::HashFiles
    }

    pub fn is_status(self) -> bool {
        matches!(
            self,
            Function::Success | Function::Always | Function::Failure | Function::Cancelled
        )
    }

    /// (fewest, most) arguments. `status_args`: whether `success` and `failure` take job
    /// ids, as in a job-level `if:`.
    pub fn arity(self, status_args: bool) -> (usize, usize) {
        match self {
            Function::Success | Function::Failure if status_args => (0, MAX_ARGUMENTS),
            Function::Contains | Function::StartsWith | Function::EndsWith => (2, 2),
            Function::Format => (1, MAX_ARGUMENTS),
            Function::Join => (1, 2),
            Function::ToJson | Function::FromJson => (1, 1),
            Function::Case => (3, usize::MAX),
            Function::HashFiles => (1, MAX_ARGUMENTS),
            Function::Success | Function::Always | Function::Failure | Function::Cancelled => {
                (0, 0)
            }
        }
    }
}

/// `contains(search, item)`.
pub fn contains(search: &Value, item: &Value) -> bool {
    match search {
        Value::Array(items) => items.iter().any(|v| loose_equals(item, v)),
        Value::Object(_) => false,
        _ if is_primitive(item) => {
            let haystack = to_upper_special(&to_display_string(search));
            haystack.contains(&to_upper_special(&to_display_string(item)))
        }
        _ => false,
    }
}

/// `startsWith(s, prefix)`, ignoring case.
pub fn starts_with(s: &Value, prefix: &Value) -> bool {
    primitive_strings(s, prefix).is_some_and(|(s, p)| s.starts_with(&p))
}

/// `endsWith(s, suffix)`, ignoring case.
pub fn ends_with(s: &Value, suffix: &Value) -> bool {
    primitive_strings(s, suffix).is_some_and(|(s, p)| s.ends_with(&p))
}

fn primitive_strings(a: &Value, b: &Value) -> Option<(String, String)> {
    if is_primitive(a) && is_primitive(b) {
        Some((
            to_upper_special(&to_display_string(a)),
            to_upper_special(&to_display_string(b)),
        ))
    } else {
        None
    }
}

/// `join(x, separator)`: array elements as strings; a primitive `x` as its string; an
/// object as `""`. The separator is `,` unless a primitive is given. Fails, before
/// building it, when the result would count more than `max_bytes` (see [`super::memory`]).
pub fn join(
    x: &Value,
    separator: Option<&Value>,
    max_bytes: usize,
) -> Result<String, MemoryExceeded> {
    let separator = match separator {
        Some(s) if is_primitive(s) => to_display_string(s),
        _ => ",".to_string(),
    };
    let items = match x {
        Value::Array(items) => items,
        Value::Object(_) => return Ok(String::new()),
        _ => return Ok(to_display_string(x)),
    };
    let separators = utf16_len(&separator).saturating_mul(items.len().saturating_sub(1));
    let units = items.iter().fold(separators, |sum, v| {
        sum.saturating_add(utf16_len(&display_text(v)))
    });
    if units > max_units(max_bytes) {
        return Err(MemoryExceeded);
    }
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(&separator);
        }
        out.push_str(&display_text(item));
    }
    Ok(out)
}

/// A value as a string, borrowed when it is one.
fn display_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        _ => Cow::Owned(to_display_string(v)),
    }
}

/// `toJSON(x)`, or [`MemoryExceeded`] as soon as the text would count more than
/// `max_bytes`.
pub fn to_json(x: &Value, max_bytes: usize) -> Result<String, MemoryExceeded> {
    // A UTF-16 unit takes at most 3 bytes of UTF-8: text within this many bytes may
    // still fit; the caller counts the result exactly.
    let max_len = max_units(max_bytes).saturating_mul(3);
    to_json_pretty_within(x, max_len).ok_or(MemoryExceeded)
}

/// `fromJSON(s)`.
pub fn from_json(s: &Value) -> Result<Value, String> {
    let text = to_display_string(s);
    if text.trim().is_empty() {
        return Err("Error parsing fromJson: empty input".into());
    }
    serde_json::from_str::<serde_json::Value>(&text)
        .map(|json| Value::from_json(&json))
        .map_err(|e| format!("Error parsing fromJson: {e}"))
}

/// Why `format` rejected its format string, or stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    Invalid,
    MissingArgument,
    /// The result would count more than the memory bound allows.
    Memory,
}

impl FormatError {
    /// GitHub's message for a rejected format string (`Memory` has the evaluator's).
    pub fn message(&self, format: &str) -> String {
        match self {
            FormatError::Invalid => format!("The following format string is invalid: {format}"),
            FormatError::MissingArgument => format!(
                "The following format string references more arguments than were supplied: {format}"
            ),
            FormatError::Memory => super::memory::MEMORY_EXCEEDED.to_string(),
        }
    }
}

/// `format(fmt, args...)`: `{N}` is replaced by argument N as a string, `{{` and `}}`
/// are literal braces, `{N:spec}` ignores the specifier. Stops with
/// [`FormatError::Memory`] as soon as the result would count more than `max_bytes`.
pub fn format(fmt: &str, args: &[Value], max_bytes: usize) -> Result<String, FormatError> {
    let texts: Vec<Cow<str>> = args.iter().map(display_text).collect();
    let max_units = max_units(max_bytes);
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::with_capacity(fmt.len());
    let mut units = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let piece = match chars[i] {
            '{' if chars.get(i + 1) == Some(&'{') => {
                i += 2;
                Piece::Char('{')
            }
            '{' => {
                let (index, end) = read_placeholder(&chars, i + 1).ok_or(FormatError::Invalid)?;
                let text = texts.get(index).ok_or(FormatError::MissingArgument)?;
                i = end + 1;
                Piece::Text(text)
            }
            '}' if chars.get(i + 1) == Some(&'}') => {
                i += 2;
                Piece::Char('}')
            }
            '}' => return Err(FormatError::Invalid),
            c => {
                i += 1;
                Piece::Char(c)
            }
        };
        units = units.saturating_add(match piece {
            Piece::Char(c) => c.len_utf16(),
            Piece::Text(t) => utf16_len(t),
        });
        if units > max_units {
            return Err(FormatError::Memory);
        }
        match piece {
            Piece::Char(c) => out.push(c),
            Piece::Text(t) => out.push_str(t),
        }
    }
    Ok(out)
}

/// One piece of `format`'s output.
enum Piece<'a> {
    Char(char),
    Text(&'a str),
}

/// Reads `N}` or `N:spec}` starting at `start`; returns N and the index of the `}`.
fn read_placeholder(chars: &[char], start: usize) -> Option<(usize, usize)> {
    let mut i = start;
    while i < chars.len() && chars[i].is_ascii_digit() {
        i += 1;
    }
    if i == start {
        return None;
    }
    let digits: String = chars[start..i].iter().collect();
    let index: i32 = digits.parse().ok()?;
    match chars.get(i) {
        Some('}') => {}
        Some(':') => {
            i += 1;
            while i < chars.len() && chars[i] != '}' {
                i += 1;
            }
            if i >= chars.len() {
                return None;
            }
        }
        _ => return None,
    }
    Some((usize::try_from(index).ok()?, i))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn format_escapes_and_errors() {
        let args = [Value::string("abc")];
        let format = |f: &str, args: &[Value]| super::format(f, args, usize::MAX);
        assert_eq!(format("{{0}}", &args).unwrap(), "{0}");
        assert_eq!(format("}}{{}}", &args).unwrap(), "}{}");
        assert_eq!(format("{{{0}}}", &args).unwrap(), "{abc}");
        assert_eq!(format("{0", &args), Err(FormatError::Invalid));
        assert_eq!(format("{0}}", &args), Err(FormatError::Invalid));
        assert_eq!(format("}{0}", &args), Err(FormatError::Invalid));
        assert_eq!(format("{1}", &args), Err(FormatError::MissingArgument));
        assert_eq!(format("{2147483648}", &args), Err(FormatError::Invalid));
    }

    #[test]
    fn outputs_stop_at_their_bound_before_they_are_built() {
        let args = [Value::string("abcd")];
        // "abcd" × 3 = 12 units: 26 + 24 bytes.
        assert_eq!(format("{0}{0}{0}", &args, 50).unwrap(), "abcdabcdabcd");
        assert_eq!(format("{0}{0}{0}", &args, 49), Err(FormatError::Memory));
        let items = Value::array(vec![Value::string("ab"), Value::from(1.0)]);
        assert_eq!(join(&items, None, 26 + 8).unwrap(), "ab,1");
        assert_eq!(join(&items, None, 26 + 7), Err(MemoryExceeded));
        // A hundred thousand separators of a million characters are never built.
        let many = Value::array(vec![Value::Null; 100_000]);
        let separator = Value::string("x".repeat(1_000_000));
        assert_eq!(
            join(
                &many,
                Some(&separator),
                super::super::memory::MAX_MEMORY_BYTES
            ),
            Err(MemoryExceeded)
        );
        assert_eq!(
            to_json(&items, 26 + 2 * 16).unwrap(),
            "[\n  \"ab\",\n  1\n]"
        );
        assert_eq!(to_json(&items, 26 + 2 * 4), Err(MemoryExceeded));
    }

    #[test]
    fn names_ignore_case() {
        assert_eq!(Function::lookup("TOJSON"), Some(Function::ToJson));
        assert_eq!(Function::lookup("nope"), None);
    }
}
