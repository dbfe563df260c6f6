//! The results service and its blob store: `WorkflowStepsUpdate`,
//! `GetStepLogsSignedBlobURL` / `GetJobLogsSignedBlobURL` handing out `/blob/{id}?sig=…`
//! URLs, and `CreateStepLogsMetadata` / `CreateJobLogsMetadata`, with the job's token
//! (actions/runner `ResultsHttpClient.cs`). The blob store checks what Azure would: the
//! signature, `x-ms-blob-type` on creation, an append only to an existing unsealed append
//! blob, and `x-ms-blob-sealed: true` with `seal=true`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Shared, bearer, lock};

/// One blob: where it belongs, how it was made, its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// The job's id (`workflow_job_run_backend_id`).
    pub job_id: String,
    /// The step's external id; `None` for the job's own log.
    pub step: Option<String>,
    /// `BlockBlob` or `AppendBlob`; empty until created.
    pub kind: String,
    pub data: Vec<u8>,
    pub sealed: bool,
    /// From the metadata call, once made.
    pub line_count: Option<u64>,
    /// When each write arrived, and the blob's length after it.
    pub writes: Vec<(std::time::SystemTime, usize)>,
}

const SIG: &str = "fake-signature";

fn job_of(shared: &Shared, headers: &HeaderMap, body: &Value) -> Option<String> {
    let token = bearer(headers)?;
    let state = lock(&shared.state);
    state
        .jobs
        .iter()
        .find(|j| {
            j.job_token == token
                && body["workflow_run_backend_id"].as_str() == Some(j.plan_id.as_str())
                && body["workflow_job_run_backend_id"].as_str() == Some(j.job_id.as_str())
        })
        .map(|j| j.job_id.clone())
}

fn twirp_error(status: StatusCode, code: &str, msg: &str) -> Response {
    (status, Json(json!({"code": code, "msg": msg}))).into_response()
}

pub(super) async fn twirp(
    State(shared): State<Arc<Shared>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let Some(job_id) = job_of(&shared, &headers, &body) else {
        return twirp_error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "not this job's token or ids",
        );
    };
    let step = body["step_backend_id"].as_str().map(str::to_string);
    let mut state = lock(&shared.state);
    match method.as_str() {
        "WorkflowStepsUpdate" => {
            let order = body["change_order"].as_u64().unwrap_or_default();
            let last = state
                .step_updates
                .iter()
                .filter(|(j, _)| *j == job_id)
                .map(|(_, b)| b["change_order"].as_u64().unwrap_or_default())
                .max();
            if last.is_some_and(|l| order <= l) {
                return twirp_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_argument",
                    "change_order must grow",
                );
            }
            state.step_updates.push((job_id, body));
            Json(json!({})).into_response()
        }
        "GetStepLogsSignedBlobURL" | "GetJobLogsSignedBlobURL" => {
            if (method == "GetStepLogsSignedBlobURL") != step.is_some() {
                return twirp_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_argument",
                    "step_backend_id",
                );
            }
            let id = match state
                .blobs
                .iter()
                .position(|b| b.job_id == job_id && b.step == step)
            {
                Some(i) => i,
                None => {
                    state.blobs.push(Blob {
                        job_id,
                        step,
                        kind: String::new(),
                        data: Vec::new(),
                        sealed: false,
                        line_count: None,
                        writes: Vec::new(),
                    });
                    state.blobs.len() - 1
                }
            };
            Json(json!({
                "logs_url": format!("http://{}/blob/{id}?sig={SIG}", shared.addr),
                "blob_storage_type": "BLOB_STORAGE_TYPE_AZURE",
            }))
            .into_response()
        }
        "CreateStepLogsMetadata" | "CreateJobLogsMetadata" => {
            let Some(blob) = state
                .blobs
                .iter_mut()
                .find(|b| b.job_id == job_id && b.step == step)
            else {
                return twirp_error(StatusCode::NOT_FOUND, "not_found", "no log was uploaded");
            };
            if blob.kind.is_empty() || (blob.kind == "AppendBlob" && !blob.sealed) {
                return twirp_error(
                    StatusCode::BAD_REQUEST,
                    "failed_precondition",
                    "the log blob is not complete (an append blob must be sealed)",
                );
            }
            blob.line_count = body["line_count"].as_u64();
            Json(json!({"ok": true})).into_response()
        }
        _ => twirp_error(StatusCode::NOT_FOUND, "bad_route", &method),
    }
}

pub(super) async fn blob(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<usize>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if query.get("sig").map(String::as_str) != Some(SIG) {
        return (StatusCode::FORBIDDEN, "AuthenticationFailed").into_response();
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut state = lock(&shared.state);
    let Some(blob) = state.blobs.get_mut(id) else {
        return (StatusCode::NOT_FOUND, "BlobNotFound").into_response();
    };
    if blob.sealed {
        return (StatusCode::CONFLICT, "BlobIsSealed").into_response();
    }
    match query.get("comp").map(String::as_str) {
        None => match header("x-ms-blob-type").as_deref() {
            Some("BlockBlob") => {
                blob.kind = "BlockBlob".into();
                blob.data = body.to_vec();
                blob.sealed = true;
                blob.writes
                    .push((std::time::SystemTime::now(), blob.data.len()));
            }
            Some("AppendBlob") if body.is_empty() => {
                blob.kind = "AppendBlob".into();
                blob.data.clear();
            }
            Some("AppendBlob") => {
                return (StatusCode::BAD_REQUEST, "an append blob is created empty")
                    .into_response();
            }
            _ => {
                return (
                    StatusCode::BAD_REQUEST,
                    "MissingRequiredHeader x-ms-blob-type",
                )
                    .into_response();
            }
        },
        Some("appendblock") => {
            if blob.kind != "AppendBlob" {
                return (StatusCode::CONFLICT, "InvalidBlobType").into_response();
            }
            blob.data.extend_from_slice(&body);
            blob.writes
                .push((std::time::SystemTime::now(), blob.data.len()));
            if query.get("seal").map(String::as_str) == Some("true") {
                if !header("x-ms-blob-sealed").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
                    return (
                        StatusCode::BAD_REQUEST,
                        "seal=true without x-ms-blob-sealed: true",
                    )
                        .into_response();
                }
                blob.sealed = true;
            }
        }
        Some(other) => return (StatusCode::BAD_REQUEST, format!("comp={other}")).into_response(),
    }
    StatusCode::CREATED.into_response()
}
