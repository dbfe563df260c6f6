//! Why a REST call of runner pool mode failed: [`AdminError`], one variant per phase, each
//! with what GitHub answered and the remedy, which depends on the status, the phase, the
//! scope (repository or organisation) and the authentication (PAT or GitHub App). No
//! token is ever part of it: octocrab's errors and GitHub's messages do not carry it.

use crate::registration::{GitHubUrl, Scope};

/// Why a REST call for the pool failed; each variant names the phase, and `detail` says
/// what GitHub answered and what to do.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Setup(String),
    #[error(
        "cannot get an installation access token for GitHub App {app_id}, installation {installation_id}: {detail}"
    )]
    InstallationToken {
        app_id: u64,
        installation_id: u64,
        status: Option<u16>,
        detail: String,
    },
    #[error("cannot read the runner groups of {target}: {detail}")]
    RunnerGroups {
        target: String,
        status: Option<u16>,
        detail: String,
    },
    #[error(
        "{target} has no self-hosted runner group named \"{name}\"; the groups are: {known}; pass one of them to --runner-group"
    )]
    NoSuchGroup {
        target: String,
        name: String,
        known: String,
    },
    #[error(
        "a runner named \"{name}\" already exists at {target} (HTTP 409); delete it (Settings > Actions > Runners) or choose another --name-prefix"
    )]
    RunnerExists { target: String, name: String },
    #[error("cannot create the JIT runner \"{name}\" at {target}: {detail}")]
    GenerateJit {
        target: String,
        name: String,
        status: Option<u16>,
        detail: String,
    },
    #[error("cannot list the runners of {target}: {detail}")]
    ListRunners {
        target: String,
        status: Option<u16>,
        detail: String,
    },
    #[error("cannot delete runner {id} at {target}: {detail}")]
    DeleteRunner {
        target: String,
        id: u64,
        status: Option<u16>,
        detail: String,
    },
}

impl AdminError {
    /// The HTTP status GitHub answered, when it answered one.
    pub fn status(&self) -> Option<u16> {
        match self {
            AdminError::InstallationToken { status, .. }
            | AdminError::RunnerGroups { status, .. }
            | AdminError::GenerateJit { status, .. }
            | AdminError::ListRunners { status, .. }
            | AdminError::DeleteRunner { status, .. } => *status,
            AdminError::RunnerExists { .. } => Some(409),
            AdminError::Setup(_) | AdminError::NoSuchGroup { .. } => None,
        }
    }
}

/// The call that failed, with what it was about.
#[derive(Debug, Clone, Copy)]
pub(super) enum Phase<'a> {
    InstallationToken,
    RunnerGroups,
    GenerateJit(&'a str),
    ListRunners,
    DeleteRunner(u64),
}

/// The status of an error GitHub answered.
pub(super) fn github_status(err: &octocrab::Error) -> Option<u16> {
    match err {
        octocrab::Error::GitHub { source, .. } => Some(source.status_code.as_u16()),
        _ => None,
    }
}

/// `err` of `phase` at `github`, authenticated as App `app` (id, installation) or by PAT.
pub(super) fn admin_error(
    github: &GitHubUrl,
    app: Option<(u64, u64)>,
    phase: Phase<'_>,
    err: &octocrab::Error,
) -> AdminError {
    let status = github_status(err);
    let detail = detail(github, app.is_some(), phase, err);
    let target = github.url.clone();
    match phase {
        Phase::InstallationToken => {
            let (app_id, installation_id) = app.unwrap_or_default();
            AdminError::InstallationToken {
                app_id,
                installation_id,
                status,
                detail,
            }
        }
        Phase::RunnerGroups => AdminError::RunnerGroups {
            target,
            status,
            detail,
        },
        Phase::GenerateJit(name) => AdminError::GenerateJit {
            target,
            name: name.to_string(),
            status,
            detail,
        },
        Phase::ListRunners => AdminError::ListRunners {
            target,
            status,
            detail,
        },
        Phase::DeleteRunner(id) => AdminError::DeleteRunner {
            target,
            id,
            status,
            detail,
        },
    }
}

/// What GitHub answered and what to do about it.
fn detail(github: &GitHubUrl, app: bool, phase: Phase<'_>, err: &octocrab::Error) -> String {
    let (status, message) = match err {
        octocrab::Error::GitHub { source, .. } => {
            let mut message = source.message.clone();
            for e in source.errors.iter().flatten() {
                message.push_str(&format!("; {e}"));
            }
            (source.status_code.as_u16(), crate::excerpt(&message))
        }
        octocrab::Error::Hyper { .. } | octocrab::Error::Service { .. } => {
            return format!(
                "cannot reach {} ({err}); check the URL, the network and any proxy",
                github.api
            );
        }
        octocrab::Error::JWT { .. } => {
            return format!("cannot sign the App's JWT ({err}); check --app-key-file");
        }
        other => return format!("GitHub answered something unexpected: {other}"),
    };
    let org = matches!(github.scope, Scope::Organization { .. });
    let scope = if org { "`admin:org`" } else { "`repo`" };
    let permission = if org {
        "the organisation permission \"Self-hosted runners: read and write\""
    } else {
        "the repository permission \"Administration: read and write\""
    };
    let token = matches!(phase, Phase::InstallationToken);
    let remedy = match (status, app) {
        (401, _) if token => "the App's JWT was refused: check --app-id and --app-key-file (the App's private key), and that this host's clock is right".to_string(),
        (403 | 404, _) if token => "check --installation-id and that the App is installed on this repository or organisation".to_string(),
        (401, true) => "the installation token was refused: check --app-id, --app-key-file and --installation-id".to_string(),
        (401, false) => format!("the token was refused: check --pat-file (expired and revoked tokens are refused too); a PAT needs the `repo` scope for a repository runner or `admin:org` for an organization's (here: {scope})"),
        (403, true) => format!("the App may not manage these runners: give it {permission} and accept the new permissions on its installation"),
        (403, false) => format!("the token may not manage these runners: a classic PAT needs {scope}, a fine-grained one {permission}; if GitHub's message speaks of a rate limit, wait"),
        (404, _) if matches!(phase, Phase::GenerateJit(_)) => "check the owner and repository in --github and the runner group; GitHub also answers 404 when the token cannot see them".to_string(),
        (404, _) => format!("check the owner and repository in --github; GitHub also answers 404 when the token cannot see them (a classic PAT needs {scope}; an App must be installed there)"),
        (422, _) => "GitHub refused the request's values".to_string(),
        (500..=599, _) => "GitHub failed; try again later".to_string(),
        _ => "an answer this runner does not expect".to_string(),
    };
    format!("HTTP {status}: {message}; {remedy}")
}
