//! `--secret-file` / `--env-file`: dotenv files as act reads them (`KEY=VALUE`, optional
//! `export `, `#` comments, single quotes verbatim, double quotes with `\n` escapes and
//! values spanning lines).

use std::path::Path;

use super::UsageError;

/// The pairs of `flag`'s file (see [`super::input_file`] for the files refused).
pub fn read(flag: &'static str, path: &Path) -> Result<Vec<(String, String)>, UsageError> {
    let text = super::input_file::read(flag, path)?;
    parse(&text).map_err(|(line, why)| UsageError(format!("{}:{line}: {why}", path.display())))
}

/// The pairs in order; an error names the 1-based line, the key when there is one, and what
/// is wrong, never the line's text (a secrets file's lines are secrets).
pub fn parse(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let number = i + 1;
        let line = lines[i].trim();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, rest)) = line.split_once('=').or_else(|| line.split_once(':')) else {
            return Err((
                number,
                "expected KEY=VALUE, but the line has no `=` (its text is not shown: it may be a secret)".into(),
            ));
        };
        let key = key.trim().to_string();
        if key.is_empty() {
            return Err((number, "the name before `=` is empty".into()));
        }
        let rest = rest.trim_start();
        let value = if let Some(body) = rest.strip_prefix('\'') {
            match body.find('\'') {
                Some(end) => body[..end].to_string(),
                None => {
                    return Err((number, format!("the single quote of {key} is not closed")));
                }
            }
        } else if let Some(body) = rest.strip_prefix('"') {
            let mut raw = body.to_string();
            while !closes(&raw) {
                let Some(next) = lines.get(i) else {
                    return Err((number, format!("the double quote of {key} is not closed")));
                };
                raw.push('\n');
                raw.push_str(next);
                i += 1;
            }
            let end = closing_quote(&raw).unwrap_or(raw.len());
            unescape(&raw[..end])
        } else {
            let v = match rest.find(" #") {
                Some(c) => &rest[..c],
                None => rest,
            };
            v.trim().to_string()
        };
        out.push((key, value));
    }
    Ok(out)
}

fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn closes(s: &str) -> bool {
    closing_quote(s).is_some()
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_act_style_dotenv() {
        let text = "# comment\nexport A=1\nB = two words # note\nC='single # kept'\nD=\"line1\\nline2\"\nE=\"multi\nline\"\n\nF:colon\n";
        let got = parse(text).unwrap();
        let want = [
            ("A", "1"),
            ("B", "two words"),
            ("C", "single # kept"),
            ("D", "line1\nline2"),
            ("E", "multi\nline"),
            ("F", "colon"),
        ];
        assert_eq!(got.len(), want.len());
        for ((k, v), (wk, wv)) in got.iter().zip(want) {
            assert_eq!((k.as_str(), v.as_str()), (wk, wv));
        }
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(parse("A=1\nnot a pair\n").unwrap_err().0, 2);
        assert_eq!(parse("X=\"open\n").unwrap_err().0, 1);
    }

    #[test]
    fn errors_never_echo_the_line() {
        for (text, key) in [
            ("A=1\nghp_s3cretT0ken\n", None),
            ("TOKEN='s3cret\n", Some("TOKEN")),
            ("TOKEN=\"s3cret\n", Some("TOKEN")),
        ] {
            let (_, why) = parse(text).unwrap_err();
            assert!(!why.contains("s3cret"), "{why}");
            if let Some(key) = key {
                assert!(why.contains(key), "{why}");
            }
        }
    }
}
