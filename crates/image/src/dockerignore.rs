//! `.dockerignore` with Docker's own pattern rules (moby `patternmatcher` and its
//! `ignorefile` reader), written from their documented behaviour:
//!
//! - one pattern a line; a line whose first character is `#` is a comment; surrounding
//!   whitespace is trimmed and blank lines are skipped; a UTF-8 BOM on line 1 is dropped;
//! - `!` re-includes; `! pattern` (space after `!`) is the same as `!pattern`;
//! - patterns are cleaned like Go's `filepath.Clean` (`./a` → `a`, `a//b` → `a/b`, `a/` → `a`,
//!   `a/../b` → `b`) and a leading `/` is dropped: every pattern is relative to the context root;
//! - a pattern matches the whole relative path: `*` is any run of characters but `/`, `?` one
//!   character but `/`, `[...]` a class (`^` negates), `\` escapes; `**` is any number of
//!   directories (`**/x` matches `x` at any depth, a trailing `**` matches everything below);
//! - a pattern also matches everything below a directory it matches (`temp` excludes
//!   `temp/a/b`), and `*.md` matches only `*.md` at the top (use `**/*.md` for any depth);
//! - the last matching line wins, so `*.md` then `!README.md` keeps `README.md`.
//!
//! The walker (see [`super::context`]) does not descend into an excluded directory unless a
//! `!` pattern could match something inside it ([`DockerIgnore::may_reinclude_below`]); Docker's
//! classic builder only looks at the `!` pattern's literal text here, this also sees through
//! wildcards, which can only keep more files Docker's rules would keep anyway.

use std::path::Path;

use super::context::ContextError;

