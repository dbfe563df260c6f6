//! Git repositories for the tests: `git` run in a folder with no system configuration and
//! a fixed identity, and throwaway repositories holding given files.

use std::path::Path;
use std::process::Command;

/// Runs `git ARGS` in `dir` with no system configuration and the identity
/// `tester <tester@example.com>` for commits and tags; fails the test when git fails.
/// Returns its stdout, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "tester")
        .env("GIT_AUTHOR_EMAIL", "tester@example.com")
        .env("GIT_COMMITTER_NAME", "tester")
        .env("GIT_COMMITTER_EMAIL", "tester@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An empty repository at `dir` (created when missing) on branch `main`, with the test
/// identity in its config (for steps that commit in it).
pub fn init(dir: &Path) {
    std::fs::create_dir_all(dir).expect("the repository's folder");
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["config", "user.name", "tester"]);
    git(dir, &["config", "user.email", "tester@example.com"]);
}

/// Writes `files` (path, text) into the repository at `dir` and commits everything with
/// `message`; returns the new HEAD.
pub fn commit_files(dir: &Path, files: &[(&str, &str)], message: &str) -> String {
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("a file inside the repository"))
            .expect("the file's folder");
        std::fs::write(&path, text).expect("write a repository file");
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

/// A repository at `dir` ([`init`]) with `files` committed; returns its HEAD.
pub fn repo(dir: &Path, files: &[(&str, &str)]) -> String {
    init(dir);
    commit_files(dir, files, "init")
}
