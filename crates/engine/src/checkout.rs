//! `actions/checkout` for jobs from a server ([`CheckoutMode::Fetch`]): the workspace starts
//! empty, so the repository is fetched with the `git` CLI from `github.server_url`, as
//! `actions/checkout` does: `git init`, fetch the event's commit (depth 1 unless
//! `fetch-depth` says otherwise), check it out (on its branch when the event names one).
//!
//! Inputs honoured: `repository`, `ref`, `path`, `token`, `fetch-depth`. The token goes to
//! git as an `http.extraheader` on the command line of the fetch only: it is never written
//! to `.git/config` (so `persist-credentials` is always off) and never printed; the header
//! and the token are masked in every line of the job.
//!
//! [`CheckoutMode::Fetch`]: super::engine::CheckoutMode::Fetch

use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use workflows::expression::Value;

use super::events::{LogKind, Outcome, StepKey};
use super::job::{Frame, JobState};
use super::step::{ProcessOutcome, StepError};
use super::step_def::StepDef;
use hr_process::host::{HostError, OutputStream, ProcessSpec, run_process};

/// Why `actions/checkout` (served by the runner) failed: its inputs, or a `git` command.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error(
        "actions/checkout: repository {repository:?} is not owner/name; set the `repository` input"
    )]
    Repository { repository: String },
    #[error("actions/checkout: github.server_url is empty, so there is nowhere to fetch from")]
    NoServer,
    #[error("actions/checkout: fetch-depth {depth:?} is not a number (0 fetches all history)")]
    FetchDepth { depth: String },
    #[error(
        "actions/checkout: path {path:?} must be a folder inside the workspace {}",
        workspace.display()
    )]
    Path { path: String, workspace: PathBuf },
    #[error("actions/checkout: cannot create {}: {source}", dir.display())]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `git` could not be started.
    #[error("actions/checkout: {0}; install git")]
    Git(#[source] HostError),
    #[error("actions/checkout: cancelled")]
    Cancelled,
    /// A `git` command failed; `command` is its arguments as logged (the token hidden).
    #[error(
        "actions/checkout: `git {command}` failed (exit code {})",
        code.map_or_else(|| "none".to_string(), |c| c.to_string())
    )]
    GitFailed { command: String, code: Option<i32> },
    #[error("actions/checkout: checked out {commit}, not the event's commit {sha}")]
    WrongCommit { commit: String, sha: String },
}

/// What to fetch and where, from the step's inputs over the `github` context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutPlan {
    /// `<server_url>/<owner>/<repo>.git`.
    pub url: String,
    /// Where the repository goes (inside the workspace).
    pub dir: PathBuf,
    /// What `git fetch` asks for: a commit sha, a ref name, or `HEAD` (the default branch).
    pub fetch: String,
    /// The branch to create at the fetched commit (`-B`), or `None` for a detached HEAD.
    pub branch: Option<String>,
    /// The commit the event names, checked after the fetch when known.
    pub sha: Option<String>,
    /// `None` = the whole history (`fetch-depth: 0`).
    pub depth: Option<u32>,
    pub token: String,
}

