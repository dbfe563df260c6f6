//! Remote actions and reusable workflows, fetched once per commit with the `git` CLI and
//! reused offline.
//!
//! Layout under the root: `<owner>/<repo>/<sha>/` holds the files of one commit (no `.git`),
//! `<owner>/<repo>/.refs/<ref>` holds the sha a tag or branch last resolved to. Both are
//! written to a temporary name and renamed into place, so two runners sharing a cache never
//! see half a checkout.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{ActionError, Result};
use crate::reference::{ActionRef, WorkflowRef};

/// Where remote actions are fetched from and kept.
#[derive(Debug, Clone)]
pub struct ActionCache {
    root: PathBuf,
    base_url: String,
    offline: bool,
    /// Repositories under this URL are fetched with this `Authorization` header value (the
    /// task token for actions on the Gitea instance itself: private action repositories).
    auth: Option<(String, String)>,
}

impl ActionCache {
    /// `base_url`: where `owner/repo` lives, e.g. `https://github.com`, a Gitea instance or
    /// `file:///srv/mirror`. The repository URL is `{base_url}/{owner}/{repo}`.
    pub fn new(root: PathBuf, base_url: &str, offline: bool) -> Self {
        ActionCache {
            root,
            base_url: base_url.trim_end_matches('/').to_string(),
            offline,
            auth: None,
        }
    }

    /// Fetches repositories under `url` (e.g. the Gitea instance) with the HTTP header
    /// `Authorization: <value>`. The value reaches `git` through its environment, never its
    /// command line (which every local user can read).
    pub fn with_auth(mut self, url: &str, value: &str) -> Self {
        self.auth = Some((url.trim_end_matches('/').to_string(), value.to_string()));
        self
    }

