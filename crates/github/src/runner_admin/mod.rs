//! GitHub's REST API for self-hosted runners, as runner pool mode uses it (docs.github.com
//! "REST API endpoints for self-hosted runners" and "… for self-hosted runner groups"):
//!
//! - `GET {scope}/actions/runner-groups?per_page&page` → `{total_count, runner_groups: [{id,
//!   name, default, …}]}`; the default group's id is 1;
//! - `POST {scope}/actions/runners/generate-jitconfig` `{name, runner_group_id, labels,
//!   work_folder}` → 201 `{runner: {id, name, …}, encoded_jit_config}` (the runner's files,
//!   [`crate::JitConfig`]); 409 when a runner of that name exists;
//! - `GET {scope}/actions/runners?per_page&page` → `{total_count, runners: [{id, name, os,
//!   status, busy, labels: [{id, name, type}]}]}`, more pages named by the `Link` header;
//! - `DELETE {scope}/actions/runners/{id}` → 204.
//!
//! `{scope}` is `/repos/{owner}/{repo}` or `/orgs/{org}` under the API base of
//! [`GitHubUrl`]. The calls go through octocrab, which also authenticates: a PAT is sent as
//! `Authorization: Bearer`, and a GitHub App signs an RS256 JWT (`iss` = the App id, valid 9
//! minutes) to buy an installation access token (`POST /app/installations/{id}/access_tokens`
//! → `{token, expires_at}`, one hour), kept and bought again when less than 30 s of it are
//! left (octocrab `src/lib.rs` `installation_token`, `src/auth.rs` `create_jwt`). The answers
//! are read with this module's own types: octocrab's `SelfHostedRunner` requires `os` and
//! knows only the label types `read-only` and `custom`, so one unexpected runner would fail
//! every call of the pool. No token is ever put in an error or a log line.

use std::fmt;
use std::time::Duration;

use octocrab::Octocrab;
use serde::{Deserialize, Serialize};

use crate::registration::{GitHubUrl, Scope};

mod errors;

pub use errors::AdminError;
use errors::{Phase, github_status};

/// How many runners or groups one page asks for (GitHub's maximum).
const PER_PAGE: u32 = 100;
/// A bound on pages, so a server that always says "next" cannot loop us forever.
const MAX_PAGES: u32 = 1000;
/// The id of every repository's and organisation's default runner group.
pub const DEFAULT_GROUP_ID: u64 = 1;

/// How the pool authenticates to GitHub's REST API.
#[derive(Clone)]
pub enum AdminAuth {
    /// A personal access token: classic with `repo` (repository runners) or `admin:org`
    /// (organisation runners), or fine-grained with the matching permission.
    Pat(String),
    /// A GitHub App installation: its id, its private key (PEM) and the installation.
    App {
        app_id: u64,
        key_pem: String,
        installation_id: u64,
    },
}

impl fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminAuth::Pat(_) => f.write_str("Pat(..)"),
            AdminAuth::App {
                app_id,
                installation_id,
                ..
            } => f
                .debug_struct("App")
                .field("app_id", app_id)
                .field("installation_id", installation_id)
                .finish_non_exhaustive(),
        }
    }
}

/// A JIT runner GitHub made: its id and name, and its config (a secret: it holds the
/// runner's private key; decode it with [`crate::JitConfig::decode`]).
#[derive(Clone)]
pub struct Jit {
    pub runner_id: u64,
    pub name: String,
    pub encoded_jit_config: String,
}