/// One parsed `.dockerignore`: the patterns in file order.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    /// The cleaned text, without `!`
    text: String,
    exclusion: bool,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(char),
    /// `*`: any run without `/`
    Star,
    /// `?`: one character but `/`
    One,
    /// `[...]`
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**/` or an inner `**`: zero or more whole directories (`(.*/)?`)
    AnyDirs,
    /// `**` at the end: anything at all
    AnyRest,
}

impl DockerIgnore {
    /// Parses the text of a `.dockerignore`. A lone `!` or an unclosed `[` is an error.
    pub fn parse(text: &str) -> Result<Self, ContextError> {
        let mut patterns = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let raw = if index == 0 {
                raw.strip_prefix('\u{feff}').unwrap_or(raw)
            } else {
                raw
            };
            if raw.starts_with('#') {
                continue;
            }
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            let (exclusion, body) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            if body.is_empty() {
                return Err(ContextError::Dockerignore {
                    line: index + 1,
                    message: "`!` alone is not a pattern; write `!path` to re-include path"
                        .to_string(),
                });
            }
            patterns.push(Pattern::new(body, exclusion).map_err(|message| {
                ContextError::Dockerignore {
                    line: index + 1,
                    message,
                }
            })?);
        }
        Ok(Self { patterns })
    }

    /// Adds `!path` at the end: `path` is kept whatever the file says (the classic builder
    /// does this for the Dockerfile and `.dockerignore` itself).
    pub fn keep(&mut self, path: &str) {
        if let Ok(pattern) = Pattern::new(path, true) {
            self.patterns.push(pattern);
        }
    }

    /// Whether the path (relative to the context root) is left out. `is_dir` does not change
    /// the answer (Docker has no directory-only patterns) and is there for callers' clarity.
    pub fn is_excluded(&self, relative: &Path, is_dir: bool) -> bool {
        let _ = is_dir;
        let text = relative.to_string_lossy();
        let text = text.trim_start_matches("./").trim_matches('/');
        if text.is_empty() || text == "." {
            return false;
        }
        self.is_excluded_str(text)
    }

    fn is_excluded_str(&self, path: &str) -> bool {
        let chars: Vec<char> = path.chars().collect();
        // The parents of `path`, as prefixes ending before each `/`.
        let parents: Vec<usize> = chars
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == '/')
            .map(|(i, _)| i)
            .collect();
        let mut excluded = false;
        for pattern in &self.patterns {
            // Like moby: an exclude pattern can only change a kept path and a `!` pattern only
            // an excluded one.
            if pattern.exclusion != excluded {
                continue;
            }
            let matched = matches(&pattern.tokens, &chars)
                || parents
                    .iter()
                    .any(|&end| matches(&pattern.tokens, &chars[..end]));
            if matched {
                excluded = !pattern.exclusion;
            }
        }
        excluded
    }

    /// Whether any `!` pattern could match a path strictly below `dir` (so an excluded
    /// directory must still be walked).
    pub fn may_reinclude_below(&self, dir: &str) -> bool {
        let segments: Vec<Vec<char>> = dir
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().collect())
            .collect();
        self.patterns
            .iter()
            .filter(|p| p.exclusion)
            .any(|p| prefix_may_match(&p.tokens, &segments))
    }

    /// Whether there are any patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The cleaned patterns, `!` kept, in order (for diagnostics).
    pub fn patterns(&self) -> impl Iterator<Item = String> + '_ {
        self.patterns.iter().map(|p| {
            if p.exclusion {
                format!("!{}", p.text)
            } else {
                p.text.clone()
            }
        })
    }
}

impl Pattern {
    fn new(body: &str, exclusion: bool) -> Result<Self, String> {
        let mut text = clean(body);
        if text.len() > 1 && text.starts_with('/') {
            text.remove(0);
        }
        let tokens = compile(&text)?;
        Ok(Self {
            text,
            exclusion,
            tokens,
        })
    }
}

/// Go's `filepath.Clean` for `/`-separated paths.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

fn compile(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                tokens.push(if i >= chars.len() {
                    Token::AnyRest
                } else {
                    Token::AnyDirs
                });
                continue;
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::One),
            '\\' if i + 1 < chars.len() => {
                i += 1;
                tokens.push(Token::Literal(chars[i]));
            }
            '[' => {
                let (token, next) = class(&chars, i + 1)
                    .ok_or_else(|| format!("`{text}`: `[` without a closing `]`"))?;
                tokens.push(token);
                i = next;
                continue;
            }
            c => tokens.push(Token::Literal(c)),
        }
        i += 1;
    }
    Ok(tokens)
}

/// Parses a class starting after `[`; returns it and the index after `]`.
fn class(chars: &[char], mut i: usize) -> Option<(Token, usize)> {
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let mut c = *chars.get(i)?;
        if c == ']' && !first {
            return Some((Token::Class { negated, ranges }, i + 1));
        }
        first = false;
        if c == '\\' {
            i += 1;
            c = *chars.get(i)?;
        }
        let mut high = c;
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|n| *n != ']') {
            i += 2;
            high = *chars.get(i)?;
            if high == '\\' {
                i += 1;
                high = *chars.get(i)?;
            }
        }
        ranges.push((c, high));
        i += 1;
    }
}

fn class_matches(negated: bool, ranges: &[(char, char)], c: char) -> bool {
    c != '/' && (ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != negated)
}

/// Whether the tokens match all of `path`.
fn matches(tokens: &[Token], path: &[char]) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return path.is_empty();
    };
    match first {
        Token::Literal(c) => path.first() == Some(c) && matches(rest, &path[1..]),
        Token::One => path.first().is_some_and(|c| *c != '/') && matches(rest, &path[1..]),
        Token::Class { negated, ranges } => {
            path.first()
                .is_some_and(|c| class_matches(*negated, ranges, *c))
                && matches(rest, &path[1..])
        }
        Token::Star => {
            let run = path.iter().take_while(|c| **c != '/').count();
            (0..=run).any(|n| matches(rest, &path[n..]))
        }
        Token::AnyRest => true,
        Token::AnyDirs => {
            // zero directories, or any prefix ending just after a `/`
            matches(rest, path)
                || path
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c == '/')
                    .any(|(i, _)| matches(rest, &path[i + 1..]))
        }
    }
}

/// Whether the tokens could match some path that starts with all of `segments` and goes on
/// below them.
fn prefix_may_match(tokens: &[Token], segments: &[Vec<char>]) -> bool {
    let Some((segment, more)) = segments.split_first() else {
        // every directory matched; the pattern must still want something below
        return !tokens.is_empty();
    };
    // Try every way the tokens can consume `segment` followed by `/`.
    let mut wanted = segment.clone();
    wanted.push('/');
    consume(tokens, &wanted, &mut |rest| prefix_may_match(rest, more))
}

/// Calls `then` with each remainder of `tokens` left after matching exactly `text`;
/// `AnyDirs`/`AnyRest` reached anywhere count as "could match".
fn consume(tokens: &[Token], text: &[char], then: &mut dyn FnMut(&[Token]) -> bool) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return text.is_empty() && then(tokens);
    };
    if text.is_empty() {
        return then(tokens);
    }
    match first {
        Token::AnyDirs | Token::AnyRest => true,
        Token::Literal(c) => text[0] == *c && consume(rest, &text[1..], then),
        Token::One => text[0] != '/' && consume(rest, &text[1..], then),
        Token::Class { negated, ranges } => {
            class_matches(*negated, ranges, text[0]) && consume(rest, &text[1..], then)
        }
        Token::Star => {
            let run = text.iter().take_while(|c| **c != '/').count();
            (0..=run).any(|n| consume(rest, &text[n..], then))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excluded(rules: &str, path: &str) -> bool {
        DockerIgnore::parse(rules)
            .unwrap()
            .is_excluded(Path::new(path), false)
    }

    #[test]
    fn clean_follows_go() {
        assert_eq!(clean("./a//b/"), "a/b");
        assert_eq!(clean("a/../b"), "b");
        assert_eq!(clean("/a/b"), "/a/b");
        assert_eq!(clean("../a"), "../a");
        assert_eq!(clean("./"), ".");
    }

    #[test]
    fn docker_docs_examples() {
        // https://docs.docker.com/build/concepts/context/#dockerignore-files
        assert!(excluded("*/temp*", "somedir/temporary.txt"));
        assert!(excluded("*/temp*", "somedir/temp"));
        assert!(!excluded("*/temp*", "temp.txt"));
        assert!(!excluded("*/temp*", "a/b/temp.txt"));
        assert!(excluded("*/*/temp*", "somedir/subdir/temporary.txt"));
        assert!(!excluded("*/*/temp*", "somedir/temporary.txt"));
        assert!(excluded("temp?", "tempa"));
        assert!(excluded("temp?", "temp1"));
        assert!(!excluded("temp?", "temp"));
        assert!(!excluded("temp?", "temp12"));
        assert!(!excluded("temp?", "a/tempa"));
        assert!(excluded("**/*.go", "main.go"));
        assert!(excluded("**/*.go", "cmd/x/main.go"));
        assert!(!excluded("**/*.go", "main.gox"));
        assert!(excluded("*.md\n!README.md", "CHANGES.md"));
        assert!(!excluded("*.md\n!README.md", "README.md"));
        assert!(!excluded("*.md\n!README.md", "docs/x.md"));
        // order matters: the last matching line wins
        let rules = "*.md\n!README*.md\nREADME-secret.md";
        assert!(!excluded(rules, "README.md"));
        assert!(excluded(rules, "README-secret.md"));
        let rules = "*.md\nREADME-secret.md\n!README*.md";
        assert!(!excluded(rules, "README-secret.md"));
    }

    #[test]
    fn comments_blank_lines_slashes_and_dots() {
        let rules = "# a comment\n\n   \n/secret\n./build/\nlogs//old\n";
        assert!(excluded(rules, "secret"));
        assert!(excluded(rules, "secret/key"));
        assert!(excluded(rules, "build"));
        assert!(excluded(rules, "build/out.o"));
        assert!(excluded(rules, "logs/old/1.log"));
        assert!(!excluded(rules, "# a comment"));
        assert!(!excluded(rules, "a/secret"));
        // `#` only starts a comment at the start of the line
        assert!(excluded(" #x", "#x"));
    }

    #[test]
    fn directory_matches_cover_children_and_reinclude_works_inside() {
        let rules = "node_modules\n!node_modules/keep/me.js";
        assert!(excluded(rules, "node_modules"));
        assert!(excluded(rules, "node_modules/a/b.js"));
        assert!(!excluded(rules, "node_modules/keep/me.js"));
        let ignore = DockerIgnore::parse(rules).unwrap();
        assert!(ignore.may_reinclude_below("node_modules"));
        assert!(ignore.may_reinclude_below("node_modules/keep"));
        assert!(!ignore.may_reinclude_below("node_modules/other"));
        let ignore = DockerIgnore::parse("*\n!src/**/*.rs").unwrap();
        assert!(ignore.may_reinclude_below("src"));
        assert!(ignore.may_reinclude_below("src/a/b"));
        assert!(!ignore.may_reinclude_below("target"));
        let ignore = DockerIgnore::parse("*\n!*/keep").unwrap();
        assert!(ignore.may_reinclude_below("x"));
        assert!(!ignore.may_reinclude_below("x/y"));
    }

    #[test]
    fn double_star_forms() {
        assert!(excluded("a/**", "a/b/c"));
        assert!(excluded("a/**/z", "a/z"));
        assert!(excluded("a/**/z", "a/b/c/z"));
        assert!(!excluded("a/**/z", "ab/z"));
        assert!(excluded("**", "anything/at/all"));
        assert!(excluded("**/tmp", "x/y/tmp/file"));
    }

    #[test]
    fn classes_and_escapes() {
        assert!(excluded("file[0-9].txt", "file7.txt"));
        assert!(!excluded("file[0-9].txt", "filex.txt"));
        assert!(excluded("file[^0-9].txt", "filex.txt"));
        assert!(!excluded("file[^0-9].txt", "file1.txt"));
        assert!(excluded("\\*star", "*star"));
        assert!(!excluded("\\*star", "xstar"));
        assert!(DockerIgnore::parse("file[0-9").is_err());
        assert!(DockerIgnore::parse("!").is_err());
    }

    #[test]
    fn bom_and_bang_with_space() {
        assert!(excluded("\u{feff}secret", "secret"));
        assert!(!excluded("*.log\n! keep.log", "keep.log"));
    }
}
