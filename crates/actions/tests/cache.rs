#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The action cache against local bare repositories served over `file://`.

use std::path::{Path, PathBuf};
use std::process::Command;

use actions::{ActionCache, ActionError};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "tag.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A remote at `<base>/<owner>/<name>` with two commits: `v1` (annotated tag) on the first,
/// `main` and `light` (lightweight tag) on the second. Returns (remote dir, sha1, sha2).
struct Remote {
    dir: PathBuf,
    first: String,
    second: String,
}

fn remote(base: &Path, owner: &str, name: &str) -> Remote {
    let work = base.join("work").join(name);
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q"]);
    std::fs::write(
        work.join("action.yml"),
        "runs:\n  using: node20\n  main: v1.js\n",
    )
    .unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "one"]);
    let first = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["tag", "-a", "v1", "-m", "v1"]);
    std::fs::write(
        work.join("action.yml"),
        "runs:\n  using: node20\n  main: v2.js\n",
    )
    .unwrap();
    git(&work, &["commit", "-qam", "two"]);
    let second = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["tag", "light"]);
    git(&work, &["branch", "release/x", &first]);
    let dir = base.join(owner).join(name);
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    git(
        base,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            dir.to_str().unwrap(),
        ],
    );
    Remote { dir, first, second }
}

fn main_js(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("action.yml")).unwrap()
}

fn url(base: &Path) -> String {
    format!("file://{}", base.display())
}

#[test]
fn fetch_by_tag_branch_and_sha() {
    let base = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let r = remote(base.path(), "owner", "repo");
    let cache = ActionCache::new(
        root.path().to_path_buf(),
        &format!("{}/", url(base.path())),
        false,
    );

    let tag = cache.fetch("owner", "repo", "v1").unwrap();
    assert_eq!(tag, root.path().join("owner/repo").join(&r.first));
    assert!(main_js(&tag).contains("v1.js"));
    assert!(
        !tag.join(".git").exists(),
        "the cached copy carries no .git"
    );

    let branch = cache.fetch("owner", "repo", "main").unwrap();
    assert_eq!(branch, root.path().join("owner/repo").join(&r.second));
    assert!(main_js(&branch).contains("v2.js"));
    assert_eq!(cache.fetch("owner", "repo", "light").unwrap(), branch);
    assert_eq!(cache.fetch("owner", "repo", "release/x").unwrap(), tag);

    let by_sha = cache
        .fetch("owner", "repo", &r.first.to_uppercase())
        .unwrap();
    assert_eq!(by_sha, tag);

    // No temporary directories are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(root.path().join("owner/repo"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn fetch_by_sha_not_yet_cached() {
    let base = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let r = remote(base.path(), "o", "r");
    let cache = ActionCache::new(root.path().to_path_buf(), &url(base.path()), false);
    let dir = cache.fetch("o", "r", &r.second).unwrap();
    assert!(main_js(&dir).contains("v2.js"));
}

#[test]
fn bare_repo_with_git_suffix_is_found() {
    let base = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let r = remote(base.path(), "o", "r.git");
    let cache = ActionCache::new(root.path().to_path_buf(), &url(base.path()), false);
    assert_eq!(
        cache.fetch("o", "r", "v1").unwrap(),
        root.path().join("o/r").join(&r.first)
    );
}

#[test]
fn cached_commits_are_not_fetched_again() {
    let base = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let r = remote(base.path(), "owner", "repo");
    let cache = ActionCache::new(root.path().to_path_buf(), &url(base.path()), false);
    let dir = cache.fetch("owner", "repo", "v1").unwrap();
    std::fs::write(dir.join("marker"), "kept").unwrap();
    // Same commit through another name: the cached copy is reused, not replaced.
    assert_eq!(cache.fetch("owner", "repo", "release/x").unwrap(), dir);
    assert!(dir.join("marker").is_file());

    std::fs::remove_dir_all(&r.dir).unwrap();
    // A sha needs no remote at all.
    assert_eq!(cache.fetch("owner", "repo", &r.first).unwrap(), dir);
    // A tag is re-resolved online (it may have moved), so a vanished remote is an error...
    let err = cache.fetch("owner", "repo", "v1").unwrap_err();
    assert!(
        matches!(&err, ActionError::Fetch { git_ref, .. } if git_ref == "v1"),
        "{err:?}"
    );
    assert!(err.to_string().contains("--offline"), "{err}");
    // ... and offline the cache answers.
    let offline = ActionCache::new(root.path().to_path_buf(), &url(base.path()), true);
    assert_eq!(offline.fetch("owner", "repo", "v1").unwrap(), dir);
    assert_eq!(offline.fetch("owner", "repo", "release/x").unwrap(), dir);
}