impl fmt::Debug for Jit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jit")
            .field("runner_id", &self.runner_id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A self-hosted runner as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerInfo {
    pub id: u64,
    pub name: String,
    /// `online` or `offline`.
    pub status: String,
    pub busy: bool,
    pub labels: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct GroupsAnswer {
    #[serde(default)]
    runner_groups: Vec<GroupAnswer>,
}

#[derive(Debug, Deserialize)]
struct GroupAnswer {
    id: u64,
    name: String,
    #[serde(default)]
    is_hosted: bool,
}

#[derive(Debug, Deserialize)]
struct RunnerAnswer {
    id: u64,
    name: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    busy: bool,
    #[serde(default)]
    labels: Vec<LabelAnswer>,
}

#[derive(Debug, Deserialize)]
struct LabelAnswer {
    name: String,
}

#[derive(Debug, Deserialize)]
struct JitAnswer {
    runner: RunnerAnswer,
    encoded_jit_config: String,
}

#[derive(Debug, Serialize)]
struct JitRequest<'a> {
    name: &'a str,
    runner_group_id: u64,
    labels: &'a [String],
    work_folder: &'a str,
}

#[derive(Debug, Serialize)]
struct PageQuery {
    per_page: u32,
    page: u32,
}

impl From<RunnerAnswer> for RunnerInfo {
    fn from(r: RunnerAnswer) -> RunnerInfo {
        RunnerInfo {
            id: r.id,
            name: r.name,
            status: r.status,
            busy: r.busy,
            labels: r.labels.into_iter().map(|l| l.name).collect(),
        }
    }
}

/// The labels a pool's JIT runner should carry: `self-hosted`, `Linux` and the
/// architecture as actions/runner names them, then `extra` (without repeats, in any case).
/// GitHub's example request for generate-jitconfig passes such system labels explicitly.
pub fn jit_labels(extra: &[String]) -> Vec<String> {
    let mut labels: Vec<String> = [
        "self-hosted",
        "Linux",
        crate::registration::architecture_label(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for label in extra {
        if !labels.iter().any(|l| l.eq_ignore_ascii_case(label)) {
            labels.push(label.clone());
        }
    }
    labels
}

/// The REST client of one repository's or organisation's runners.
pub struct RunnerAdmin {
    crab: Octocrab,
    github: GitHubUrl,
    /// `/repos/O/R` or `/orgs/O`.
    scope_path: String,
    /// The App and installation ids, for App authentication.
    app: Option<(u64, u64)>,
}

impl fmt::Debug for RunnerAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunnerAdmin")
            .field("url", &self.github.url)
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

impl RunnerAdmin {
    /// A client for the runners of `github` (a repository or an organisation). Must be
    /// called inside a Tokio runtime, which then carries its connections; a rustls crypto
    /// provider should be installed first (else octocrab installs ring's for itself).
    pub fn new(github: &GitHubUrl, auth: AdminAuth) -> Result<RunnerAdmin, AdminError> {
        let scope_path = match &github.scope {
            Scope::Repository { owner, repo } => format!("/repos/{owner}/{repo}"),
            Scope::Organization { org } => format!("/orgs/{org}"),
            Scope::Enterprise { .. } => {
                return Err(AdminError::Setup(format!(
                    "{} is an enterprise; pool mode serves a repository (https://github.com/OWNER/REPO) or an organisation (https://github.com/OWNER)",
                    github.url
                )));
            }
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(AdminError::Setup(
                "the GitHub REST client must be made inside a Tokio runtime".to_string(),
            ));
        }
        let builder = Octocrab::builder()
            .base_uri(github.api.as_str())
            .map_err(|e| AdminError::Setup(format!("`{}` is not a URL: {e}", github.api)))?
            .set_connect_timeout(Some(Duration::from_secs(15)))
            .set_read_timeout(Some(Duration::from_secs(60)));
        let (crab, app) = match auth {
            AdminAuth::Pat(token) => (
                builder.personal_token(token.trim().to_string()).build(),
                None,
            ),
            AdminAuth::App {
                app_id,
                key_pem,
                installation_id,
            } => {
                let key = octocrab::EncodingKey::from_rsa_pem(key_pem.as_bytes()).map_err(|e| {
                    AdminError::Setup(format!(
                        "the GitHub App key (--app-key-file) is not an RSA private key in PEM form ({e}); use the .pem file GitHub made for the App"
                    ))
                })?;
                let app_crab = builder.app(app_id.into(), key).build();
                let crab = app_crab.and_then(|c| c.installation(installation_id.into()));
                (crab, Some((app_id, installation_id)))
            }
        };
        let crab = crab
            .map_err(|e| AdminError::Setup(format!("cannot set up the GitHub REST client: {e}")))?;
        Ok(RunnerAdmin {
            crab,
            github: github.clone(),
            scope_path,
            app,
        })
    }

    /// The id of the runner group named `name`: the default group (1) for `None` or
    /// `Default`, else looked up in the scope's groups (GitHub-hosted groups excluded).
    pub async fn runner_group_id(&self, name: Option<&str>) -> Result<u64, AdminError> {
        let Some(name) =
            name.filter(|n| !n.trim().is_empty() && !n.eq_ignore_ascii_case("Default"))
        else {
            return Ok(DEFAULT_GROUP_ID);
        };
        self.installation_token().await?;
        let route = format!("{}/actions/runner-groups", self.scope_path);
        let mut groups = Vec::new();
        for page in 1..=MAX_PAGES {
            let query = PageQuery {
                per_page: PER_PAGE,
                page,
            };
            let answer: GroupsAnswer = self
                .crab
                .get(&route, Some(&query))
                .await
                .map_err(|e| self.fail(Phase::RunnerGroups, e))?;
            let full = answer.runner_groups.len() as u32 >= PER_PAGE;
            groups.extend(answer.runner_groups.into_iter().filter(|g| !g.is_hosted));
            if !full {
                break;
            }
        }
        match groups
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(name.trim()))
        {
            Some(group) => Ok(group.id),
            None => Err(AdminError::NoSuchGroup {
                target: self.github.url.clone(),
                name: name.to_string(),
                known: groups
                    .iter()
                    .map(|g| g.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Makes an ephemeral JIT runner `name` in group `runner_group_id` with exactly
    /// `labels` (see [`jit_labels`]); `work_folder` is relative to the runner's folder
    /// (GitHub's default is `_work`).
    pub async fn generate_jitconfig(
        &self,
        name: &str,
        runner_group_id: u64,
        labels: &[String],
        work_folder: &str,
    ) -> Result<Jit, AdminError> {
        self.installation_token().await?;
        let route = format!("{}/actions/runners/generate-jitconfig", self.scope_path);
        let body = JitRequest {
            name,
            runner_group_id,
            labels,
            work_folder,
        };
        let answer: Result<JitAnswer, _> = self.crab.post(&route, Some(&body)).await;
        match answer {
            Ok(answer) => Ok(Jit {
                runner_id: answer.runner.id,
                name: answer.runner.name,
                encoded_jit_config: answer.encoded_jit_config,
            }),
            Err(e) if github_status(&e) == Some(409) => Err(AdminError::RunnerExists {
                target: self.github.url.clone(),
                name: name.to_string(),
            }),
            Err(e) => Err(self.fail(Phase::GenerateJit(name), e)),
        }
    }

    /// Every self-hosted runner of the scope, page by page.
    pub async fn list_runners(&self) -> Result<Vec<RunnerInfo>, AdminError> {
        self.installation_token().await?;
        let route = format!("{}/actions/runners", self.scope_path);
        let mut runners = Vec::new();
        for page in 1..=MAX_PAGES {
            let query = PageQuery {
                per_page: PER_PAGE,
                page,
            };
            let answer: octocrab::Page<RunnerAnswer> = self
                .crab
                .get(&route, Some(&query))
                .await
                .map_err(|e| self.fail(Phase::ListRunners, e))?;
            let more = answer.next.is_some() && !answer.items.is_empty();
            runners.extend(answer.items.into_iter().map(RunnerInfo::from));
            if !more {
                break;
            }
        }
        Ok(runners)
    }

    /// Deletes runner `id`; a runner GitHub no longer knows (404) counts as deleted.
    /// Returns whether it was still there.
    pub async fn delete_runner(&self, id: u64) -> Result<bool, AdminError> {
        self.installation_token().await?;
        let route = format!("{}/actions/runners/{id}", self.scope_path);
        let response = self
            .crab
            ._delete(route.as_str(), None::<&()>)
            .await
            .map_err(|e| self.fail(Phase::DeleteRunner(id), e))?;
        if response.status().as_u16() == 404 {
            return Ok(false);
        }
        octocrab::map_github_error(response)
            .await
            .map(|_| true)
            .map_err(|e| self.fail(Phase::DeleteRunner(id), e))
    }

    /// With App authentication, makes sure a fresh installation token is held, so that a
    /// refusal is reported as the token's, not as the call's.
    async fn installation_token(&self) -> Result<(), AdminError> {
        if self.app.is_some() {
            self.crab
                .installation_token()
                .await
                .map_err(|e| self.fail(Phase::InstallationToken, e))?;
        }
        Ok(())
    }

    fn fail(&self, phase: Phase<'_>, err: octocrab::Error) -> AdminError {
        errors::admin_error(&self.github, self.app, phase, &err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jit_labels_put_the_system_labels_first_without_repeats() {
        let labels = jit_labels(&["gpu".to_string(), "linux".to_string()]);
        assert_eq!(
            labels,
            [
                "self-hosted",
                "Linux",
                crate::registration::architecture_label(),
                "gpu"
            ]
        );
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let auth = AdminAuth::Pat("ghp_secret".to_string());
        assert!(!format!("{auth:?}").contains("ghp_secret"));
        let app = AdminAuth::App {
            app_id: 1,
            key_pem: "-----BEGIN RSA PRIVATE KEY-----".to_string(),
            installation_id: 2,
        };
        assert!(!format!("{app:?}").contains("PRIVATE"));
        let jit = Jit {
            runner_id: 3,
            name: "p-1".to_string(),
            encoded_jit_config: "c2VjcmV0".to_string(),
        };
        assert!(!format!("{jit:?}").contains("c2VjcmV0"));
    }

    #[test]
    fn enterprises_and_bad_keys_are_refused_before_any_call() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let _guard = runtime.enter();
        let ent = GitHubUrl::parse("https://github.com/enterprises/big").expect("a URL");
        let err = RunnerAdmin::new(&ent, AdminAuth::Pat("t".into())).expect_err("refused");
        assert!(err.to_string().contains("is an enterprise"), "{err}");
        let repo = GitHubUrl::parse("https://github.com/octo/hello").expect("a URL");
        let auth = AdminAuth::App {
            app_id: 1,
            key_pem: "not a key".into(),
            installation_id: 2,
        };
        let err = RunnerAdmin::new(&repo, auth).expect_err("refused");
        assert!(err.to_string().contains("--app-key-file"), "{err}");
    }
}
