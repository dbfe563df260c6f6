//! What a `uses:` points at: a local directory, a repository at a ref, or a Docker image;
//! and the same for reusable workflows (`jobs.<id>.uses`). Parsing follows GitHub's rules.

use std::fmt;

use crate::error::{ActionError, Result};

/// The target of a step's `uses:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionRef {
    /// `./path` relative to the workspace (repository root), kept as written
    /// (`./`, `./.github/actions/x`); join it onto the workspace.
    Local { path: String },
    /// `owner/repo[/path]@ref`, or `https://host/owner/repo[/path]@ref` (Gitea's and
    /// Forgejo's absolute form), whose `host` is `https://host`, where it is fetched from
    /// instead of the default actions URL.
    Remote {
        owner: String,
        repo: String,
        path: Option<String>,
        git_ref: String,
        host: Option<String>,
    },
    /// `docker://image`.
    Docker { image: String },
    /// `$/path`: GitHub's self-repository reference (changelog 2026-07-30), the workflow's
    /// own repository at the commit that is running, found without a checkout. The runner
    /// rewrites it to `{repository}/{path}@{workflow_sha}` (actions/runner
    /// `ActionManager.ResolveSelfRepositoryReferences`); locally that commit is the working
    /// tree being run, so it is read from there. `path` is kept without the `$/`.
    SelfRepository { path: String },
}

impl ActionRef {
    /// Parses a step's `uses:` value.
    pub fn parse(uses: &str) -> Result<ActionRef> {
        let invalid = |why: &str| ActionError::InvalidReference {
            uses: uses.to_string(),
            why: why.to_string(),
        };
        let text = uses.trim();
        if text.is_empty() {
            return Err(invalid(
                "it is empty; write `owner/repo@ref`, `./path/to/action` or `docker://image`",
            ));
        }
        if let Some(image) = text.strip_prefix("docker://") {
            if image.is_empty() || image.chars().any(char::is_whitespace) {
                return Err(invalid(
                    "`docker://` must be followed by an image name such as `docker://alpine:3`",
                ));
            }
            return Ok(ActionRef::Docker {
                image: image.to_string(),
            });
        }
        if let Some(path) = self_repository_path(text).map_err(|why| invalid(&why))? {
            return Ok(ActionRef::SelfRepository { path });
        }
        if text.starts_with("./") || text.starts_with(".\\") {
            check_local_path(text).map_err(|why| invalid(&why))?;
            return Ok(ActionRef::Local {
                path: text.replace('\\', "/"),
            });
        }
        let (host, text) = split_host(text).map_err(|why| invalid(&why))?;
        let (owner, repo, rest, git_ref) = split_remote(text).map_err(|why| invalid(&why))?;
        Ok(ActionRef::Remote {
            owner,
            repo,
            path: (!rest.is_empty()).then_some(rest),
            git_ref,
            host,
        })
    }
}

/// The path of a `$/path` reference (`TryParseSelfRepository` of actions/runner: leading
/// slashes after `$/` are dropped; nothing after them is not a reference), checked like a
/// local path. `None` when `text` does not start with `$/`.
fn self_repository_path(text: &str) -> Result<Option<String>, String> {
    let Some(rest) = text.strip_prefix("$/") else {
        return Ok(None);
    };
    let path = rest.trim_start_matches('/');
    if path.is_empty() {
        return Err(
            "`$/` must be followed by a path in this repository, like `$/.github/actions/build`"
                .into(),
        );
    }
    if path.contains('@') {
        return Err("a `$/` reference has no `@ref`: it always names the commit that is running; drop the `@...`".into());
    }
    check_local_path(&format!("./{path}"))?;
    Ok(Some(path.to_string()))
}