#[test]
fn offline_hit_and_miss() {
    let base = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let r = remote(base.path(), "owner", "repo");
    let online = ActionCache::new(root.path().to_path_buf(), &url(base.path()), false);
    let offline = ActionCache::new(root.path().to_path_buf(), &url(base.path()), true);

    let err = offline.fetch("owner", "repo", "main").unwrap_err();
    assert!(
        matches!(&err, ActionError::NotCached { git_ref, .. } if git_ref == "main"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("owner/repo@main") && message.contains("without --offline"),
        "{message}"
    );

    let dir = online.fetch("owner", "repo", "main").unwrap();
    assert_eq!(offline.fetch("owner", "repo", "main").unwrap(), dir);
    assert_eq!(offline.fetch("owner", "repo", &r.second).unwrap(), dir);
    assert!(matches!(
        offline.fetch("owner", "repo", &r.first),
        Err(ActionError::NotCached { .. })
    ));
    assert!(matches!(
        offline.fetch("owner", "other", "main"),
        Err(ActionError::NotCached { .. })
    ));
}

#[test]
fn unknown_refs_and_repositories() {
    let base = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let r = remote(base.path(), "owner", "repo");
    let cache = ActionCache::new(root.path().to_path_buf(), &url(base.path()), false);

    let err = cache.fetch("owner", "repo", "v9").unwrap_err();
    assert!(err.to_string().contains("no such tag or branch"), "{err}");
    let err = cache.fetch("owner", "repo", &r.first[..7]).unwrap_err();
    assert!(err.to_string().contains("full 40-character sha"), "{err}");
    let err = cache.fetch("owner", "missing", "v1").unwrap_err();
    assert!(
        matches!(&err, ActionError::Fetch { url, .. } if url.ends_with("/owner/missing")),
        "{err:?}"
    );
    let unknown_sha = "0123456789012345678901234567890123456789";
    assert!(matches!(
        cache.fetch("owner", "repo", unknown_sha),
        Err(ActionError::Fetch { .. })
    ));
    assert!(!root.path().join("owner/repo").join(unknown_sha).exists());
}

#[test]
fn names_that_would_escape_the_cache_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let cache = ActionCache::new(root.path().to_path_buf(), "file:///nowhere", false);
    for (owner, repo, git_ref) in [
        ("..", "r", "v1"),
        ("o", "a/b", "v1"),
        ("o", "r", "--upload-pack=x"),
        ("-o", "r", "v1"),
    ] {
        let err = cache.fetch(owner, repo, git_ref).unwrap_err();
        assert!(
            matches!(err, ActionError::InvalidReference { .. }),
            "{owner}/{repo}@{git_ref}: {err:?}"
        );
    }
}

#[test]
fn caller_git_dir_is_ignored() {
    // A runner started from inside a git hook has GIT_DIR set; the cache must not use it.
    // The variable is passed only to a child process running this same test binary.
    if std::env::var_os("ACTIONS_CACHE_TEST_CHILD").is_none() {
        let exe = std::env::current_exe().unwrap();
        let status = Command::new(exe)
            .args(["--exact", "caller_git_dir_is_ignored", "--nocapture"])
            .env("ACTIONS_CACHE_TEST_CHILD", "1")
            .env("GIT_DIR", "/nonexistent/.git")
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "{}{}",
            String::from_utf8_lossy(&status.stdout),
            String::from_utf8_lossy(&status.stderr)
        );
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let r = {
        // The fixture's own git calls drop GIT_DIR explicitly.
        remote(base.path(), "o", "r")
    };
    let cache = ActionCache::new(root.path().to_path_buf(), &url(base.path()), false);
    assert_eq!(
        cache.fetch("o", "r", "v1").unwrap(),
        root.path().join("o/r").join(&r.first)
    );
}

