//! The `github` and `runner` contexts and the default environment of a local run, filled
//! from the git repository holding the workspace and the event payload, as GitHub's
//! runner fills them from the job message.

use std::path::{Path, PathBuf};
use std::process::Command;

use workflows::expression::{Object, Value};

/// `github.actor` of a local run unless told otherwise (`exec -a`): act's default, so
/// workflows that look for act (`github.actor == 'nektos/act'`) see what they see under act.
pub const DEFAULT_ACTOR: &str = "nektos/act";

/// The git remote whose URL names the repository of a local run unless told otherwise
/// (`exec --remote-name`), as act's default.
pub const DEFAULT_REMOTE: &str = "origin";

/// What the local git repository says about itself; each field falls back to a
/// harmless value when the workspace is not a repository or git is missing.
#[derive(Debug, Clone)]
pub struct Repository {
    pub sha: String,
    /// `refs/heads/<branch>`, `refs/tags/<tag>`, or empty when detached.
    pub git_ref: String,
    /// `owner/name` from the URL of the remote `discover` was given.
    pub repository: String,
    pub owner: String,
    /// Who triggered the run: [`DEFAULT_ACTOR`] when discovered (git knows no such
    /// thing); the job source sets it (`exec -a`, a server's context).
    pub actor: String,
    pub server_url: String,
}

impl Repository {
    /// Reads the repository at `workdir`, named by the URL of its remote `remote`:
    /// straight from its `.git` folder when the layout is the plain one (no worktree, no
    /// config includes, HEAD on a branch), which starts no process; otherwise through git.
    pub fn discover(workdir: &Path, remote: &str) -> Repository {
        git_files::read(workdir, remote).unwrap_or_else(|| Self::discover_with_git(workdir, remote))
    }

    /// Asks git twice, at once (revision and ref; the remote's URL), so a run starts
    /// without waiting on a chain of git processes.
    pub fn discover_with_git(workdir: &Path, remote: &str) -> Repository {
        let git = |args: &[&str]| -> Option<String> {
            let out = Command::new("git")
                .args(args)
                .current_dir(workdir)
                .env("GIT_TERMINAL_PROMPT", "0")
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let url_key = format!("remote.{remote}.url");
        let (revision, url) = std::thread::scope(|scope| {
            let url = scope.spawn(|| git(&["config", "--get", &url_key]));
            let revision = git(&["rev-parse", "HEAD", "--symbolic-full-name", "HEAD"]);
            (revision, url.join().ok().flatten())
        });
        let mut lines = revision.as_deref().unwrap_or_default().lines();
        let sha = lines
            .next()
            .filter(|s| s.len() == 40)
            .map_or_else(|| "0".repeat(40), str::to_string);
        let git_ref = match lines.next() {
            Some(r) if r.starts_with("refs/") => r.to_string(),
            _ => git(&["describe", "--tags", "--exact-match", "HEAD"])
                .map(|t| format!("refs/tags/{t}"))
                .unwrap_or_default(),
        };
        let (server_url, repository) = named(workdir, url.as_deref());
        Repository {
            sha,
            git_ref,
            owner: owner_of(&repository),
            repository,
            actor: DEFAULT_ACTOR.to_string(),
            server_url,
        }
    }
}

/// (server URL, `owner/name`) from a remote's URL; without one (or one that names no
/// repository), `local/<folder name>` on github.com.
fn named(workdir: &Path, url: Option<&str>) -> (String, String) {
    url.and_then(parse_remote).unwrap_or_else(|| {
        let name = workdir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "repository".into());
        ("https://github.com".to_string(), format!("local/{name}"))
    })
}

fn owner_of(repository: &str) -> String {
    repository.split('/').next().unwrap_or_default().to_string()
}

/// The plain `.git` layout, read without starting git.
mod git_files {
    use std::path::Path;

    use super::{DEFAULT_ACTOR, Repository, named, owner_of};

    /// `None` whenever anything is unusual, so the caller asks git instead.
    pub(super) fn read(workdir: &Path, remote: &str) -> Option<Repository> {
        let git_dir = workdir.join(".git");
        if !git_dir.is_dir() || git_dir.join("commondir").exists() {
            return None;
        }
        let head = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
        let git_ref = head.trim().strip_prefix("ref: ")?.trim().to_string();
        let sha = resolve(&git_dir, &git_ref)?;
        let local = std::fs::read_to_string(git_dir.join("config")).ok()?;
        let url = setting(&local, &format!("remote \"{remote}\""), "url")?;
        let (server_url, repository) = named(workdir, url.as_deref());
        Some(Repository {
            sha,
            git_ref,
            actor: DEFAULT_ACTOR.to_string(),
            owner: owner_of(&repository),
            repository,
            server_url,
        })
    }

