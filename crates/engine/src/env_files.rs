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
        pairs.push((
            name.to_string(),
            content[value_start..value_end].to_string(),
        ));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(content: &str) -> Vec<(String, String)> {
        parse_key_values(content).unwrap()
    }

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn single_line_values() {
        assert_eq!(pairs("KEY=value\n"), vec![kv("KEY", "value")]);
        assert_eq!(pairs("KEY=value"), vec![kv("KEY", "value")]);
        assert_eq!(pairs("KEY=\n"), vec![kv("KEY", "")]);
        assert_eq!(
            pairs("KEY=value=anothervalue\n"),
            vec![kv("KEY", "value=anothervalue")]
        );
    }

    #[test]
    fn nothing_is_trimmed() {
        assert_eq!(pairs(" A = b \n"), vec![kv(" A ", " b ")]);
    }

    #[test]
    fn empty_content_and_empty_lines() {
        assert_eq!(pairs(""), vec![]);
        assert_eq!(pairs("\n\n\r\n"), vec![]);
        assert_eq!(pairs("\nA=1\n\nB=2\n\n"), vec![kv("A", "1"), kv("B", "2")]);
    }

    #[test]
    fn duplicates_kept_in_order() {
        assert_eq!(
            pairs("A=1\nB=2\nA=3\n"),
            vec![kv("A", "1"), kv("B", "2"), kv("A", "3")]
        );
    }

    #[test]
    fn crlf_lines() {
        assert_eq!(pairs("A=1\r\nB=2\r\n"), vec![kv("A", "1"), kv("B", "2")]);
        assert_eq!(pairs("A<<EOF\r\nx\r\nEOF\r\n"), vec![kv("A", "x")]);
        // A lone CR is data.
        assert_eq!(pairs("A=1\rB=2\n"), vec![kv("A", "1\rB=2")]);
    }

    #[test]
    fn heredoc_values() {
        assert_eq!(
            pairs("KEY2<<EOF\nvalue2\nEOF\n"),
            vec![kv("KEY2", "value2")]
        );
        assert_eq!(
            pairs("K<<EOF\nline 1\nline 2\nEOF\nNEXT=1\n"),
            vec![kv("K", "line 1\nline 2"), kv("NEXT", "1")]
        );
        // The delimiter line may be the last line without a newline.
        assert_eq!(pairs("K<<EOF\nv\nEOF"), vec![kv("K", "v")]);
        // Empty value, and a value of one empty line.
        assert_eq!(pairs("K<<EOF\nEOF\n"), vec![kv("K", "")]);
        assert_eq!(pairs("K<<EOF\n\nEOF\n"), vec![kv("K", "")]);
        assert_eq!(pairs("K<<EOF\n\n\nEOF\n"), vec![kv("K", "\n")]);
    }

    #[test]
    fn heredoc_with_uuid_delimiter() {
        let d = "ghadelimiter_b8273c6d-d535-419a-a010-b0aaac240e36";
        assert_eq!(
            pairs(&format!("KEY3<<{d}\nvalue3\n{d}\n")),
            vec![kv("KEY3", "value3")]
        );
    }

    #[test]
    fn heredoc_body_is_not_parsed() {
        // act's environment-files-parser-bug workflow.
        assert_eq!(
            pairs("test<<World\nx=Thats really Weird\nWorld\n"),
            vec![kv("test", "x=Thats really Weird")]
        );
        assert_eq!(pairs("A<<EOF\nB<<EOF\nEOF\n"), vec![kv("A", "B<<EOF")]);
    }

    #[test]
    fn delimiter_must_match_a_whole_line() {
        assert_eq!(
            pairs("K<<EOF\nnot EOF\nEOF \nEOFx\n EOF\nEOF\n"),
            vec![kv("K", "not EOF\nEOF \nEOFx\n EOF")]
        );
        // Case matters.
        assert_eq!(pairs("K<<EOF\neof\nEOF\n"), vec![kv("K", "eof")]);
    }

    #[test]
    fn heredoc_keeps_crlf_inside_the_value() {
        assert_eq!(pairs("K<<E\r\na\r\nb\r\nE\r\n"), vec![kv("K", "a\r\nb")]);
    }

    #[test]
    fn first_of_equals_and_heredoc_decides() {
        assert_eq!(pairs("a=b<<c\n"), vec![kv("a", "b<<c")]);
        assert_eq!(pairs("a<<b=c\nv\nb=c\n"), vec![kv("a", "v")]);
        // Only the first `<<` splits.
        assert_eq!(pairs("a<<b<<c\nv\nb<<c\n"), vec![kv("a", "v")]);
    }

    #[test]
    fn invalid_lines() {
        assert_eq!(
            parse_key_values("A=1\njust text\n"),
            Err(EnvFileError::InvalidFormat {
                line_number: 2,
                line: "just text".into()
            })
        );
        // Whitespace is not an empty line.
        assert!(matches!(
            parse_key_values("  \n"),
            Err(EnvFileError::InvalidFormat { line_number: 1, .. })
        ));
        assert_eq!(
            parse_key_values("=value\n"),
            Err(EnvFileError::EmptyName {
                line_number: 1,
                line: "=value".into()
            })
        );
        assert!(matches!(
            parse_key_values("<<EOF\nx\nEOF\n"),
            Err(EnvFileError::EmptyName { .. })
        ));
        assert_eq!(
            parse_key_values("\nK<<\n"),
            Err(EnvFileError::EmptyDelimiter {
                line_number: 2,
                line: "K<<".into()
            })
        );
    }

    #[test]
    fn missing_delimiter() {
        let err = parse_key_values("K<<EOF\nv\n").unwrap_err();
        assert_eq!(
            err,
            EnvFileError::MissingDelimiter {
                name: "K".into(),
                delimiter: "EOF".into()
            }
        );
        assert!(
            err.to_string()
                .contains("Matching delimiter not found 'EOF'")
        );
        assert!(parse_key_values("K<<EOF").is_err());
        assert!(parse_key_values("K<<EOF\nv\nEO").is_err());
    }

    #[test]
    fn messages_name_the_line() {
        let err = parse_key_values("oops\n").unwrap_err().to_string();
        assert!(err.starts_with("Invalid format 'oops'"), "{err}");
        assert!(err.contains("NAME<<DELIMITER"), "{err}");
    }

    #[test]
    fn unicode_values() {
        assert_eq!(
            pairs("GRÜSSE=héllo → 世界\n"),
            vec![kv("GRÜSSE", "héllo → 世界")]
        );
        assert_eq!(pairs("K<<ÉOF\n世\nÉOF\n"), vec![kv("K", "世")]);
    }

    #[test]
    fn path_file() {
        assert_eq!(
            parse_path_file("/home/u/someFolder\n\n  /opt/bin  \r\n/x"),
            vec!["/home/u/someFolder", "/opt/bin", "/x"]
        );
        assert_eq!(parse_path_file(""), Vec::<String>::new());
        assert_eq!(parse_path_file("\n \n"), Vec::<String>::new());
        // Duplicates are the caller's business.
        assert_eq!(parse_path_file("/a\n/a\n"), vec!["/a", "/a"]);
    }
}
