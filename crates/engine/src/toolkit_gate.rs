//! The GitHub-Enterprise gate of `@actions/artifact`, opened in the bundles of repository
//! JavaScript actions run for a Gitea or Forgejo job, as Gitea's runner opens it
//! (act/runner/patch_actions.go at b235535c).
//!
//! The toolkit's `isGhes()` takes every host but `github.com`, `*.ghe.com` and
//! `*.localhost` for GitHub Enterprise Server, and `@actions/artifact` then refuses
//! (`GHESNotSupportedError`: "upload-artifact@v4+ and download-artifact@v4+ are not
//! currently supported on GHES"), so the stock v4 actions fail against a Gitea or Forgejo,
//! whose `GITHUB_SERVER_URL` is their own. Gitea serves the v4 protocol itself; the gate is
//! all that stands in the way. Its third test, `endsWith('.LOCALHOST')`, becomes
//! `endsWith('')`, which every host passes. Only a bundle holding the refusal is touched,
//! and only that literal in upper case: the lower-case `.localhost` test of the bundled
//! HTTP client (undici's "potentially trustworthy" check) stays as it is.

use std::path::Path;

/// The error class of the refusal the gate guards.
const REFUSAL: &str = "GHESNotSupportedError";
/// The host suffix of the gate's third test.
const SUFFIX: &str = ".LOCALHOST";
/// Larger files are no action bundle this runner opens.
const MAX_BUNDLE: u64 = 64 << 20;

/// `text` with every `endsWith(<q>.LOCALHOST<q>)` (any quote, spaces allowed) emptied to
/// `endsWith(<q><q>)`, when it holds the refusal; `None` when nothing changes.
pub fn opened(text: &str) -> Option<String> {
    if !text.contains(REFUSAL) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find("endsWith") {
        let (before, call) = rest.split_at(at);
        out.push_str(before);
        match suffix_literal(call) {
            Some((start, end)) => {
                // Up to the opening quote; the closing quote follows the suffix.
                out.push_str(&call[..start]);
                rest = &call[end..];
                changed = true;
            }
            None => {
                out.push_str("endsWith");
                rest = &call["endsWith".len()..];
            }
        }
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// In `call` (starting at `endsWith`), the byte range of `.LOCALHOST` when the call is
/// `endsWith ( <q>.LOCALHOST<q> )`.
fn suffix_literal(call: &str) -> Option<(usize, usize)> {
    let after = &call["endsWith".len()..];
    let open = after.len() - after.trim_start().len();
    let rest = after.trim_start().strip_prefix('(')?;
    let lead = rest.len() - rest.trim_start().len();
    let rest = rest.trim_start();
    let quote = rest
        .chars()
        .next()
        .filter(|q| matches!(q, '\'' | '"' | '`'))?;
    let inner = &rest[1..];
    let tail = inner.strip_prefix(SUFFIX)?;
    let tail = tail.strip_prefix(quote)?;
    if !tail.trim_start().starts_with(')') {
        return None;
    }
    let start = "endsWith".len() + open + 1 + lead + 1;
    Some((start, start + SUFFIX.len()))
}

/// Opens the gate in each of `scripts` (an action's `pre`, `main`, `post`, inside `dir`);
/// a script that could not be rewritten is left as it was, and said in the problems.
pub fn open_in(dir: &Path, scripts: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    for script in scripts {
        let path = dir.join(script);
        if !path.starts_with(dir) || path.components().any(|c| c.as_os_str() == "..") {
            continue;
        }
        if std::fs::metadata(&path).map_or(true, |m| m.len() > MAX_BUNDLE) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if let Some(patched) = opened(&text)
            && let Err(e) = std::fs::write(&path, patched)
        {
            problems.push(format!(
                "cannot open the toolkit's GHES gate in {}: {e}; upload-artifact@v4 may refuse this server",
                path.display()
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_gate_of_a_bundle_that_refuses_opens() {
        let bundle = "class GHESNotSupportedError extends Error {}\nfunction isGhes(){const h=u.hostname.trimEnd().toUpperCase();return !(h==='GITHUB.COM')&&!h.endsWith('.GHE.COM')&&!h.endsWith('.LOCALHOST')}\nfunction t(u){return u.hostname.endsWith('.localhost')}\nx.endsWith( \".LOCALHOST\" )";
        let out = opened(bundle).unwrap();
        assert!(out.contains("!h.endsWith('')}"), "{out}");
        assert!(out.contains("x.endsWith( \"\" )"), "{out}");
        // undici's lower-case test and the other hosts' tests stay.
        assert!(out.contains("endsWith('.localhost')"), "{out}");
        assert!(out.contains("endsWith('.GHE.COM')"), "{out}");
        // No refusal, no change; no gate, no change.
        assert_eq!(opened("h.endsWith('.LOCALHOST')"), None);
        assert_eq!(
            opened("GHESNotSupportedError; h.endsWith('.GHE.COM')"),
            None
        );
    }
}
