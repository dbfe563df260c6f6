//! Registering a runner with a registration token, the way `config.sh --url --token` does
//! it on the runner-admin flow (actions/runner
//! `src/Runner.Listener/Configuration/ConfigurationManager.cs`,
//! `src/Runner.Common/RunnerDotcomServer.cs`), every call with
//! `Authorization: RemoteAuth <token>`:
//!
//! 1. `POST {api}/actions/runner-registration` `{url, runner_event: "register"}` →
//!    `{url, token_schema, token, use_v2_flow}`; without `use_v2_flow` the instance only
//!    speaks the V1 (pipelines) protocol, which this runner does not;
//! 2. `GET {api}/{repos/O/R | orgs/O | enterprises/E}/actions/runner-groups` → the group:
//!    the one named, else the default;
//! 3. `POST {api}/actions/runners/register` `{url, group_id, name, version,
//!    updates_disabled, ephemeral, labels, public_key}` (the key as .NET XML) → `{id, name,
//!    authorization: {authorization_url, server_url, client_id, legacy_authorization_url?}}`.
//!
//! `{api}` is `https://api.github.com` for github.com (and `api.` before a `*.ghe.com`
//! host), and `{scheme}://{host}/api/v3` for any other host (GitHub Enterprise Server).

use serde::Deserialize;
use serde_json::json;

use crate::files::{OAuthCredentials, RunnerSettings};
use crate::key::RunnerKey;

/// The actions/runner version this runner reports: the service refuses runners below its
/// minimum version, so it is a current one (actions/runner `src/runnerversion`).
pub const DEFAULT_RUNNER_VERSION: &str = "2.336.0";

/// Why a registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error(
        "`{url}` is not a GitHub repository, organisation or enterprise URL ({why}); pass e.g. https://github.com/OWNER/REPO, https://github.com/OWNER or https://github.com/enterprises/NAME"
    )]
    Url { url: String, why: String },
    #[error("cannot reach {url}; check the URL and the network")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "{url} refused the registration token (HTTP {status}: {body}); registration tokens last one hour and are used up by `remove`: make a new one in the repository's or organisation's Settings > Actions > Runners"
    )]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url} answered HTTP {status}: {body}")]
    Failed {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url} answered something unexpected: {message}")]
    Answer { url: String, message: String },
    #[error(
        "{instance} offers only the V1 (pipelines) runner protocol (`use_v2_flow` is false); hybrid-runner speaks V2 only: upgrade GitHub Enterprise Server, or run actions/runner there"
    )]
    NotV2 { instance: String },
    #[error("{0}")]
    Group(String),
    #[error(transparent)]
    Key(#[from] crate::files::FileError),
}

/// What a runner registers for: a repository, an organisation or an enterprise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Repository { owner: String, repo: String },
    Organization { org: String },
    Enterprise { enterprise: String },
}

/// A parsed `--github URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubUrl {
    /// As given, without a trailing slash: what `.runner`'s `gitHubUrl` keeps and what
    /// the registration calls name.
    pub url: String,
    /// The REST API base, e.g. `https://api.github.com` or `https://ghes.example/api/v3`.
    pub api: String,
    pub scope: Scope,
}

