//! `hashFiles()` for real workspaces: GitHub's digest over the files that match.
//!
//! GitHub's runner walks the matches depth-first in byte order of names, hashes each
//! file with SHA-256, and returns the SHA-256 of those digests concatenated (hex), or
//! `""` when nothing matches. Patterns are `@actions/glob` patterns relative to the
//! workspace: `*`, `?`, `[...]`, `**`, `!` to exclude, `#` comments; a pattern that
//! names a directory matches everything below it. Files outside the workspace never
//! count, and symbolic links are not followed out of it.

use std::io::Read;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobMatcher};
use sha2::{Digest, Sha256};

/// Why `hashFiles()` could not produce a digest.
#[derive(Debug, thiserror::Error)]
pub enum HashFilesError {
    /// A pattern is not a valid glob.
    #[error("hashFiles pattern '{pattern}' is invalid: {source}")]
    Pattern {
        pattern: String,
        #[source]
        source: globset::Error,
    },
    /// Walking the workspace failed (a folder that cannot be listed).
    #[error("hashFiles could not read the workspace: {0}")]
    Walk(#[source] walkdir::Error),
    /// A matched file could not be opened.
    #[error("hashFiles could not open {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A matched file could not be read to its end.
    #[error("hashFiles could not read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Hashes files below one workspace folder.
#[derive(Debug, Clone)]
pub struct WorkspaceHasher {
    root: PathBuf,
}

struct Pattern {
    negate: bool,
    matcher: GlobMatcher,
    /// The same pattern followed by `/**`: a matched directory brings its contents.
    descendants: GlobMatcher,
}

impl WorkspaceHasher {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        WorkspaceHasher { root: root.into() }
    }

    /// The hex digest of every file matching `patterns`, `""` when none does.
    pub fn hash(&self, patterns: &[String]) -> Result<String, HashFilesError> {
        let patterns = self.compile(patterns)?;
        if patterns.iter().all(|p| p.negate) {
            return Ok(String::new());
        }
        let mut total = Sha256::new();
        let mut matched = 0usize;
        let walk = walkdir::WalkDir::new(&self.root)
            .follow_links(false)
            .sort_by_file_name()
            .min_depth(1);
        for entry in walk {
            let entry = entry.map_err(HashFilesError::Walk)?;
            if !entry.file_type().is_file() {
                continue;
            }
            let Ok(relative) = entry.path().strip_prefix(&self.root) else {
                continue;
            };
            if !is_included(&patterns, relative) {
                continue;
            }
            total.update(hash_file(entry.path())?);
            matched += 1;
        }
        if matched == 0 {
            return Ok(String::new());
        }
        Ok(hex(&total.finalize()))
    }

    fn compile(&self, patterns: &[String]) -> Result<Vec<Pattern>, HashFilesError> {
        let mut compiled = Vec::new();
        for line in patterns.iter().flat_map(|p| p.lines()) {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negate, body) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim_start()),
                None => (false, line),
            };
            let body = self.relative_pattern(body);
            if body.is_empty() {
                continue;
            }
            let body = body.trim_end_matches('/');
            compiled.push(Pattern {
                negate,
                matcher: glob(body)?,
                descendants: glob(&format!("{body}/**"))?,
            });
        }
        Ok(compiled)
    }

    /// Makes an absolute pattern inside the workspace relative to it; strips `./`.
    fn relative_pattern<'a>(&self, pattern: &'a str) -> std::borrow::Cow<'a, str> {
        let root = self.root.to_string_lossy();
        let root = root.trim_end_matches('/');
        if let Some(rest) = pattern.strip_prefix(root).and_then(|r| r.strip_prefix('/')) {
            return rest.to_string().into();
        }
        let mut p = pattern;
        while let Some(rest) = p.strip_prefix("./") {
            p = rest;
        }
        p.into()
    }
}

/// The evaluator's `hashFiles()` hook; its trait (in `workflows`) takes the message as a
/// `String`, so the typed error ends here.
impl workflows::expression::Host for WorkspaceHasher {
    fn hash_files(&self, patterns: &[String]) -> Result<String, String> {
        self.hash(patterns).map_err(|e| e.to_string())
    }
}

fn glob(pattern: &str) -> Result<GlobMatcher, HashFilesError> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|g: Glob| g.compile_matcher())
        .map_err(|source| HashFilesError::Pattern {
            pattern: pattern.to_string(),
            source,
        })
}

/// The last pattern that matches decides, as in `@actions/glob`.
fn is_included(patterns: &[Pattern], relative: &Path) -> bool {
    let mut included = false;
    for p in patterns {
        if p.negate == included
            && (p.matcher.is_match(relative) || p.descendants.is_match(relative))
        {
            included = !p.negate;
        }
    }
    included
}

fn hash_file(path: &Path) -> Result<[u8; 32], HashFilesError> {
    let mut file = std::fs::File::open(path).map_err(|source| HashFilesError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(|source| HashFilesError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/nested")).unwrap();
        std::fs::write(dir.path().join("a.txt"), "alpha").unwrap();
        std::fs::write(dir.path().join("src/b.rs"), "beta").unwrap();
        std::fs::write(dir.path().join("src/nested/c.rs"), "gamma").unwrap();
        dir
    }

    fn digest_of(contents: &[&str]) -> String {
        let mut total = Sha256::new();
        for c in contents {
            total.update(Sha256::digest(c.as_bytes()));
        }
        hex(&total.finalize())
    }

    #[test]
    fn hashes_digests_of_matches_in_walk_order() {
        let ws = workspace();
        let h = WorkspaceHasher::new(ws.path());
        assert_eq!(
            h.hash(&["**/*.rs".into()]).unwrap(),
            digest_of(&["beta", "gamma"])
        );
        assert_eq!(h.hash(&["*.rs".into()]).unwrap(), "");
        assert_eq!(h.hash(&["a.txt".into()]).unwrap(), digest_of(&["alpha"]));
    }

    #[test]
    fn directory_pattern_brings_contents_and_negation_removes() {
        let ws = workspace();
        let h = WorkspaceHasher::new(ws.path());
        assert_eq!(
            h.hash(&["src".into()]).unwrap(),
            digest_of(&["beta", "gamma"])
        );
        let patterns = ["src/**".to_string(), "!src/nested/**".to_string()];
        assert_eq!(h.hash(&patterns).unwrap(), digest_of(&["beta"]));
        assert_eq!(h.hash(&["!src/**".into()]).unwrap(), "");
    }

    #[test]
    fn absolute_patterns_inside_the_workspace_work() {
        let ws = workspace();
        let h = WorkspaceHasher::new(ws.path());
        let pattern = format!("{}/src/nested/*.rs", ws.path().display());
        assert_eq!(h.hash(&[pattern]).unwrap(), digest_of(&["gamma"]));
    }
}