    /// The header value for `url`, when it is under the authorized URL.
    fn auth_for(&self, url: &str) -> Option<&str> {
        let (prefix, value) = self.auth.as_ref()?;
        let under = url
            .strip_prefix(prefix.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        under.then_some(value.as_str())
    }

    /// The URL `owner/repo` is fetched from.
    pub fn repository_url(&self, owner: &str, repo: &str) -> String {
        format!("{}/{owner}/{repo}", self.base_url)
    }

    /// [`Self::fetch`] from `host` (`https://host`, an absolute `uses:`) instead of the
    /// default URL; such repositories are kept under `<root>/@hosts/<scheme>_<host>/`.
    pub fn fetch_from(
        &self,
        host: Option<&str>,
        owner: &str,
        repo: &str,
        git_ref: &str,
    ) -> Result<PathBuf> {
        let Some(host) = host else {
            return self.fetch(owner, repo, git_ref);
        };
        let folder: String = host
            .replace("://", "_")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let at_host = ActionCache {
            root: self.root.join("@hosts").join(folder),
            base_url: host.trim_end_matches('/').to_string(),
            offline: self.offline,
            auth: self.auth.clone(),
        };
        at_host.fetch(owner, repo, git_ref)
    }

    /// The checkout directory of `owner/repo` at `git_ref` (branch, tag or full sha).
    ///
    /// Online, a tag or branch is resolved with `git ls-remote` on every call (so a moved
    /// tag is noticed); a full sha is used as is, and a commit already in the cache is never
    /// downloaded again. Offline, only the cache is consulted.
    pub fn fetch(&self, owner: &str, repo: &str, git_ref: &str) -> Result<PathBuf> {
        check_names(owner, repo, git_ref)?;
        let repo_dir = self.root.join(owner).join(repo);
        let full_sha = is_full_sha(git_ref).then(|| git_ref.to_ascii_lowercase());
        if self.offline {
            let sha = match full_sha {
                Some(sha) => Some(sha),
                None => read_ref(&repo_dir, git_ref)?,
            };
            return sha
                .map(|sha| repo_dir.join(sha))
                .filter(|dir| dir.is_dir())
                .ok_or_else(|| ActionError::NotCached {
                    owner: owner.to_string(),
                    repo: repo.to_string(),
                    git_ref: git_ref.to_string(),
                });
        }
        let url = self.repository_url(owner, repo);
        let auth = self.auth_for(&url);
        let (sha, remote_name) = match full_sha {
            Some(sha) => (sha.clone(), sha),
            None => resolve(&url, git_ref, auth)?,
        };
        let dir = repo_dir.join(&sha);
        if !dir.is_dir() {
            download(&url, auth, &remote_name, &sha, &repo_dir, git_ref)?;
        }
        if !is_full_sha(git_ref) {
            write_ref(&repo_dir, git_ref, &sha)?;
        }
        Ok(dir)
    }
}

impl ActionCache {
    /// Puts the tar.gz `archive` of `owner/repo` at commit `sha` into the cache, as
    /// `git_ref` resolved (GitHub's launch service hands out such archives instead of
    /// repositories): unpacked without its top folder (a GitHub tarball holds one,
    /// `owner-repo-sha/`) into `<owner>/<repo>/<sha>/`, the ref pointed at it. A commit
    /// already cached is kept. The runner's `tar` unpacks it, refusing absolute and `..`
    /// member names; a symbolic link that leads out of the action makes it refused.
    pub fn store_archive(
        &self,
        owner: &str,
        repo: &str,
        git_ref: &str,
        sha: &str,
        archive: &Path,
    ) -> Result<PathBuf> {
        check_names(owner, repo, git_ref)?;
        if !is_full_sha(sha) {
            return Err(ActionError::InvalidReference {
                uses: format!("{owner}/{repo}@{git_ref}"),
                why: format!("the service resolved it to `{sha}`, which is not a commit sha"),
            });
        }
        let sha = sha.to_ascii_lowercase();
        let repo_dir = self.root.join(owner).join(repo);
        let dir = repo_dir.join(&sha);
        if !dir.is_dir() {
            std::fs::create_dir_all(&repo_dir)
                .map_err(|e| ActionError::io("creating the cache directory", &repo_dir, e))?;
            let temp = TempDir::create(&repo_dir, &sha)?;
            let action = format!("{owner}/{repo}@{git_ref}");
            let output = Command::new("tar")
                .arg("-xzf")
                .arg(archive)
                .args(["--strip-components=1", "--no-same-owner", "-C"])
                .arg(temp.path())
                .stdin(Stdio::null())
                .output()
                .map_err(|e| ActionError::io("running tar on", archive, e))?;
            if !output.status.success() {
                return Err(ActionError::Unpack {
                    action,
                    archive: archive.to_path_buf(),
                    stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
                });
            }
            let leaving = walkdir::WalkDir::new(temp.path())
                .into_iter()
                .flatten()
                .find(|e| e.path_is_symlink() && !no_link_leaves(temp.path(), e.path()));
            if let Some(entry) = leaving {
                return Err(ActionError::LinkLeaves {
                    path: entry.path().to_path_buf(),
                    root: dir,
                });
            }
            match std::fs::rename(temp.path(), &dir) {
                Ok(()) => temp.keep(),
                // Another runner sharing the cache stored it first.
                Err(_) if dir.is_dir() => {}
                Err(e) => return Err(ActionError::io("moving into place", &dir, e)),
            }
        }
        if !is_full_sha(git_ref) {
            write_ref(&repo_dir, git_ref, &sha)?;
        }
        Ok(dir)
    }
}

impl ActionCache {
    /// The directory holding the `action.yml` of `action`: under `workspace` for a local
    /// action, in the cache (fetched if needed) for a remote one; `None` for `docker://`.
    pub fn locate_action(&self, action: &ActionRef, workspace: &Path) -> Result<Option<PathBuf>> {
        Ok(match action {
            ActionRef::Local { path } | ActionRef::SelfRepository { path } => {
                Some(action_inside(workspace, workspace.join(path))?)
            }
            ActionRef::Remote {
                owner,
                repo,
                path,
                git_ref,
                host,
            } => {
                let dir = self.fetch_from(host.as_deref(), owner, repo, git_ref)?;
                Some(match path {
                    Some(path) => action_inside(&dir, dir.join(path))?,
                    None => action_inside(&dir, dir.clone())?,
                })
            }
            ActionRef::Docker { .. } => None,
        })
    }