impl GitHubUrl {
    pub fn parse(url: &str) -> Result<GitHubUrl, RegisterError> {
        let bad = |why: &str| RegisterError::Url {
            url: url.to_string(),
            why: why.to_string(),
        };
        let trimmed = url.trim().trim_end_matches('/');
        let (scheme, rest) = trimmed
            .split_once("://")
            .filter(|(s, _)| matches!(*s, "http" | "https"))
            .ok_or_else(|| bad("it must start with https:// or http://"))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() {
            return Err(bad("it has no host"));
        }
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let scope = match segments.as_slice() {
            [org] => Scope::Organization {
                org: org.to_string(),
            },
            [first, name] if first.eq_ignore_ascii_case("enterprises") => Scope::Enterprise {
                enterprise: name.to_string(),
            },
            [owner, repo] => Scope::Repository {
                owner: owner.to_string(),
                repo: repo.to_string(),
            },
            [] => return Err(bad("it names no owner")),
            _ => return Err(bad("it has more than two path segments")),
        };
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, h)| h)
            .to_ascii_lowercase();
        let host_name = host.split(':').next().unwrap_or_default();
        let hosted =
            matches!(host_name, "github.com" | "www.github.com") || host_name.ends_with(".ghe.com");
        let api = if hosted {
            format!(
                "{scheme}://api.{}",
                host.strip_prefix("www.").unwrap_or(&host)
            )
        } else {
            format!("{scheme}://{host}/api/v3")
        };
        Ok(GitHubUrl {
            url: trimmed.to_string(),
            api,
            scope,
        })
    }

    /// `{api}/repos/O/R/actions`, `{api}/orgs/O/actions` or `{api}/enterprises/E/actions`.
    pub fn actions_url(&self) -> String {
        match &self.scope {
            Scope::Repository { owner, repo } => {
                format!("{}/repos/{owner}/{repo}/actions", self.api)
            }
            Scope::Organization { org } => format!("{}/orgs/{org}/actions", self.api),
            Scope::Enterprise { enterprise } => {
                format!("{}/enterprises/{enterprise}/actions", self.api)
            }
        }
    }
}

/// What to register.
#[derive(Debug, Clone)]
pub struct RunnerRequest {
    pub name: String,
    /// The user's labels; `self-hosted`, `Linux` and the architecture are added.
    pub labels: Vec<String>,
    pub ephemeral: bool,
    pub disable_update: bool,
    /// The runner group by name; the default group when `None`.
    pub runner_group: Option<String>,
    /// The actions/runner version to report ([`DEFAULT_RUNNER_VERSION`]).
    pub version: String,
}

/// A registered runner: its files' contents.
#[derive(Debug, Clone)]
pub struct Registered {
    pub settings: RunnerSettings,
    pub credentials: OAuthCredentials,
    pub key: RunnerKey,
}

/// The architecture label actions/runner adds (`VarUtil.OSArchitecture`).
pub fn architecture_label() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "X64",
        "aarch64" => "ARM64",
        "arm" => "ARM",
        "x86" => "X86",
        other => other,
    }
}

#[derive(Debug, Deserialize)]
struct AuthResult {
    #[serde(default)]
    use_v2_flow: bool,
}

#[derive(Debug, Deserialize)]
struct RunnerGroups {
    #[serde(default)]
    runner_groups: Vec<RunnerGroup>,
}

#[derive(Debug, Deserialize)]
struct RunnerGroup {
    id: u64,
    name: String,
    #[serde(default)]
    default: bool,
    #[serde(default)]
    is_hosted: bool,
}

#[derive(Debug, Deserialize)]
struct RunnerAnswer {
    id: u64,
    name: String,
    authorization: RunnerAuthorization,
}

#[derive(Debug, Deserialize)]
struct RunnerAuthorization {
    authorization_url: String,
    server_url: String,
    client_id: String,
    #[serde(default)]
    legacy_authorization_url: Option<String>,
}

/// One call with `RemoteAuth`; the answer parsed as `T`.
async fn call<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    url: &str,
) -> Result<T, RegisterError> {
    let response = request
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|source| RegisterError::Unreachable {
            url: url.to_string(),
            source,
        })?;
    let (status, text) = crate::status_and_text(response).await;
    let body = crate::excerpt(&text);
    match status {
        200..=299 => serde_json::from_str(&text).map_err(|e| RegisterError::Answer {
            url: url.to_string(),
            message: e.to_string(),
        }),
        401 | 403 => Err(RegisterError::Refused {
            url: url.to_string(),
            status,
            body,
        }),
        _ => Err(RegisterError::Failed {
            url: url.to_string(),
            status,
            body,
        }),
    }
}

