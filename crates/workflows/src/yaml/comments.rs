//! GitHub's reader (YamlDotNet) takes a `#` right after a token (`"x"#note`, `[one]#note`)
//! as a comment; serde-saphyr's scanner requires whitespace first and stops with
//! `CommentNotSeparated`. [`separate_comments`] finds every such `#` in one scan and puts
//! a blank before each, so the text is parsed once more, not once per comment.
//!
//! The scan runs the same scanner over an input that, where the scanner asks for the
//! whitespace before a `#` and finds none, notes the place and answers as if a blank were
//! there. That is what the scanner would do with the blank inserted (the text before it
//! is unchanged and the comment runs to the end of its line), so the places found are
//! exactly those that inserting a blank at the first error, again and again, would find.

use std::cell::RefCell;

use serde_saphyr::granit_parser::input::{SkipTabs, WhitespaceResult};
use serde_saphyr::granit_parser::{BorrowedInput, ErrorKind, Input, Parser, StrInput};

/// `text` with a blank before every `#` that the scanner would reject as not separated
/// from the token before it; `None` when there is none.
pub(super) fn separate_comments(text: &str) -> Option<String> {
    let found = RefCell::new(Vec::new());
    let input = SeparatingInput {
        inner: StrInput::new(text),
        found: &found,
    };
    // The scan stops at the first other error, as a parse of the repaired text will.
    for event in Parser::new(input) {
        if event.is_err() {
            break;
        }
    }
    let found = found.into_inner();
    if found.is_empty() {
        return None;
    }
    let mut fixed = String::with_capacity(text.len() + found.len());
    let mut from = 0;
    for at in found {
        if at < from || !text.get(at..).is_some_and(|rest| rest.starts_with('#')) {
            continue;
        }
        fixed.push_str(&text[from..at]);
        fixed.push(' ');
        from = at;
    }
    fixed.push_str(&text[from..]);
    Some(fixed)
}

/// A [`StrInput`] that separates comments: see the module documentation.
struct SeparatingInput<'a, 'f> {
    inner: StrInput<'a>,
    /// Byte offsets of the `#`s that lacked whitespace before them.
    found: &'f RefCell<Vec<usize>>,
}

impl SeparatingInput<'_, '_> {
    fn note(&self) {
        if let Some(at) = self.inner.byte_offset() {
            self.found.borrow_mut().push(at);
        }
    }
}

impl Input for SeparatingInput<'_, '_> {
    fn lookahead(&mut self, count: usize) {
        self.inner.lookahead(count);
    }

    fn buflen(&self) -> usize {
        self.inner.buflen()
    }

    fn bufmaxlen(&self) -> usize {
        self.inner.bufmaxlen()
    }

    fn raw_read_ch(&mut self) -> char {
        self.inner.raw_read_ch()
    }

    fn raw_read_non_breakz_ch(&mut self) -> Option<char> {
        self.inner.raw_read_non_breakz_ch()
    }

    fn skip(&mut self) {
        self.inner.skip();
    }

    fn skip_n(&mut self, count: usize) {
        self.inner.skip_n(count);
    }

    fn peek(&self) -> char {
        self.inner.peek()
    }

    fn peek_nth(&self, n: usize) -> char {
        self.inner.peek_nth(n)
    }

    fn byte_offset(&self) -> Option<usize> {
        self.inner.byte_offset()
    }

    fn slice_bytes(&self, start: usize, end: usize) -> Option<&str> {
        self.inner.slice_bytes(start, end)
    }

    /// Used by the scanner when it does not keep comments: a `#` with nothing before it
    /// is skipped as a comment, as if a blank preceded it.
    fn skip_ws_to_eol(
        &mut self,
        skip_tabs: SkipTabs,
    ) -> (usize, Result<WhitespaceResult, ErrorKind>) {
        match self.inner.skip_ws_to_eol(skip_tabs) {
            (consumed, Err(ErrorKind::CommentNotSeparated)) => {
                self.note();
                let comment = self.inner.skip_while_non_breakz();
                (consumed + comment, Ok(WhitespaceResult::new(false, true)))
            }
            other => other,
        }
    }

    /// Used by the scanner when it keeps comments: it rejects a `#` after no whitespace,
    /// so a `#` right here is reported as preceded by a blank.
    fn skip_ws_to_eol_blanks(&mut self, skip_tabs: SkipTabs) -> (usize, WhitespaceResult) {
        let (consumed, whitespace) = self.inner.skip_ws_to_eol_blanks(skip_tabs);
        if consumed == 0 && self.inner.look_ch() == '#' {
            self.note();
            return (0, WhitespaceResult::new(whitespace.found_tabs(), true));
        }
        (consumed, whitespace)
    }
}

impl<'a> BorrowedInput<'a> for SeparatingInput<'a, '_> {
    fn slice_borrowed(&self, start: usize, end: usize) -> Option<&'a str> {
        self.inner.slice_borrowed(start, end)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::parse;
    use super::separate_comments;

    #[test]
    fn every_unseparated_comment_is_found_in_one_scan() {
        let text = "a: \"x\"#one\nb: [1]#two\nc: 'q#r'\nd: p#q\ne: {k: v}#three\n";
        assert_eq!(
            separate_comments(text).unwrap(),
            "a: \"x\" #one\nb: [1] #two\nc: 'q#r'\nd: p#q\ne: {k: v} #three\n"
        );
        assert_eq!(separate_comments("a: 1 # fine\n"), None);
    }

    #[test]
    fn thousands_of_unseparated_comments_parse_in_one_repair() {
        // Repaired one comment per parse, 2,000 of these lines took 12 s.
        let lines = 10_000;
        let text: String = (0..lines).map(|i| format!("k{i}: \"x{i}\"#c\n")).collect();
        let root = parse(&text, "t.yml").unwrap();
        let entries = root.as_mapping().unwrap();
        assert_eq!(entries.len(), lines);
        assert_eq!(entries[lines - 1].1.as_str(), Some("x9999"));
        assert_eq!(entries[lines - 1].1.location.line, 10_000);
    }
}
