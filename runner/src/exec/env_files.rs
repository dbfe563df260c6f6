//! The files a step writes to talk back to the runner: `GITHUB_ENV`, `GITHUB_OUTPUT` and
//! `GITHUB_STATE` (name/value pairs) and `GITHUB_PATH` (directories).
//!
//! Follows the GitHub runner's `FileCommandManager`:
//! - lines end with `\n` or `\r\n`; empty lines are skipped (a line of spaces is not empty
//!   and is refused, as GitHub does);
//! - `NAME=VALUE` when the first `=` comes before any `<<`: the value is everything after
//!   that `=` (it may hold more `=`), nothing is trimmed;
//! - `NAME<<DELIMITER` when `<<` comes first (so `a<<b=c` has delimiter `b=c`): the value is
//!   the text of the following lines up to the first line exactly equal to the delimiter,
//!   without the newline before the delimiter line; the lines keep the file's own line
//!   endings (GitHub copies the text as written), so an LF file gives values joined with `\n`;
//! - a line that is neither, an empty name or delimiter, or a heredoc with no closing
//!   delimiter is an error, like GitHub's, naming the line.

/// Why a `GITHUB_ENV`, `GITHUB_OUTPUT` or `GITHUB_STATE` file could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvFileError {
    /// A line that is neither `NAME=VALUE` nor `NAME<<DELIMITER`.
    #[error(
        "Invalid format '{line}' (line {line_number}): write `NAME=VALUE` or `NAME<<DELIMITER`, then the value lines, then the delimiter"
    )]
    InvalidFormat { line_number: usize, line: String },
    /// `=VALUE` or `<<DELIMITER` with nothing before it.
    #[error("Invalid format '{line}' (line {line_number}). Name must not be empty")]
    EmptyName { line_number: usize, line: String },
    /// `NAME<<` with nothing after it.
    #[error("Invalid format '{line}' (line {line_number}). Delimiter must not be empty")]
    EmptyDelimiter { line_number: usize, line: String },
    /// A heredoc whose delimiter line never comes.
    #[error(
        "Invalid value for '{name}'. Matching delimiter not found '{delimiter}': end the value with a line holding only the delimiter"
    )]
    MissingDelimiter { name: String, delimiter: String },
}

/// A line of the file and where it starts and ends (the end excludes the newline).
struct Line<'a> {
    text: &'a str,
    end: usize,
}

/// Splits `content` into lines ending with `\n` or `\r\n`; a last line without a newline
/// counts, an empty tail after the last newline does not.
fn lines(content: &str) -> impl Iterator<Item = Line<'_>> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= content.len() {
            return None;
        }
        let start = pos;
        let (end, next) = match content[start..].find('\n') {
            Some(lf) => {
                let lf = start + lf;
                let end = if lf > start && content.as_bytes()[lf - 1] == b'\r' {
                    lf - 1
                } else {
                    lf
                };
                (end, lf + 1)
            }
            None => (content.len(), content.len()),
        };
        pos = next;
        Some(Line {
            text: &content[start..end],
            end,
        })
    })
}

/// GITHUB_ENV / GITHUB_OUTPUT / GITHUB_STATE content: `name=value` lines and `name<<DELIMITER`
/// heredocs. Later duplicates are returned in order (the caller applies last-wins).
pub fn parse_key_values(content: &str) -> Result<Vec<(String, String)>, EnvFileError> {
    let mut pairs = Vec::new();
    let mut lines = lines(content).enumerate();
    while let Some((index, line)) = lines.next() {
        let text = line.text;
        if text.is_empty() {
            continue;
        }
        let line_number = index + 1;
        let equals = text.find('=');
        let heredoc = text.find("<<");
        let is_heredoc = match (equals, heredoc) {
            (Some(e), Some(h)) => h < e,
            (None, Some(_)) => true,
            (Some(_), None) => false,
            (None, None) => {
                return Err(EnvFileError::InvalidFormat {
                    line_number,
                    line: text.to_string(),
                });
            }
        };
        if !is_heredoc {
            let (name, value) = text.split_once('=').unwrap_or((text, ""));
            if name.is_empty() {
                return Err(EnvFileError::EmptyName {
                    line_number,
                    line: text.to_string(),
                });
            }
            pairs.push((name.to_string(), value.to_string()));
            continue;
        }
        let (name, delimiter) = text.split_once("<<").unwrap_or((text, ""));
        if name.is_empty() {
            return Err(EnvFileError::EmptyName {
                line_number,
                line: text.to_string(),
            });
        }
        if delimiter.is_empty() {
            return Err(EnvFileError::EmptyDelimiter {
                line_number,
                line: text.to_string(),
            });
        }
        let value_start = line_end_with_newline(content, &line);
        let mut value_end = value_start;
        let mut closed = false;
        for (_, value_line) in lines.by_ref() {
            if value_line.text == delimiter {
                closed = true;
                break;
            }
            value_end = value_line.end;
        }
        if !closed {
            return Err(EnvFileError::MissingDelimiter {
                name: name.to_string(),
                delimiter: delimiter.to_string(),
            });
        }
        pairs.push((name.to_string(), content[value_start..value_end].to_string()));
    }
    Ok(pairs)
}

/// Where the line after `line` starts.
fn line_end_with_newline(content: &str, line: &Line<'_>) -> usize {
    let rest = &content[line.end..];
    if rest.starts_with("\r\n") {
        line.end + 2
    } else if rest.starts_with('\n') {
        line.end + 1
    } else {
        content.len()
    }
}

/// GITHUB_PATH: one directory per non-empty line (trimmed), in file order.
pub fn parse_path_file(content: &str) -> Vec<String> {
    content
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}