/// `http(s)://host/rest` → (`Some(http(s)://host)`, `rest`), as act splits it
/// (`newRemoteAction` in act's `step_action_remote.go`: the host is the first segment,
/// the rest an ordinary `owner/repo[/path]@ref`); anything else is returned as it is.
/// act_runner also takes `ssh://[user@]host[:port]/owner/repo@ref`, fetched with git over SSH
/// (the runner's own keys).
fn split_host(text: &str) -> Result<(Option<String>, &str), String> {
    for scheme in ["https://", "http://", "ssh://"] {
        if let Some(after) = text.strip_prefix(scheme) {
            let Some((host, rest)) = after.split_once('/') else {
                return Err(format!(
                    "an action URL needs the repository after the host: write `{scheme}host/owner/repo@ref`"
                ));
            };
            let ssh = scheme == "ssh://";
            let plain = |c: char| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_') || ssh && c == '@'
            };
            if host.is_empty() || !host.chars().all(plain) {
                return Err(format!(
                    "`{host}` is not a host name; write `{scheme}host[:port]/owner/repo@ref`"
                ));
            }
            return Ok((Some(format!("{scheme}{host}")), rest));
        }
    }
    Ok((None, text))
}

impl fmt::Display for ActionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActionRef::Local { path } => f.write_str(path),
            ActionRef::Remote {
                owner,
                repo,
                path,
                git_ref,
                host,
            } => {
                if let Some(host) = host {
                    write!(f, "{host}/")?;
                }
                match path {
                    Some(path) => write!(f, "{owner}/{repo}/{path}@{git_ref}"),
                    None => write!(f, "{owner}/{repo}@{git_ref}"),
                }
            }
            ActionRef::Docker { image } => write!(f, "docker://{image}"),
            ActionRef::SelfRepository { path } => write!(f, "$/{path}"),
        }
    }
}

/// The target of a job's `uses:` (a reusable workflow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowRef {
    /// `./.github/workflows/x.yml`, kept as written; also `$/.github/workflows/x.yml`
    /// (GitHub's self-repository form, the same file at the commit that is running),
    /// kept as `./...`.
    Local { path: String },
    /// `owner/repo/.github/workflows/x.yml@ref`; `path` is `.github/workflows/x.yml`.
    /// Gitea's and Forgejo's runners also take `https://host/owner/repo/.gitea/workflows/x.yml@ref`
    /// (act's `reusable_workflow.go`), fetched from `host`, and their own folders.
    Remote {
        owner: String,
        repo: String,
        path: String,
        git_ref: String,
        host: Option<String>,
    },
}

impl WorkflowRef {
    /// Parses a job's `uses:` value.
    pub fn parse(uses: &str) -> Result<WorkflowRef> {
        let invalid = |why: &str| ActionError::InvalidReference {
            uses: uses.to_string(),
            why: why.to_string(),
        };
        let text = uses.trim();
        if text.is_empty() {
            return Err(invalid(
                "it is empty; write `./.github/workflows/file.yml` or `owner/repo/.github/workflows/file.yml@ref`",
            ));
        }
        if let Some(path) = self_repository_path(text).map_err(|why| invalid(&why))? {
            check_workflow_path(&path).map_err(|why| invalid(&why))?;
            return Ok(WorkflowRef::Local {
                path: format!("./{path}"),
            });
        }
        if let Some(path) = text.strip_prefix("./") {
            if path.contains('@') {
                return Err(invalid(
                    "a local reusable workflow has no `@ref`: it is always read from the same commit as the caller; drop the `@...`",
                ));
            }
            check_workflow_path(path).map_err(|why| invalid(&why))?;
            return Ok(WorkflowRef::Local {
                path: text.to_string(),
            });
        }
        let (host, text) = split_host(text).map_err(|why| invalid(&why))?;
        let (owner, repo, path, git_ref) = split_remote(text).map_err(|why| invalid(&why))?;
        check_workflow_path(&path).map_err(|why| invalid(&why))?;
        Ok(WorkflowRef::Remote {
            owner,
            repo,
            path,
            git_ref,
            host,
        })
    }
}