    /// The file of a reusable workflow: under `workspace` when local, in the cache (fetched
    /// if needed) when remote.
    pub fn locate_workflow(&self, workflow: &WorkflowRef, workspace: &Path) -> Result<PathBuf> {
        match workflow {
            WorkflowRef::Local { path } => inside(workspace, workspace.join(path)),
            WorkflowRef::Remote {
                owner,
                repo,
                path,
                git_ref,
                host,
            } => {
                let dir = self.fetch_from(host.as_deref(), owner, repo, git_ref)?;
                inside(&dir, dir.join(path))
            }
        }
    }
}

/// An action directory `dir` under `root`, checked with its metadata file by [`inside`].
fn action_inside(root: &Path, dir: PathBuf) -> Result<PathBuf> {
    let dir = inside(root, dir)?;
    for name in ["action.yml", "action.yaml"] {
        inside(root, dir.join(name))?;
    }
    Ok(dir)
}

/// `path`, unless a symbolic link carries it out of `root` (a committed
/// `action.yml -> ~/.git-credentials` would otherwise end up in a diagnostic). A path that
/// does not exist is returned as it is, for the caller to report as missing.
fn inside(root: &Path, path: PathBuf) -> Result<PathBuf> {
    if no_link_leaves(root, &path) {
        Ok(path)
    } else {
        // Named as written in the repository: `.github/actions/x`, not `/abs/./.github/...`.
        let named = path.strip_prefix(root).unwrap_or(&path);
        Err(ActionError::LinkLeaves {
            path: named
                .components()
                .filter(|c| *c != std::path::Component::CurDir)
                .collect(),
            root: root.to_path_buf(),
        })
    }
}

/// Whether `path`, with every symbolic link followed, still lies in `root` (also followed).
/// A path that does not exist, or a root that does not, counts as inside: there is no link
/// to follow, and the caller reports what is missing.
pub fn no_link_leaves(root: &Path, path: &Path) -> bool {
    match (path.canonicalize(), root.canonicalize()) {
        (Ok(real), Ok(real_root)) => real.starts_with(real_root),
        _ => true,
    }
}

fn is_full_sha(text: &str) -> bool {
    text.len() == 40 && text.chars().all(|c| c.is_ascii_hexdigit())
}

/// Owner and repository become directory names, and the ref a git argument: refuse
/// anything that could escape the cache or read as an option.
fn check_names(owner: &str, repo: &str, git_ref: &str) -> Result<()> {
    let bad_name = |s: &str| {
        s.is_empty() || s == "." || s == ".." || s.starts_with('-') || s.contains(['/', '\\'])
    };
    let why = if bad_name(owner) || bad_name(repo) {
        "owner and repository must be plain names such as `actions/checkout`"
    } else if git_ref.is_empty() || git_ref.starts_with('-') || git_ref.contains("..") {
        "the ref must be a tag, branch or commit sha"
    } else {
        return Ok(());
    };
    Err(ActionError::InvalidReference {
        uses: format!("{owner}/{repo}@{git_ref}"),
        why: why.to_string(),
    })
}

/// A `git` command that cannot prompt for credentials and ignores the caller's repository
/// (`GIT_DIR`, `GIT_WORK_TREE`, ... are all dropped).
fn git() -> Command {
    let mut command = Command::new("git");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GIT_") {
            command.env_remove(key);
        }
    }
    command
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GCM_INTERACTIVE", "never")
        .env("LC_ALL", "C")
        .args([
            // Give up on a stalled download instead of hanging the job.
            "-c",
            "http.lowSpeedLimit=1",
            "-c",
            "http.lowSpeedTime=60",
            // No hooks from the user's templates, files exactly as committed.
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "core.autocrlf=false",
        ])
        .stdin(Stdio::null());
    command
}