    /// The commit a branch points at: its loose ref, else `packed-refs`; an unborn
    /// branch gives the all-zero sha, as git's fallback path does.
    fn resolve(git_dir: &Path, git_ref: &str) -> Option<String> {
        if let Ok(sha) = std::fs::read_to_string(git_dir.join(git_ref)) {
            let sha = sha.trim();
            return (sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| sha.to_string());
        }
        let packed = std::fs::read_to_string(git_dir.join("packed-refs")).unwrap_or_default();
        let found = packed.lines().find_map(|line| {
            let (sha, name) = line.split_once(' ')?;
            (name.trim() == git_ref && sha.len() == 40).then(|| sha.to_string())
        });
        Some(found.unwrap_or_else(|| "0".repeat(40)))
    }

    /// The value of `key` in `[section]` of a git config file: `Some(None)` when unset,
    /// `None` when the file has includes (git would have to resolve them).
    fn setting(config: &str, section: &str, key: &str) -> Option<Option<String>> {
        let mut current = String::new();
        let mut value = None;
        for line in config.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = header.trim().to_string();
                if current.starts_with("include") {
                    return None;
                }
                continue;
            }
            if !current.eq_ignore_ascii_case(section) && current != section {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case(key) {
                let v = v.trim();
                if v.contains('\\') || (v.starts_with('"') != v.ends_with('"')) {
                    return None;
                }
                value = Some(v.trim_matches('"').to_string());
            }
        }
        Some(value)
    }
}

/// `https://host/owner/repo(.git)`, `git@host:owner/repo(.git)`, `ssh://git@host/owner/repo`
/// → (`https://host`, `owner/repo`).
fn parse_remote(url: &str) -> Option<(String, String)> {
    let url = url.trim_end_matches('/').trim_end_matches(".git");
    let (host, path) = if let Some(rest) = url.split_once("://").map(|(_, r)| r) {
        let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
        rest.split_once('/')?
    } else {
        let rest = url.rsplit_once('@').map_or(url, |(_, r)| r);
        rest.split_once(':')?
    };
    let host = host.split(':').next().unwrap_or(host);
    let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.len() < 2 {
        return None;
    }
    let name = parts.pop()?;
    let owner = parts.pop()?;
    Some((format!("https://{host}"), format!("{owner}/{name}")))
}

/// Everything about the run that does not change from job to job.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub repo: Repository,
    pub event_name: String,
    pub event: Value,
    pub event_path: PathBuf,
    pub workspace: PathBuf,
    pub run_id: String,
    pub run_number: String,
    /// Per-run scratch space: event file, tool cache, per-job temp folders.
    pub temp_root: PathBuf,
    /// The `github` context a job source gave (a Gitea task's `context`): its keys win
    /// over the ones built from [`Self::repo`], except `workspace`, `event_path` and `job`,
    /// which are this runner's.
    pub given_github: Option<Object>,
}

impl RunInfo {
    /// `refs/heads/x` → `x`; pull requests use `refs/pull/N/merge`.
    pub fn git_ref(&self) -> String {
        let pr_number = self
            .event
            .get("number")
            .or_else(|| self.event.get("pull_request").and_then(|p| p.get("number")));
        if let Some(n) = pr_number.filter(|_| self.event_name.starts_with("pull_request")) {
            return format!(
                "refs/pull/{}/merge",
                workflows::expression::to_display_string(n)
            );
        }
        if let Some(Value::String(r)) = self
            .event
            .get("ref")
            .filter(|r| r.as_str().is_some_and(|r| r.starts_with("refs/")))
        {
            return r.clone();
        }
        self.repo.git_ref.clone()
    }
}

fn ref_name_and_type(git_ref: &str) -> (String, &'static str) {
    if let Some(b) = git_ref.strip_prefix("refs/heads/") {
        (b.to_string(), "branch")
    } else if let Some(t) = git_ref.strip_prefix("refs/tags/") {
        (t.to_string(), "tag")
    } else if let Some(p) = git_ref.strip_prefix("refs/") {
        (p.to_string(), "branch")
    } else {
        (git_ref.to_string(), "")
    }
}