impl fmt::Display for WorkflowRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkflowRef::Local { path } => f.write_str(path),
            WorkflowRef::Remote {
                owner,
                repo,
                path,
                git_ref,
                host,
            } => {
                if let Some(host) = host {
                    write!(f, "{host}/")?;
                }
                write!(f, "{owner}/{repo}/{path}@{git_ref}")
            }
        }
    }
}

/// `owner/repo[/path]@ref` → its four parts (path empty when absent).
fn split_remote(text: &str) -> Result<(String, String, String, String), String> {
    let Some((name, git_ref)) = text.split_once('@') else {
        return Err(
            "a repository reference needs a version: write `owner/repo@ref` (a tag such as `v4`, a branch or a commit sha), or `./path` for an action in this repository"
                .to_string(),
        );
    };
    if git_ref.contains('@') {
        return Err("it contains more than one `@`; write `owner/repo[/path]@ref`".to_string());
    }
    if git_ref.is_empty() || git_ref.chars().any(char::is_whitespace) || git_ref.starts_with('-') {
        return Err(
            "the part after `@` must be a tag, branch or commit sha such as `v4`".to_string(),
        );
    }
    let mut segments = name.split('/');
    let owner = segments.next().unwrap_or_default();
    let repo = segments.next().unwrap_or_default();
    let rest: Vec<&str> = segments.collect();
    if owner.is_empty() || repo.is_empty() {
        return Err(
            "expected `owner/repo[/path]@ref`: both the owner and the repository name are needed"
                .to_string(),
        );
    }
    for part in [owner, repo] {
        if part == "." || part == ".." || part.starts_with('-') || part.contains('\\') {
            return Err(format!("`{part}` is not a valid owner or repository name"));
        }
    }
    if rest.iter().any(|s| s.is_empty() || *s == "..") {
        return Err(
            "the path inside the repository has an empty or `..` segment; write `owner/repo/sub/dir@ref`"
                .to_string(),
        );
    }
    Ok((
        owner.to_string(),
        repo.to_string(),
        rest.join("/"),
        git_ref.to_string(),
    ))
}

/// A local action path may not climb out of the workspace.
fn check_local_path(text: &str) -> Result<(), String> {
    let mut depth: i64 = 0;
    for segment in text.split(['/', '\\']) {
        match segment {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            return Err(
                "a local action must live inside the repository; remove the `..` that leaves it"
                    .to_string(),
            );
        }
    }
    Ok(())
}

/// GitHub only runs reusable workflows stored directly in `.github/workflows/`.
fn check_workflow_path(path: &str) -> Result<(), String> {
    // GitHub's folder, and Gitea's and Forgejo's, whose runners read called workflows from
    // them (the loader refuses the latter in a workflow read as GitHub).
    let folder = [
        ".github/workflows/",
        ".gitea/workflows/",
        ".forgejo/workflows/",
    ]
    .iter()
    .find_map(|f| path.strip_prefix(f));
    let Some(file) = folder else {
        return Err(
            "a reusable workflow must be a file in `.github/workflows/`, e.g. `./.github/workflows/build.yml` or `owner/repo/.github/workflows/build.yml@v1`"
                .to_string(),
        );
    };
    if file.is_empty() || file.contains('/') {
        return Err(
            "a reusable workflow must sit directly in `.github/workflows/` (no subdirectories)"
                .to_string(),
        );
    }
    if !(file.ends_with(".yml") || file.ends_with(".yaml")) {
        return Err("a reusable workflow file must end in `.yml` or `.yaml`".to_string());
    }
    Ok(())
}

/// Actions the runner serves itself instead of fetching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// `actions/checkout` (any ref): in `exec` the workspace already is the repository.
    Checkout,
}

/// The built-in that replaces `action`, if any.
pub fn builtin(action: &ActionRef) -> Option<Builtin> {
    match action {
        ActionRef::Remote {
            owner,
            repo,
            path: None,
            ..
        } if owner.eq_ignore_ascii_case("actions") && repo.eq_ignore_ascii_case("checkout") => {
            Some(Builtin::Checkout)
        }
        _ => None,
    }
}