/// Registers a runner at `github` with the registration `token`; makes its key.
pub async fn register(
    http: &reqwest::Client,
    github: &GitHubUrl,
    token: &str,
    request: &RunnerRequest,
) -> Result<Registered, RegisterError> {
    let auth = format!("RemoteAuth {token}");
    let url = format!("{}/actions/runner-registration", github.api);
    let tenant: AuthResult = call(
        http.post(&url)
            .header("Authorization", &auth)
            .json(&json!({"url": github.url, "runner_event": "register"})),
        &url,
    )
    .await?;
    if !tenant.use_v2_flow {
        return Err(RegisterError::NotV2 {
            instance: github.url.clone(),
        });
    }
    let url = format!("{}/runner-groups", github.actions_url());
    let groups: RunnerGroups = call(http.get(&url).header("Authorization", &auth), &url).await?;
    let group = choose_group(&groups.runner_groups, request.runner_group.as_deref())?;

    let key = RunnerKey::generate()?;
    let mut labels = vec![
        json!({"id": 0, "name": "self-hosted", "type": "system"}),
        json!({"id": 0, "name": "Linux", "type": "system"}),
        json!({"id": 0, "name": architecture_label(), "type": "system"}),
    ];
    labels.extend(
        request
            .labels
            .iter()
            .map(|l| json!({"id": 0, "name": l, "type": "user"})),
    );
    let url = format!("{}/actions/runners/register", github.api);
    let runner: RunnerAnswer = call(
        http.post(&url).header("Authorization", &auth).json(&json!({
            "url": github.url,
            "group_id": group.id,
            "name": request.name,
            "version": request.version,
            "updates_disabled": request.disable_update,
            "ephemeral": request.ephemeral,
            "labels": labels,
            "public_key": key.public_key_xml(),
        })),
        &url,
    )
    .await?;
    let a = runner.authorization;
    // A legacy URL, when given, is the one to use now; the new one waits for migration.
    let (authorization_url, v2) = match a.legacy_authorization_url.filter(|u| !u.is_empty()) {
        Some(legacy) => (legacy, Some(a.authorization_url)),
        None => (a.authorization_url, None),
    };
    Ok(Registered {
        settings: RunnerSettings {
            agent_id: runner.id,
            agent_name: runner.name,
            pool_id: group.id,
            pool_name: Some(group.name.clone()),
            disable_update: request.disable_update,
            ephemeral: request.ephemeral,
            server_url: None,
            server_url_v2: Some(a.server_url),
            use_v2_flow: true,
            use_runner_admin_flow: true,
            github_url: Some(github.url.clone()),
            work_folder: Some("_work".to_string()),
        },
        credentials: OAuthCredentials {
            client_id: a.client_id,
            authorization_url,
            oauth_endpoint_url: None,
            // actions/runner's default when the service says nothing.
            require_fips_cryptography: true,
            enable_auth_migration_by_default: v2.is_some(),
            authorization_url_v2: v2,
        },
        key,
    })
}

/// Removes runner `runner_id` with a removal (or registration) token, as
/// `config.sh remove --token` does on the runner-admin flow: `runner-registration` with
/// `runner_event: "remove"`, then `DELETE {actions}/runners/{id}`. A runner GitHub no
/// longer knows (404) counts as removed; returns whether it was still there.
pub async fn unregister(
    http: &reqwest::Client,
    github: &GitHubUrl,
    token: &str,
    runner_id: u64,
) -> Result<bool, RegisterError> {
    let auth = format!("RemoteAuth {token}");
    let url = format!("{}/actions/runner-registration", github.api);
    let tenant: AuthResult = call(
        http.post(&url)
            .header("Authorization", &auth)
            .json(&json!({"url": github.url, "runner_event": "remove"})),
        &url,
    )
    .await?;
    if !tenant.use_v2_flow {
        return Err(RegisterError::NotV2 {
            instance: github.url.clone(),
        });
    }
    let url = format!("{}/runners/{runner_id}", github.actions_url());
    let response = http
        .delete(&url)
        .header("Authorization", &auth)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|source| RegisterError::Unreachable {
            url: url.clone(),
            source,
        })?;
    let (status, text) = crate::status_and_text(response).await;
    let body = crate::excerpt(&text);
    match status {
        200..=299 => Ok(true),
        404 => Ok(false),
        401 | 403 => Err(RegisterError::Refused { url, status, body }),
        _ => Err(RegisterError::Failed { url, status, body }),
    }
}