#[test]
fn concurrent_fetches_of_one_commit_agree() {
    let base = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let r = remote(base.path(), "o", "r");
    let cache = ActionCache::new(root.path().to_path_buf(), &url(base.path()), false);
    let dirs: Vec<PathBuf> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let cache = cache.clone();
                let git_ref = if i % 2 == 0 {
                    "main".to_string()
                } else {
                    r.second.clone()
                };
                scope.spawn(move || cache.fetch("o", "r", &git_ref).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        dirs.iter()
            .all(|d| *d == root.path().join("o/r").join(&r.second)),
        "{dirs:?}"
    );
    assert!(main_js(&dirs[0]).contains("v2.js"));
    let names: Vec<_> = std::fs::read_dir(root.path().join("o/r"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| n == &r.second || n == ".refs"),
        "{names:?}"
    );
}

#[test]
fn locate_actions_and_workflows() {
    use actions::{ActionRef, WorkflowRef, load_manifest};
    let base = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let workspace = Path::new("/ws");
    let r = remote(base.path(), "o", "r");
    let cache = ActionCache::new(root.path().to_path_buf(), &url(base.path()), false);
    let commit = root.path().join("o/r").join(&r.second);

    let local = ActionRef::parse("./.github/actions/a").unwrap();
    assert_eq!(
        cache.locate_action(&local, workspace).unwrap(),
        Some(workspace.join("./.github/actions/a"))
    );
    let docker = ActionRef::parse("docker://alpine").unwrap();
    assert_eq!(cache.locate_action(&docker, workspace).unwrap(), None);
    let at_root = ActionRef::parse("o/r@main").unwrap();
    let dir = cache.locate_action(&at_root, workspace).unwrap().unwrap();
    assert_eq!(dir, commit);
    assert!(load_manifest(&dir).is_ok());
    let nested = ActionRef::parse("o/r/sub/dir@main").unwrap();
    assert_eq!(
        cache.locate_action(&nested, workspace).unwrap(),
        Some(commit.join("sub/dir"))
    );

    let called = WorkflowRef::parse("o/r/.github/workflows/x.yml@main").unwrap();
    assert_eq!(
        cache.locate_workflow(&called, workspace).unwrap(),
        commit.join(".github/workflows/x.yml")
    );
    let local = WorkflowRef::parse("./.github/workflows/y.yml").unwrap();
    assert_eq!(
        cache.locate_workflow(&local, workspace).unwrap(),
        workspace.join("./.github/workflows/y.yml")
    );
}

/// An absolute `uses:` is fetched from its own host, kept apart from the default URL's
/// repositories of the same name.
#[test]
fn an_action_url_is_fetched_from_its_host_and_kept_apart() {
    let default = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    remote(default.path(), "o", "r");
    let theirs = remote(other.path(), "o", "r");
    let cache = ActionCache::new(root.path().to_path_buf(), &url(default.path()), false);
    let dir = cache
        .fetch_from(Some(&url(other.path())), "o", "r", &theirs.first)
        .unwrap();
    assert!(
        dir.starts_with(root.path().join("@hosts")),
        "{}",
        dir.display()
    );
    assert!(dir.ends_with(format!("o/r/{}", theirs.first)));
    assert!(
        !root.path().join("o").exists(),
        "nothing of the default URL was fetched"
    );
}

