//! The launch service and action archives: `POST /actions/build/{plan}/jobs/{job}/runnerresolve/actions`
//! with the job's token resolves `owner/repo@ref` to `/tarballs/…` URLs with a download
//! token, or answers 422 with `{errors: {key: {message}}}` for actions it does not have
//! (actions/runner `LaunchHttpClient.cs`); `GET /tarballs/{owner}/{repo}/{sha}` wants
//! `Authorization: Basic base64("x-access-token:" + token)`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::{Shared, bearer, lock};

/// The token the fake hands out for archive downloads.
const DOWNLOAD_TOKEN: &str = "fake-github-download-token";

pub(super) async fn resolve(
    State(shared): State<Arc<Shared>>,
    Path((plan, job)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let token = bearer(&headers).unwrap_or_default();
    let state = lock(&shared.state);
    if !state
        .jobs
        .iter()
        .any(|j| j.job_token == token && j.plan_id == plan && j.job_id == job)
    {
        return (StatusCode::UNAUTHORIZED, "not this job's token").into_response();
    }
    let mut found = Map::new();
    let mut errors = Map::new();
    for a in body["actions"].as_array().into_iter().flatten() {
        let name = a["action"].as_str().unwrap_or_default();
        let version = a["version"].as_str().unwrap_or_default();
        let key = format!("{name}@{version}");
        match state.actions.get(&key) {
            Some((sha, _)) => {
                found.insert(
                    key,
                    json!({
                        "name": name,
                        "resolved_name": name,
                        "resolved_sha": sha,
                        "tar_url": format!("http://{}/tarballs/{name}/{sha}", shared.addr),
                        "zip_url": format!("http://{}/zipballs/{name}/{sha}", shared.addr),
                        "version": version,
                        "authentication": {"token": DOWNLOAD_TOKEN, "expires_at": "2099-01-01T00:00:00Z"},
                    }),
                );
            }
            None => {
                errors.insert(
                    key.clone(),
                    json!({"message": format!("Unable to resolve action `{key}`, repository or version not found")}),
                );
            }
        }
    }
    if !errors.is_empty() {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"errors": errors})),
        )
            .into_response();
    }
    Json(json!({"actions": found})).into_response()
}

pub(super) async fn tarball(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("x-access-token:{DOWNLOAD_TOKEN}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    let state = lock(&shared.state);
    let name = format!("{owner}/{repo}");
    match state
        .actions
        .iter()
        .find(|(k, (s, _))| k.starts_with(&format!("{name}@")) && *s == sha)
    {
        Some((_, (_, bytes))) => bytes.clone().into_response(),
        None => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}