/// The `github` context of one job (GitHub's field names; `token` from `secrets.GITHUB_TOKEN`),
/// with the keys of [`RunInfo::given_github`] over it when a job source gave a context.
pub fn github_context(
    run: &RunInfo,
    workflow: &str,
    workflow_file: &str,
    job: &str,
    token: &str,
) -> Object {
    let git_ref = run.git_ref();
    let (ref_name, ref_type) = ref_name_and_type(&git_ref);
    let pr = run.event.get("pull_request");
    let branch_of = |side: &str| {
        pr.and_then(|p| p.get(side))
            .and_then(|s| s.get("ref"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let server = run.repo.server_url.trim_end_matches('/').to_string();
    let api = if server == "https://github.com" {
        "https://api.github.com".to_string()
    } else {
        format!("{server}/api/v1")
    };
    let mut g = Object::new();
    let mut put = |k: &str, v: Value| g.insert(k, v);
    put("action", Value::from(""));
    put("action_path", Value::from(""));
    put("action_ref", Value::from(""));
    put("action_repository", Value::from(""));
    put("actor", Value::from(run.repo.actor.as_str()));
    put("actor_id", Value::from("0"));
    put("api_url", Value::from(api.clone()));
    put("base_ref", Value::from(branch_of("base")));
    put("event", run.event.clone());
    put("event_name", Value::from(run.event_name.as_str()));
    put(
        "event_path",
        Value::from(run.event_path.display().to_string()),
    );
    put("graphql_url", Value::from(format!("{api}/graphql")));
    put("head_ref", Value::from(branch_of("head")));
    put("job", Value::from(job));
    put("ref", Value::from(git_ref.clone()));
    put("ref_name", Value::from(ref_name));
    put("ref_protected", Value::Bool(false));
    put("ref_type", Value::from(ref_type));
    put("repository", Value::from(run.repo.repository.as_str()));
    put("repository_id", Value::from("0"));
    put("repository_owner", Value::from(run.repo.owner.as_str()));
    put("repository_owner_id", Value::from("0"));
    put("retention_days", Value::from("0"));
    put("run_attempt", Value::from("1"));
    put("run_id", Value::from(run.run_id.as_str()));
    put("run_number", Value::from(run.run_number.as_str()));
    put("secret_source", Value::from("None"));
    put("server_url", Value::from(server));
    put("sha", Value::from(run.repo.sha.as_str()));
    put("token", Value::from(token));
    put("triggering_actor", Value::from(run.repo.actor.as_str()));
    put("workflow", Value::from(workflow));
    put(
        "workflow_ref",
        Value::from(format!("{}/{workflow_file}@{git_ref}", run.repo.repository)),
    );
    put("workflow_sha", Value::from(run.repo.sha.as_str()));
    put(
        "workspace",
        Value::from(run.workspace.display().to_string()),
    );
    if let Some(given) = &run.given_github {
        for (k, v) in given.iter() {
            if !matches!(k, "workspace" | "event_path" | "job") {
                g.insert(k, v.clone());
            }
        }
    }
    g
}

/// The `runner` context; `name` is the runner's name (`hybrid-runner` for `exec`).
pub fn runner_context(name: &str, temp: &Path, tool_cache: &Path, debug: bool) -> Object {
    let mut r = Object::new();
    r.insert("name", Value::from(name));
    r.insert("os", Value::from(runner_os()));
    r.insert("arch", Value::from(runner_arch()));
    r.insert("temp", Value::from(temp.display().to_string()));
    r.insert("tool_cache", Value::from(tool_cache.display().to_string()));
    r.insert("debug", Value::from(if debug { "1" } else { "" }));
    r.insert("environment", Value::from("self-hosted"));
    r
}

pub fn runner_os() -> &'static str {
    match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "macOS",
        "windows" => "Windows",
        other => other,
    }
}

pub fn runner_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "X64",
        "aarch64" => "ARM64",
        "arm" => "ARM",
        "x86" => "X86",
        other => other,
    }
}