/// Repositories under the authorized URL are fetched with the `Authorization` header,
/// which reaches git through its environment (not its command line); others without it.
#[test]
fn the_instance_gets_the_token_and_no_other_host_does() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..2 {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buffer).unwrap();
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buffer[..n]);
            }
            seen.push(String::from_utf8_lossy(&request).to_lowercase());
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
        seen
    });
    let root = tempfile::tempdir().unwrap();
    let instance = format!("http://127.0.0.1:{port}");
    let cache = ActionCache::new(root.path().to_path_buf(), "https://github.com", false)
        .with_auth(&instance, "basic c2VjcmV0");
    // The instance itself: the header goes out.
    assert!(cache.fetch_from(Some(&instance), "o", "r", "v1").is_err());
    // The same host under another scheme is another URL: no header.
    let other = ActionCache::new(root.path().to_path_buf(), &instance, false)
        .with_auth("https://127.0.0.1", "basic c2VjcmV0");
    assert!(other.fetch("o", "r", "v1").is_err());
    let seen = server.join().unwrap();
    assert!(
        seen[0].contains("authorization: basic c2vjcmv0"),
        "{}",
        seen[0]
    );
    assert!(!seen[1].contains("authorization"), "{}", seen[1]);
}

/// A tar.gz as GitHub serves a repository: one top folder `owner-repo-sha/`.
fn tarball(base: &Path, top: &str, files: &[(&str, &str)], link: Option<(&str, &str)>) -> PathBuf {
    let src = base.join("src");
    let root = src.join(top);
    std::fs::create_dir_all(&root).unwrap();
    for (name, text) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    if let Some((name, target)) = link {
        std::os::unix::fs::symlink(target, root.join(name)).unwrap();
    }
    let archive = base.join(format!("{top}.tar.gz"));
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&src)
        .arg(top)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::remove_dir_all(&src).unwrap();
    archive
}

#[test]
fn archives_from_the_service_are_stored_and_found_offline() {
    let base = tempfile::tempdir().unwrap();
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let archive = tarball(
        base.path(),
        "octo-hello-0123456",
        &[
            ("action.yml", "runs:\n  using: node20\n  main: main.js\n"),
            ("main.js", "1"),
        ],
        None,
    );
    let root = base.path().join("cache");
    let cache = ActionCache::new(root.clone(), "https://github.invalid", false);
    let dir = cache
        .store_archive("octo", "hello", "v1", sha, &archive)
        .unwrap();
    assert_eq!(dir, root.join("octo/hello").join(sha));
    assert_eq!(std::fs::read_to_string(dir.join("main.js")).unwrap(), "1");
    // Stored again (a second job): kept as it is.
    cache
        .store_archive("octo", "hello", "v1", sha, &archive)
        .unwrap();
    // Offline, the ref resolves to the stored commit without any network.
    let offline = ActionCache::new(root.clone(), "https://github.invalid", true);
    assert_eq!(offline.fetch("octo", "hello", "v1").unwrap(), dir);
    // Leftover temporary folders: none.
    let names: Vec<String> = std::fs::read_dir(root.join("octo/hello"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with(".tmp")), "{names:?}");
}

#[test]
fn broken_or_escaping_archives_are_refused() {
    let base = tempfile::tempdir().unwrap();
    let sha = "89abcdef0123456789abcdef0123456789abcdef";
    let cache = ActionCache::new(base.path().join("cache"), "https://github.invalid", false);
    let junk = base.path().join("junk.tar.gz");
    std::fs::write(&junk, b"not an archive").unwrap();
    let err = cache
        .store_archive("octo", "junk", "v1", sha, &junk)
        .unwrap_err();
    assert!(matches!(err, ActionError::Unpack { .. }), "{err}");
    assert!(err.to_string().contains("octo/junk@v1"), "{err}");
    let escaping = tarball(
        base.path(),
        "octo-evil-89abcde",
        &[("action.yml", "runs:\n  using: node20\n  main: x.js\n")],
        Some(("x.js", "/etc/passwd")),
    );
    let err = cache
        .store_archive("octo", "evil", "v1", sha, &escaping)
        .unwrap_err();
    assert!(matches!(err, ActionError::LinkLeaves { .. }), "{err}");
    assert!(!base.path().join("cache/octo/evil").join(sha).exists());
    let err = cache
        .store_archive("octo", "evil", "v1", "main", &escaping)
        .unwrap_err();
    assert!(err.to_string().contains("not a commit sha"), "{err}");
}