/// Runs `git args...` in `dir` and returns its stdout, or a `Fetch` error with its stderr.
/// `auth`: an `Authorization` header value for the remote, given through git's environment
/// (`GIT_CONFIG_COUNT` / `GIT_CONFIG_KEY_0` / `GIT_CONFIG_VALUE_0`), not its arguments.
fn run_git<I, S>(
    dir: Option<&Path>,
    args: I,
    url: &str,
    git_ref: &str,
    auth: Option<&str>,
) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = git();
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    if let Some(value) = auth {
        command
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraheader")
            .env("GIT_CONFIG_VALUE_0", format!("AUTHORIZATION: {value}"));
    }
    let output = command
        .args(args)
        .output()
        .map_err(|source| ActionError::GitMissing { source })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(ActionError::Fetch {
            url: url.to_string(),
            git_ref: git_ref.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

/// A tag or branch → (commit sha, the full ref name to fetch). Tags win over branches, as
/// in `git rev-parse`; an annotated tag resolves to the commit it points at.
fn resolve(url: &str, git_ref: &str, auth: Option<&str>) -> Result<(String, String)> {
    let candidates = if git_ref.starts_with("refs/") {
        vec![git_ref.to_string()]
    } else {
        vec![
            format!("refs/tags/{git_ref}"),
            format!("refs/heads/{git_ref}"),
        ]
    };
    // With patterns, ls-remote lists a peeled tag (`^{}`) only when asked for it by name.
    let mut args = vec!["ls-remote".to_string(), "--".to_string(), url.to_string()];
    for name in &candidates {
        args.push(name.clone());
        args.push(format!("{name}^{{}}"));
    }
    let out = run_git(None, &args, url, git_ref, auth)?;
    let refs: Vec<(&str, &str)> = out
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .collect();
    for name in candidates {
        let peeled = format!("{name}^{{}}");
        let sha = refs
            .iter()
            .find(|(_, r)| *r == peeled)
            .or_else(|| refs.iter().find(|(_, r)| *r == name))
            .map(|(sha, _)| sha.to_string());
        if let Some(sha) = sha {
            return Ok((sha, name));
        }
    }
    let hint = if git_ref.len() < 40 && git_ref.chars().all(|c| c.is_ascii_hexdigit()) {
        "no such tag or branch; abbreviated commit shas cannot be fetched, write the full 40-character sha"
    } else {
        "no such tag or branch in the repository"
    };
    Err(ActionError::Fetch {
        url: url.to_string(),
        git_ref: git_ref.to_string(),
        stderr: hint.to_string(),
    })
}

/// Fetches `remote_name` (a full ref or a sha) into a fresh temporary directory, checks it
/// out, drops `.git`, and renames it to `<repo_dir>/<sha>`.
fn download(
    url: &str,
    auth: Option<&str>,
    remote_name: &str,
    sha: &str,
    repo_dir: &Path,
    git_ref: &str,
) -> Result<()> {
    std::fs::create_dir_all(repo_dir)
        .map_err(|e| ActionError::io("creating the cache directory", repo_dir, e))?;
    let temp = TempDir::create(repo_dir, sha)?;
    let dir = Some(temp.path());
    run_git(dir, ["init", "-q"], url, git_ref, None)?;
    run_git(
        dir,
        [
            "fetch",
            "-q",
            "--no-tags",
            "--depth",
            "1",
            "--",
            url,
            remote_name,
        ],
        url,
        git_ref,
        auth,
    )?;
    let fetched = run_git(
        dir,
        ["rev-parse", "FETCH_HEAD^{commit}"],
        url,
        git_ref,
        None,
    )?;
    let fetched = fetched.trim();
    if fetched != sha {
        return Err(ActionError::Fetch {
            url: url.to_string(),
            git_ref: git_ref.to_string(),
            stderr: format!(
                "`{remote_name}` moved while it was being fetched (expected {sha}, got {fetched}); run again"
            ),
        });
    }
    run_git(
        dir,
        ["checkout", "-q", "--detach", "FETCH_HEAD"],
        url,
        git_ref,
        None,
    )?;
    let git_dir = temp.path().join(".git");
    std::fs::remove_dir_all(&git_dir).map_err(|e| ActionError::io("removing", &git_dir, e))?;
    let target = repo_dir.join(sha);
    match std::fs::rename(temp.path(), &target) {
        Ok(()) => {
            temp.keep();
            Ok(())
        }
        // Another runner finished the same commit first: its copy is as good as ours.
        Err(_) if target.is_dir() => Ok(()),
        Err(e) => Err(ActionError::io(
            "moving the checkout into place at",
            &target,
            e,
        )),
    }
}

/// `<repo_dir>/.refs/<ref>` with `/` and `%` escaped so any ref is one file name.
fn ref_file(repo_dir: &Path, git_ref: &str) -> PathBuf {
    let name = git_ref.replace('%', "%25").replace('/', "%2F");
    repo_dir.join(".refs").join(name)
}

fn read_ref(repo_dir: &Path, git_ref: &str) -> Result<Option<String>> {
    let path = ref_file(repo_dir, git_ref);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_string()).filter(|s| is_full_sha(s))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ActionError::io("reading", path, e)),
    }
}

fn write_ref(repo_dir: &Path, git_ref: &str, sha: &str) -> Result<()> {
    let path = ref_file(repo_dir, git_ref);
    let refs = repo_dir.join(".refs");
    std::fs::create_dir_all(&refs).map_err(|e| ActionError::io("creating", &refs, e))?;
    let temp = refs.join(format!(".tmp-{}", unique_suffix()));
    std::fs::write(&temp, format!("{sha}\n")).map_err(|e| ActionError::io("writing", &temp, e))?;
    std::fs::rename(&temp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        ActionError::io("writing", &path, e)
    })
}

/// Process id, a per-process counter and the clock: unique across concurrent runners.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A directory removed on drop unless kept.
#[derive(Debug)]
struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    fn create(parent: &Path, sha: &str) -> Result<TempDir> {
        let path = parent.join(format!(".tmp-{sha}-{}", unique_suffix()));
        std::fs::create_dir(&path).map_err(|e| ActionError::io("creating", &path, e))?;
        Ok(TempDir { path, keep: false })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
