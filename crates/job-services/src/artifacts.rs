//! The artifact protocol of `upload-artifact@v4` / `download-artifact@v4`: the twirp
//! service `github.actions.results.api.v1.ArtifactService` under `ACTIONS_RESULTS_URL`,
//! as `@actions/artifact` speaks it (requests in proto field names, 64-bit integers as
//! strings, timestamps in RFC 3339; every answer JSON, since the client retries five
//! times on a body it cannot parse). The bearer token is the job's; the run and job ids
//! of every request must be the token's (`scp` `Actions.Results:<run>:<job>`).
//!
//! - `CreateArtifact {name, mime_type}`: `{ok, signed_upload_url}` (block blob,
//!   [`crate::blob`]); `409 already_exists` when the run has the name;
//! - `FinalizeArtifact {name, size, hash}`: `{ok, artifact_id}`, refused when the upload
//!   is not `size` bytes or does not hash to `hash`;
//! - `ListArtifacts {name_filter?, id_filter?}`: the run's artifacts (any job's);
//! - `GetSignedArtifactURL {name}`: `{signed_url}` (its GET answers `application/zip`);
//! - `DeleteArtifact {name}`: `{ok, artifact_id}`.
//!
//! Without an artifact folder (`exec --artifact-server-path`) every call answers
//! `unimplemented`, saying so.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::artifact_store::Artifact;
use crate::cache_store::StoreError;
use crate::cache_v2::{field, int64, text, twirp_error, twirp_request};
use crate::server::Services;

fn monolith(a: &Artifact) -> Value {
    json!({
        "workflow_run_backend_id": a.run,
        "workflow_job_run_backend_id": a.job,
        "database_id": a.id.to_string(),
        "name": a.name,
        "size": a.size.to_string(),
        "created_at": crate::time::rfc3339_millis(a.created),
        "digest": a.digest,
    })
}

/// `POST /twirp/github.actions.results.api.v1.ArtifactService/{method}`.
pub async fn call(
    State(services): State<Services>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (claims, body) = match twirp_request(&services, &headers, &body) {
        Ok(request) => request,
        Err(answer) => return answer.into_response(),
    };
    let Some(store) = services.artifacts.clone() else {
        return twirp_error(
            StatusCode::NOT_IMPLEMENTED,
            "unimplemented",
            "this runner keeps no artifacts: run `hybrid-runner exec` with --artifact-server-path DIR",
        );
    };
    let (run, job) = (
        text(&body, "workflow_run_backend_id"),
        text(&body, "workflow_job_run_backend_id"),
    );
    // Any job of the run reads the run's artifacts (the client names the uploader's job
    // when it downloads); only the token's own job uploads.
    let uploading = matches!(method.as_str(), "CreateArtifact" | "FinalizeArtifact");
    if run != claims.run || (uploading && job != claims.job) {
        return twirp_error(
            StatusCode::FORBIDDEN,
            "permission_denied",
            "the run (or, to upload, the job) is not the token's",
        );
    }
    let name = text(&body, "name");
    match method.as_str() {
        "CreateArtifact" => {
            let mime = match text(&body, "mime_type") {
                m if m.is_empty() => "application/zip".to_string(),
                m => m,
            };
            match store.create(&run, &job, &name, &mime) {
                Ok(id) => Json(json!({
                    "ok": true,
                    "signed_upload_url": crate::blob::signed_url(&services, "artifact", id, "w"),
                }))
                .into_response(),
                Err(StoreError::Exists { .. }) => twirp_error(
                    StatusCode::CONFLICT,
                    "already_exists",
                    &format!(
                        "an artifact named {name} already exists in this run; give another name, or upload with overwrite: true"
                    ),
                ),
                Err(StoreError::Corrupt(m)) => {
                    twirp_error(StatusCode::BAD_REQUEST, "invalid_argument", &m)
                }
                Err(e) => twirp_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    &e.to_string(),
                ),
            }
        }
        "FinalizeArtifact" => {
            let Some(id) = store.upload_of(&run, &job, &name) else {
                return twirp_error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    &format!("no upload of artifact {name} is in progress in this job"),
                );
            };
            let size = int64(field(&body, "size")).unwrap_or(0);
            let hash = text(&body, "hash");
            let hash = Some(hash.as_str())
                .filter(|h| !h.is_empty())
                .map(str::to_string);
            let finished =
                tokio::task::spawn_blocking(move || store.finalize(id, size, hash.as_deref()))
                    .await;
            match finished {
                Ok(Ok(a)) => {
                    Json(json!({"ok": true, "artifact_id": a.id.to_string()})).into_response()
                }
                Ok(Err(StoreError::Corrupt(m))) => {
                    twirp_error(StatusCode::BAD_REQUEST, "invalid_argument", &m)
                }
                Ok(Err(StoreError::Exists { key })) => twirp_error(
                    StatusCode::CONFLICT,
                    "already_exists",
                    &format!("an artifact named {key} was finalized first in this run"),
                ),
                Ok(Err(e)) => twirp_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    &e.to_string(),
                ),
                Err(e) => twirp_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    &e.to_string(),
                ),
            }
        }
        "ListArtifacts" => {
            let name_filter = Some(text(&body, "name_filter")).filter(|n| !n.is_empty());
            let id_filter = int64(field(&body, "id_filter"));
            let found = store.list(&run, name_filter.as_deref(), id_filter);
            Json(json!({"artifacts": found.iter().map(monolith).collect::<Vec<_>>()}))
                .into_response()
        }
        "GetSignedArtifactURL" => match store.list(&run, Some(&name), None).pop() {
            Some(a) => Json(json!({
                "signed_url": crate::blob::signed_url(&services, "artifact", a.id, "r"),
            }))
            .into_response(),
            None => twirp_error(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no artifact named {name} in this run"),
            ),
        },
        "DeleteArtifact" => match store.delete(&run, &name) {
            Some(id) => Json(json!({"ok": true, "artifact_id": id.to_string()})).into_response(),
            None => twirp_error(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no artifact named {name} in this run"),
            ),
        },
        other => twirp_error(
            StatusCode::NOT_FOUND,
            "bad_route",
            &format!("ArtifactService has no method {other}"),
        ),
    }
}
