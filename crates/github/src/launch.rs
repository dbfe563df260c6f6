//! The launch service: where a job's `uses:` actions are downloaded from, as actions/runner
//! asks it (`src/Sdk/WebApi/WebApi/LaunchHttpClient.cs`, `LaunchContracts.cs`,
//! `src/Runner.Worker/ActionManager.cs`).
//!
//! `POST /actions/build/{planId}/jobs/{jobId}/runnerresolve/actions`, an absolute path on
//! the host of the job's `system.github.launch_endpoint` (the endpoint's own path is
//! dropped, as `new Uri(base, "/actions/…")` drops it), with the job's token and
//! `{actions: [{action, version, path}]}` → `{actions: {"owner/repo@ref": {name,
//! resolved_name, resolved_sha, tar_url, zip_url, authentication: {token, expires_at}}}}`.
//! A 422 lists the actions that cannot be resolved (`{errors: {key: {message}}}`); a 429 is
//! GitHub's own rate limit and is not retried. The archive is fetched with
//! `Authorization: Basic base64("x-access-token:" + token)`.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;

/// Why actions could not be resolved or fetched.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot reach the launch service at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("GitHub cannot resolve the job's actions: {0}")]
    Unresolvable(String),
    #[error("GitHub has reached an internal rate limit resolving actions, please try again later")]
    RateLimited,
    #[error("the launch service answered HTTP {status} at {url}: {body}")]
    Failed {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the launch service answered something unexpected at {url}: {message}")]
    Answer { url: String, message: String },
    #[error("cannot write the action archive {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// One `uses:` to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionToResolve {
    /// `owner/repo`.
    pub action: String,
    /// The ref after `@`.
    pub version: String,
    pub path: String,
}

impl ActionToResolve {
    /// The key the answer uses: `owner/repo@ref`.
    pub fn key(&self) -> String {
        format!("{}@{}", self.action, self.version)
    }
}

/// Where one action is downloaded from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ActionDownload {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub resolved_name: String,
    #[serde(default)]
    pub resolved_sha: String,
    #[serde(default)]
    pub tar_url: String,
    #[serde(default)]
    pub zip_url: String,
    #[serde(default)]
    pub authentication: Option<DownloadAuthentication>,
}

/// The token for an action's archive.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DownloadAuthentication {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub expires_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Resolved {
    #[serde(default)]
    actions: BTreeMap<String, ActionDownload>,
}

#[derive(Debug, Deserialize)]
struct Unresolved {
    #[serde(default)]
    errors: BTreeMap<String, UnresolvedOne>,
}

#[derive(Debug, Deserialize)]
struct UnresolvedOne {
    #[serde(default)]
    message: String,
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    match url[after..].find('/') {
        Some(i) => &url[..after + i],
        None => url,
    }
}

/// Resolves `actions` for job `job_id` of plan `plan_id`.
pub async fn resolve_actions(
    http: &reqwest::Client,
    launch_endpoint: &str,
    job_token: &str,
    plan_id: &str,
    job_id: &str,
    actions: &[ActionToResolve],
) -> Result<BTreeMap<String, ActionDownload>, LaunchError> {
    let url = format!(
        "{}/actions/build/{plan_id}/jobs/{job_id}/runnerresolve/actions",
        origin(launch_endpoint)
    );
    let body = json!({"actions": actions.iter().map(|a| json!({"action": a.action, "version": a.version, "path": a.path})).collect::<Vec<_>>()});
    let response = http
        .post(&url)
        .bearer_auth(job_token)
        .header("Accept", "application/json")
        .json(&body)
        .send()
        .await
        .map_err(|source| LaunchError::Unreachable {
            url: url.clone(),
            source,
        })?;
    let (status, text) = crate::status_and_text(response).await;
    match status {
        200..=299 => serde_json::from_str::<Resolved>(&text)
            .map(|r| r.actions)
            .map_err(|e| LaunchError::Answer {
                url,
                message: e.to_string(),
            }),
        422 => {
            let messages = serde_json::from_str::<Unresolved>(&text)
                .map(|u| {
                    u.errors
                        .into_values()
                        .map(|e| e.message)
                        .collect::<Vec<_>>()
                        .join(". ")
                })
                .unwrap_or_default();
            Err(LaunchError::Unresolvable(if messages.is_empty() {
                crate::excerpt(&text)
            } else {
                messages
            }))
        }
        429 => Err(LaunchError::RateLimited),
        _ => Err(LaunchError::Failed {
            url,
            status,
            body: crate::excerpt(&text),
        }),
    }
}

/// Downloads an action's tar.gz to `into`, chunk by chunk.
pub async fn download_archive(
    http: &reqwest::Client,
    download: &ActionDownload,
    into: &Path,
) -> Result<u64, LaunchError> {
    let url = &download.tar_url;
    let mut request = http.get(url);
    if let Some(token) = download
        .authentication
        .as_ref()
        .map(|a| a.token.as_str())
        .filter(|t| !t.is_empty())
    {
        let basic = STANDARD.encode(format!("x-access-token:{token}"));
        request = request.header("Authorization", format!("Basic {basic}"));
    }
    let mut response = request
        .send()
        .await
        .map_err(|source| LaunchError::Unreachable {
            url: url.clone(),
            source,
        })?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(LaunchError::Failed {
            url: url.clone(),
            status,
            body: crate::excerpt(&response.text().await.unwrap_or_default()),
        });
    }
    let write_error = |source| LaunchError::Write {
        path: into.display().to_string(),
        source,
    };
    let mut file = tokio::fs::File::create(into).await.map_err(write_error)?;
    let mut written = 0u64;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|source| LaunchError::Unreachable {
            url: url.clone(),
            source,
        })?
    {
        file.write_all(&chunk).await.map_err(write_error)?;
        written += chunk.len() as u64;
    }
    file.flush().await.map_err(write_error)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resolve_path_replaces_the_endpoints_own_path() {
        assert_eq!(
            origin("https://launch.example/some/base/"),
            "https://launch.example"
        );
        assert_eq!(origin("http://127.0.0.1:9/launch"), "http://127.0.0.1:9");
        assert_eq!(origin("http://h"), "http://h");
        let a = ActionToResolve {
            action: "actions/checkout".into(),
            version: "v4".into(),
            path: String::new(),
        };
        assert_eq!(a.key(), "actions/checkout@v4");
    }
}
