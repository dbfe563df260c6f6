//! Problems found in a workflow, each pinned to `file:line:col` with a remedy in the text.
//!
//! The text form ([`Diagnostic`]'s `Display`) is one line per problem: a message that
//! quotes a multi-line expression (an `if: >` or `if: |` block) has its line breaks
//! folded into spaces ([`one_line`]). The fields keep the exact text, for `--json`.

use std::borrow::Cow;
use std::fmt;

/// A 1-based line and column in a source file (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Location {
    pub line: u32,
    pub column: u32,
}

impl Location {
    pub const fn new(line: u32, column: u32) -> Self {
        Location { line, column }
    }
}

/// One problem in one file. `location` is `None` for whole-file problems
/// (empty file, too many jobs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub location: Option<Location>,
    /// GitHub's wording of the problem (what conformance compares).
    pub message: String,
    /// How to fix it, one sentence or two; shown after the message, never in
    /// [`Diagnostic::github_form`].
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(
        file: impl Into<String>,
        location: Option<Location>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            file: file.into(),
            location,
            message: message.into(),
            help: None,
        }
    }

    /// The same problem with a remedy attached.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        let help = help.into();
        self.help = (!help.trim().is_empty()).then(|| single_line(&help));
        self
    }

    /// The message followed by the help, on one line: `Unexpected value 'stesp'. Did
    /// you mean 'steps'?` (a period is added when the message lacks final punctuation).
    pub fn message_with_help(&self) -> String {
        match &self.help {
            None => self.message.clone(),
            Some(help) => {
                let message = self.message.trim_end();
                let separator = if message.ends_with(['.', '?', '!', ':']) {
                    " "
                } else {
                    ". "
                };
                format!("{message}{separator}{help}")
            }
        }
    }

    /// The form GitHub's parser reports: `file (Line: L, Col: C): message`.
    pub fn github_form(&self) -> String {
        match self.location {
            Some(l) => format!(
                "{} (Line: {}, Col: {}): {}",
                self.file, l.line, l.column, self.message
            ),
            None => format!("{}: {}", self.file, self.message),
        }
    }
}

/// Joins the lines of a help text so one problem stays on one line.
fn single_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` on one line: each run of whitespace that holds a line break becomes one space
/// (the indentation of a quoted multi-line expression goes with it); other whitespace
/// stays as it is, so quoted strings keep their spacing.
pub fn one_line(text: &str) -> Cow<'_, str> {
    if !text.contains(['\n', '\r']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let mut run_breaks = false;
    for c in text.chars() {
        if c.is_whitespace() {
            run.push(c);
            run_breaks |= c == '\n' || c == '\r';
            continue;
        }
        if run_breaks {
            out.push(' ');
        } else {
            out.push_str(&run);
        }
        run.clear();
        run_breaks = false;
        out.push(c);
    }
    if !run_breaks {
        out.push_str(&run);
    }
    Cow::Owned(out)
}

/// `file:line:col: message help`, the form compilers and editors understand, on one line.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.message_with_help();
        let text = one_line(&text);
        match self.location {
            Some(l) => write!(f, "{}:{}:{}: {}", self.file, l.line, l.column, text),
            None => write!(f, "{}: {}", self.file, text),
        }
    }
}

/// Every problem found in one load, in document order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_appends_the_help_on_the_same_line() {
        let d = Diagnostic::new(
            "a.yml",
            Some(Location::new(5, 5)),
            "Unexpected value 'stesp'",
        )
        .with_help("Did you mean 'steps'?");
        assert_eq!(
            d.to_string(),
            "a.yml:5:5: Unexpected value 'stesp'. Did you mean 'steps'?"
        );
        assert_eq!(
            d.github_form(),
            "a.yml (Line: 5, Col: 5): Unexpected value 'stesp'"
        );
        let d = Diagnostic::new("a.yml", None, "Ends with a period.").with_help("Fix\nit.");
        assert_eq!(d.to_string(), "a.yml: Ends with a period. Fix it.");
        let d = Diagnostic::new("a.yml", None, "No help");
        assert_eq!(d.to_string(), "a.yml: No help");
    }

    #[test]
    fn a_multi_line_expression_prints_on_one_line() {
        let message = "Unrecognized function: 'foo'. Located at position 40 within expression: github.event_name == 'push' &&\n  (github.ref == 'a  b' ||\r\n   foo(1))\n";
        let d = Diagnostic::new("a.yml", Some(Location::new(5, 9)), message);
        assert_eq!(
            d.to_string(),
            "a.yml:5:9: Unrecognized function: 'foo'. Located at position 40 within expression: github.event_name == 'push' && (github.ref == 'a  b' || foo(1))"
        );
        assert_eq!(d.message, message, "the fields keep the exact text");
        assert!(matches!(
            one_line("no  breaks "),
            Cow::Borrowed("no  breaks ")
        ));
    }
}