/// The named self-hosted group, else the default one, as `config.sh` chooses.
fn choose_group<'a>(
    groups: &'a [RunnerGroup],
    name: Option<&str>,
) -> Result<&'a RunnerGroup, RegisterError> {
    let chosen = match name {
        Some(name) => groups
            .iter()
            .find(|g| !g.is_hosted && g.name.eq_ignore_ascii_case(name)),
        None => groups.iter().find(|g| g.default && !g.is_hosted),
    };
    chosen.ok_or_else(|| {
        let known: Vec<&str> = groups
            .iter()
            .filter(|g| !g.is_hosted)
            .map(|g| g.name.as_str())
            .collect();
        RegisterError::Group(match name {
            Some(name) => format!(
                "there is no self-hosted runner group named \"{name}\"; the groups are: {}",
                known.join(", ")
            ),
            None => {
                "there is no default self-hosted runner group; pass --runner-group NAME".to_string()
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_the_api_base_and_the_scope() {
        let repo = GitHubUrl::parse("https://github.com/octo/hello/").unwrap();
        assert_eq!(repo.url, "https://github.com/octo/hello");
        assert_eq!(repo.api, "https://api.github.com");
        assert_eq!(
            repo.actions_url(),
            "https://api.github.com/repos/octo/hello/actions"
        );
        let org = GitHubUrl::parse("https://github.com/octo").unwrap();
        assert_eq!(
            org.actions_url(),
            "https://api.github.com/orgs/octo/actions"
        );
        let ent = GitHubUrl::parse("https://github.com/enterprises/big").unwrap();
        assert_eq!(
            ent.actions_url(),
            "https://api.github.com/enterprises/big/actions"
        );
        let ghes = GitHubUrl::parse("http://127.0.0.1:8080/octo/hello").unwrap();
        assert_eq!(ghes.api, "http://127.0.0.1:8080/api/v3");
        let ghe_com = GitHubUrl::parse("https://acme.ghe.com/octo").unwrap();
        assert_eq!(ghe_com.api, "https://api.acme.ghe.com");
        for bad in [
            "github.com/octo",
            "https://github.com",
            "https://github.com/a/b/c",
            "ftp://x/a",
        ] {
            let err = GitHubUrl::parse(bad).unwrap_err();
            assert!(
                err.to_string().contains("https://github.com/OWNER/REPO"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_group_is_the_named_one_or_the_default() {
        let groups = vec![
            RunnerGroup {
                id: 1,
                name: "Default".into(),
                default: true,
                is_hosted: false,
            },
            RunnerGroup {
                id: 2,
                name: "GPU".into(),
                default: false,
                is_hosted: false,
            },
            RunnerGroup {
                id: 3,
                name: "Hosted".into(),
                default: false,
                is_hosted: true,
            },
        ];
        assert_eq!(choose_group(&groups, None).unwrap().id, 1);
        assert_eq!(choose_group(&groups, Some("gpu")).unwrap().id, 2);
        let err = choose_group(&groups, Some("Hosted"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no self-hosted runner group named \"Hosted\"")
                && err.contains("Default, GPU"),
            "{err}"
        );
        assert!(
            choose_group(&[], None)
                .unwrap_err()
                .to_string()
                .contains("--runner-group")
        );
    }
}