/// Builds the plan: `with` are the step's evaluated inputs, `github` the job's context.
pub fn plan(
    with: &[(String, String)],
    github: &Value,
    workspace: &Path,
) -> Result<CheckoutPlan, CheckoutError> {
    let input = |name: &str| {
        with.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let context = |name: &str| {
        github
            .get(name)
            .map(workflows::expression::to_display_string)
            .unwrap_or_default()
    };
    let own_repository = context("repository");
    let repository = input("repository").unwrap_or_else(|| own_repository.clone());
    if repository.split('/').filter(|p| !p.is_empty()).count() != 2 {
        return Err(CheckoutError::Repository { repository });
    }
    let server = context("server_url").trim_end_matches('/').to_string();
    if server.is_empty() {
        return Err(CheckoutError::NoServer);
    }
    let depth = match input("fetch-depth") {
        None => Some(1),
        Some(d) => match d.parse::<u32>() {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(_) => return Err(CheckoutError::FetchDepth { depth: d }),
        },
    };
    let dir = match input("path") {
        None => workspace.to_path_buf(),
        Some(p) => {
            let rel = Path::new(&p);
            if rel.is_absolute() || rel.components().any(|c| c == Component::ParentDir) {
                return Err(CheckoutError::Path {
                    path: p,
                    workspace: workspace.to_path_buf(),
                });
            }
            workspace.join(rel)
        }
    };
    let same_repository = repository.eq_ignore_ascii_case(&own_repository);
    let (fetch, branch, sha) = match input("ref") {
        Some(r) if is_sha(&r) => (r.to_ascii_lowercase(), None, Some(r.to_ascii_lowercase())),
        Some(r) => (r.clone(), branch_of(&r), None),
        None if same_repository && is_sha(&context("sha")) => {
            let sha = context("sha").to_ascii_lowercase();
            (sha.clone(), branch_of(&context("ref")), Some(sha))
        }
        None => ("HEAD".to_string(), None, None),
    };
    Ok(CheckoutPlan {
        url: format!("{server}/{repository}.git"),
        dir,
        fetch,
        branch,
        sha,
        depth,
        token: input("token").unwrap_or_else(|| context("token")),
    })
}

fn is_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `refs/heads/x` → `x`; a plain name is taken for a branch too (as `actions/checkout`
/// creates a local branch for it); tags, pull refs and others check out detached.
fn branch_of(r: &str) -> Option<String> {
    if let Some(b) = r.strip_prefix("refs/heads/") {
        return Some(b.to_string());
    }
    (!r.starts_with("refs/") && !r.is_empty() && r != "HEAD").then(|| r.to_string())
}

/// The `AUTHORIZATION` header value git sends: `basic base64(x-access-token:TOKEN)`.
pub fn auth_header(token: &str) -> String {
    format!("AUTHORIZATION: {}", authorization(token))
}

/// The `Authorization` value the task token is sent as (`basic` of `x-access-token:<token>`,
/// as actions/checkout sends it).
pub fn authorization(token: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
    format!("basic {encoded}")
}

impl JobState<'_> {
    /// Fetches and checks out the repository for a `uses: actions/checkout` step.
    pub(super) async fn run_checkout(
        &mut self,
        frame: &Frame,
        def: &StepDef,
        key: &StepKey,
    ) -> Result<ProcessOutcome, StepError> {
        let with = frame
            .scope
            .string_map(&def.with, &def.with_inserts)
            .map_err(StepError::evaluate("with"))?;
        let github = frame.scope.get("github").cloned().unwrap_or(Value::Null);
        let plan = plan(&with, &github, &self.engine.run.workspace)?;
        let header = (!plan.token.is_empty()).then(|| auth_header(&plan.token));
        if let Some(header) = &header {
            self.masker.add(&plan.token);
            self.masker.add(header);
        }
        std::fs::create_dir_all(&plan.dir).map_err(|source| CheckoutError::CreateDir {
            dir: plan.dir.clone(),
            source,
        })?;
        self.note(
            Some(key),
            LogKind::Runner,
            &format!(
                "Syncing repository {} into {}",
                plan.url,
                plan.dir.display()
            ),
        );
        let dir = plan.dir.display().to_string();
        if !plan.dir.join(".git").exists() {
            self.git(
                frame,
                key,
                &[],
                &["-c", "init.defaultBranch=main", "init", "-q", &dir],
            )
            .await?;
        }
        self.git(
            frame,
            key,
            &[],
            &["-C", &dir, "config", "remote.origin.url", &plan.url],
        )
        .await?;
        // Protocol v2 lets the server hand out a commit by its sha, as actions/checkout asks.
        let mut fetch: Vec<String> = [
            "-c",
            "protocol.version=2",
            "-C",
            &dir,
            "fetch",
            "--no-tags",
            "--prune",
        ]
        .map(String::from)
        .to_vec();
        fetch.push("--no-recurse-submodules".into());
        if let Some(depth) = plan.depth {
            fetch.push(format!("--depth={depth}"));
        }
        fetch.extend(["origin".to_string(), plan.fetch.clone()]);
        let extra_header = header.as_ref().map(|h| format!("http.extraheader={h}"));
        let secret_args: Vec<&str> = match &extra_header {
            Some(h) => vec!["-c", h.as_str()],
            None => Vec::new(),
        };
        let fetch_args: Vec<&str> = fetch.iter().map(String::as_str).collect();
        let fetched = self.git(frame, key, &secret_args, &fetch_args).await;
        if let Err(e) = fetched {
            // A server that refuses to serve a commit by its sha (no protocol v2) still
            // serves the branch; its whole history, as the commit may be behind the tip.
            let Some(branch) = plan.branch.as_ref().filter(|_| plan.sha.is_some()) else {
                return Err(e.into());
            };
            self.note(
                Some(key),
                LogKind::Runner,
                &format!(
                    "fetching the commit by its sha failed; fetching the history of branch {branch}"
                ),
            );
            fetch.retain(|a| !a.starts_with("--depth="));
            let last = fetch.len() - 1;
            fetch[last] = format!("refs/heads/{branch}");
            let fetch_args: Vec<&str> = fetch.iter().map(String::as_str).collect();
            self.git(frame, key, &secret_args, &fetch_args).await?;
        }
        let target = plan.sha.clone().unwrap_or_else(|| "FETCH_HEAD".to_string());
        let mut checkout = vec!["-c", "advice.detachedHead=false", "-C", &dir, "checkout"];
        checkout.extend(["--force", "-q"]);
        match &plan.branch {
            Some(branch) => checkout.extend(["-B", branch.as_str(), target.as_str()]),
            None => checkout.extend(["--detach", target.as_str()]),
        }
        self.git(frame, key, &[], &checkout).await?;
        let head = self
            .git(
                frame,
                key,
                &[],
                &["-C", &dir, "log", "-1", "--format=%H %s"],
            )
            .await?;
        let commit = head.split(' ').next().unwrap_or_default().to_string();
        if let Some(sha) = &plan.sha
            && !commit.eq_ignore_ascii_case(sha)
        {
            return Err(CheckoutError::WrongCommit {
                commit,
                sha: sha.clone(),
            }
            .into());
        }
        let git_ref = plan
            .branch
            .as_ref()
            .map(|b| format!("refs/heads/{b}"))
            .unwrap_or_else(|| plan.fetch.clone());
        Ok(ProcessOutcome {
            outcome: Some(Outcome::Success),
            outputs: vec![("commit".into(), commit), ("ref".into(), git_ref)],
            state: Vec::new(),
        })
    }

    /// Runs `git <secret_args> <args>`, logging the command (without `secret_args`) and
    /// its output; returns its stdout, or why it failed.
    async fn git(
        &mut self,
        frame: &Frame,
        key: &StepKey,
        secret_args: &[&str],
        args: &[&str],
    ) -> Result<String, CheckoutError> {
        let shown = if secret_args.is_empty() {
            args.join(" ")
        } else {
            format!("-c http.extraheader=*** {}", args.join(" "))
        };
        self.note(Some(key), LogKind::Runner, &format!("[command]git {shown}"));
        let mut env = self.engine.host_env.clone();
        env.push(("GIT_TERMINAL_PROMPT".into(), "0".into()));
        env.push(("GCM_INTERACTIVE".into(), "never".into()));
        let spec = ProcessSpec {
            program: "git".into(),
            args: secret_args
                .iter()
                .chain(args)
                .map(|a| a.to_string())
                .collect(),
            env,
            cwd: self.engine.run.workspace.clone(),
            timeout: None,
        };
        let token = self.process_token(frame);
        let mut stdout = String::new();
        let exit = {
            let (job, sink, masker) = (&self.key, &self.engine.sink, &self.masker);
            let mut on_line = |stream: OutputStream, line: &str| {
                if stream == OutputStream::Stdout {
                    stdout.push_str(line);
                    stdout.push('\n');
                }
                sink.send(super::events::Event::Log {
                    job: job.clone(),
                    step: Some(key.clone()),
                    kind: match stream {
                        OutputStream::Stdout => LogKind::Stdout,
                        OutputStream::Stderr => LogKind::Stderr,
                    },
                    line: masker.mask(line).into_owned(),
                });
            };
            run_process(&spec, self.engine.stop, &mut on_line, &token).await
        };
        let exit = exit.map_err(CheckoutError::Git)?;
        if exit.cancelled {
            return Err(CheckoutError::Cancelled);
        }
        if !exit.success() {
            return Err(CheckoutError::GitFailed {
                command: shown,
                code: exit.code,
            });
        }
        Ok(stdout.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workflows::expression::Object;

    fn github(pairs: &[(&str, &str)]) -> Value {
        let mut o = Object::new();
        for (k, v) in pairs {
            o.insert(*k, Value::from(*v));
        }
        Value::object(o)
    }

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn plans_the_event_commit_on_its_branch_with_depth_one() {
        let ctx = github(&[
            ("server_url", "https://gitea.example/"),
            ("repository", "org/app"),
            ("sha", SHA),
            ("ref", "refs/heads/main"),
            ("token", "tok"),
        ]);
        let plan = plan(&[], &ctx, Path::new("/w")).unwrap();
        assert_eq!(plan.url, "https://gitea.example/org/app.git");
        assert_eq!(plan.fetch, SHA);
        assert_eq!(plan.sha.as_deref(), Some(SHA));
        assert_eq!(plan.branch.as_deref(), Some("main"));
        assert_eq!(plan.depth, Some(1));
        assert_eq!(plan.dir, PathBuf::from("/w"));
        assert_eq!(plan.token, "tok");
    }

    #[test]
    fn inputs_override_repository_ref_path_depth_and_token() {
        let ctx = github(&[
            ("server_url", "file:///srv"),
            ("repository", "org/app"),
            ("sha", SHA),
            ("ref", "refs/tags/v1"),
            ("token", "tok"),
        ]);
        let with = [
            ("repository".to_string(), "org/lib".to_string()),
            ("ref".to_string(), "refs/tags/v2".to_string()),
            ("path".to_string(), "deps/lib".to_string()),
            ("fetch-depth".to_string(), "0".to_string()),
            ("token".to_string(), "other".to_string()),
        ];
        let plan = plan(&with, &ctx, Path::new("/w")).unwrap();
        assert_eq!(plan.url, "file:///srv/org/lib.git");
        assert_eq!(plan.fetch, "refs/tags/v2");
        assert_eq!(plan.branch, None);
        assert_eq!(plan.sha, None);
        assert_eq!(plan.depth, None);
        assert_eq!(plan.dir, PathBuf::from("/w/deps/lib"));
        assert_eq!(plan.token, "other");
        // Another repository without a ref: its default branch.
        let plan2 = super::plan(&with[..1], &ctx, Path::new("/w")).unwrap();
        assert_eq!(plan2.fetch, "HEAD");
    }

    #[test]
    fn refuses_paths_outside_the_workspace_and_bad_depths() {
        let ctx = github(&[("server_url", "https://g"), ("repository", "o/r")]);
        for path in ["../x", "/etc"] {
            let with = [("path".to_string(), path.to_string())];
            assert!(plan(&with, &ctx, Path::new("/w")).is_err(), "{path}");
        }
        let with = [("fetch-depth".to_string(), "deep".to_string())];
        assert!(
            plan(&with, &ctx, Path::new("/w"))
                .unwrap_err()
                .to_string()
                .contains("fetch-depth")
        );
    }

    #[test]
    fn errors_keep_their_wording() {
        let e = CheckoutError::GitFailed {
            command: "-C /w fetch".into(),
            code: Some(128),
        };
        assert_eq!(
            e.to_string(),
            "actions/checkout: `git -C /w fetch` failed (exit code 128)"
        );
        let e = CheckoutError::GitFailed {
            command: "log".into(),
            code: None,
        };
        assert_eq!(
            e.to_string(),
            "actions/checkout: `git log` failed (exit code none)"
        );
        let ctx = github(&[("server_url", "https://g"), ("repository", "o/r")]);
        let with = [("path".to_string(), "../x".to_string())];
        assert_eq!(
            plan(&with, &ctx, Path::new("/w")).unwrap_err().to_string(),
            "actions/checkout: path \"../x\" must be a folder inside the workspace /w"
        );
        let with = [("repository".to_string(), "solo".to_string())];
        assert_eq!(
            plan(&with, &ctx, Path::new("/w")).unwrap_err().to_string(),
            "actions/checkout: repository \"solo\" is not owner/name; set the `repository` input"
        );
    }

    #[test]
    fn header_is_basic_auth_of_x_access_token() {
        // base64("x-access-token:abc") = eC1hY2Nlc3MtdG9rZW46YWJj
        assert_eq!(
            auth_header("abc"),
            "AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46YWJj"
        );
    }
}