/// The `GITHUB_*` and `RUNNER_*` variables GitHub sets for every step, from the contexts.
pub fn default_env(github: &Object, runner: &Object) -> Vec<(String, String)> {
    let text = |o: &Object, k: &str| {
        o.get(k)
            .map(workflows::expression::to_display_string)
            .unwrap_or_default()
    };
    let mut env = vec![
        ("CI".to_string(), "true".to_string()),
        ("GITHUB_ACTIONS".to_string(), "true".to_string()),
    ];
    for key in [
        "action",
        "action_path",
        "action_repository",
        "actor",
        "actor_id",
        "api_url",
        "base_ref",
        "event_name",
        "event_path",
        "graphql_url",
        "head_ref",
        "job",
        "ref",
        "ref_name",
        "ref_protected",
        "ref_type",
        "repository",
        "repository_id",
        "repository_owner",
        "repository_owner_id",
        "retention_days",
        "run_attempt",
        "run_id",
        "run_number",
        "server_url",
        "sha",
        "triggering_actor",
        "workflow",
        "workflow_ref",
        "workflow_sha",
        "workspace",
    ] {
        env.push((format!("GITHUB_{}", key.to_uppercase()), text(github, key)));
    }
    for key in [
        "name",
        "os",
        "arch",
        "temp",
        "tool_cache",
        "environment",
        "debug",
    ] {
        let v = text(runner, key);
        if key == "debug" && v.is_empty() {
            continue;
        }
        env.push((format!("RUNNER_{}", key.to_uppercase()), v));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remotes_parse_to_server_and_repository() {
        let cases = [
            (
                "https://github.com/nektos/act.git",
                ("https://github.com", "nektos/act"),
            ),
            (
                "git@github.com:nektos/act.git",
                ("https://github.com", "nektos/act"),
            ),
            (
                "ssh://git@gitea.example:2222/org/repo",
                ("https://gitea.example", "org/repo"),
            ),
            (
                "https://user:tok@gitea.example/sub/org/repo/",
                ("https://gitea.example", "org/repo"),
            ),
        ];
        for (url, (server, repo)) in cases {
            assert_eq!(
                parse_remote(url),
                Some((server.to_string(), repo.to_string())),
                "{url}"
            );
        }
        assert_eq!(parse_remote("/local/path"), None);
    }

    #[test]
    fn discovers_a_repository_with_two_git_calls() {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            assert!(
                Command::new("git")
                    .args(args)
                    .current_dir(dir.path())
                    .output()
                    .unwrap()
                    .status
                    .success()
            );
        };
        git(&["init", "-q", "-b", "trunk"]);
        git(&["config", "user.name", "Ada"]);
        git(&["config", "user.email", "ada@example.invalid"]);
        git(&["remote", "add", "origin", "git@gitea.example:org/app.git"]);
        git(&["commit", "-q", "--allow-empty", "-m", "x"]);
        let repo = Repository::discover(dir.path(), "origin");
        let through_git = Repository::discover_with_git(dir.path(), "origin");
        assert_eq!(repo.sha, through_git.sha);
        assert_eq!(repo.git_ref, through_git.git_ref);
        assert_eq!(repo.repository, through_git.repository);
        assert_eq!(repo.actor, through_git.actor);
        assert_eq!(repo.git_ref, "refs/heads/trunk");
        // Packed refs are read too, and agree with git.
        git(&["pack-refs", "--all"]);
        assert!(!dir.path().join(".git/refs/heads/trunk").exists());
        assert_eq!(
            Repository::discover(dir.path(), "origin").sha,
            through_git.sha
        );
        assert_eq!(repo.sha.len(), 40);
        assert_ne!(repo.sha, "0".repeat(40));
        assert_eq!(repo.repository, "org/app");
        assert_eq!(repo.server_url, "https://gitea.example");
        // git names no actor: act's default stands (`exec -a` changes it).
        assert_eq!(repo.actor, DEFAULT_ACTOR);
        // Another remote names the repository when asked for.
        git(&[
            "remote",
            "add",
            "upstream",
            "https://forge.example/up/stream.git",
        ]);
        for repo in [
            Repository::discover(dir.path(), "upstream"),
            Repository::discover_with_git(dir.path(), "upstream"),
        ] {
            assert_eq!(repo.repository, "up/stream");
            assert_eq!(repo.owner, "up");
            assert_eq!(repo.server_url, "https://forge.example");
        }
        // A remote that is not there leaves the folder's name.
        let missing = Repository::discover(dir.path(), "nowhere");
        assert!(missing.repository.starts_with("local/"), "{missing:?}");
    }

    #[test]
    fn ref_names_and_types() {
        assert_eq!(
            ref_name_and_type("refs/heads/main"),
            ("main".to_string(), "branch")
        );
        assert_eq!(ref_name_and_type("refs/tags/v1"), ("v1".to_string(), "tag"));
    }
}
