//! What git ignores in a workspace, for `exec --use-gitignore` (act's flag, on by default):
//! the copy of the repository a job pod starts with leaves it out, as act leaves it out of
//! the copy its job container starts with (pkg/container/docker_run.go, copyDir). git
//! answers, so `.gitignore` files at every level, `.git/info/exclude` and the global
//! excludes count, and tracked files are never left out.

use std::path::Path;
use std::process::Command;

/// The paths under `dir` that git ignores, relative to it, a wholly ignored folder once
/// (`target`, not its files); empty when `dir` is not in a repository or git fails, so
/// everything is copied then. A name holding a newline is kept (the list is one per line).
pub fn git_ignored(dir: &Path) -> Vec<String> {
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--others",
            "--ignored",
            "--exclude-standard",
            "--directory",
        ])
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output();
    let Some(out) = out.ok().filter(|o| o.status.success()) else {
        return Vec::new();
    };
    out.stdout
        .split(|b| *b == 0)
        .filter_map(|name| std::str::from_utf8(name).ok())
        .map(|name| name.trim_end_matches('/'))
        .filter(|name| !name.is_empty() && !name.contains('\n'))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_files_and_folders_are_listed_once_and_tracked_ones_never() {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let ok = Command::new("git")
                .args(args)
                .current_dir(dir.path())
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .output()
                .unwrap()
                .status
                .success();
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q"]);
        let write = |path: &str| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        };
        write(".gitignore");
        std::fs::write(dir.path().join(".gitignore"), "*.log\ntarget/\n").unwrap();
        for path in [
            "a.log",
            "target/deep/b",
            "src/c.log",
            "src/keep.rs",
            "tracked.log",
        ] {
            write(path);
        }
        write("nested/.gitignore");
        std::fs::write(dir.path().join("nested/.gitignore"), "secret\n").unwrap();
        write("nested/secret");
        git(&["add", "-f", "tracked.log"]);
        let mut ignored = git_ignored(dir.path());
        ignored.sort();
        assert_eq!(ignored, ["a.log", "nested/secret", "src/c.log", "target"]);
        // Not a repository: nothing is left out.
        let plain = tempfile::tempdir().unwrap();
        std::fs::write(plain.path().join(".gitignore"), "*\n").unwrap();
        assert!(git_ignored(plain.path()).is_empty());
    }
}
