//! The run service: `POST /run/acquirejob` (with the runner's access token; 404 unknown
//! job, 409 taken already), `POST /run/renewjob` and `POST /run/completejob` (with the
//! job's own token from its `SystemVssConnection` endpoint), as actions/runner's
//! `RunServiceHttpClient.cs` calls them; errors in `RunServiceError.cs`'s
//! `{source, statusCode, errorMessage}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Shared, bearer, lock};

fn run_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"source": "run-service", "statusCode": status.as_u16(), "errorMessage": message})),
    )
        .into_response()
}

pub(super) async fn acquire(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut state = lock(&shared.state);
    let Some(client) = bearer(&headers).and_then(|t| state.tokens.get(&t).cloned()) else {
        return (StatusCode::UNAUTHORIZED, "the access token is not valid").into_response();
    };
    let id = body["jobMessageId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let Some(job) = state.jobs.iter_mut().find(|j| j.runner_request_id == id) else {
        return run_error(
            StatusCode::NOT_FOUND,
            &format!("job message {id} not found"),
        );
    };
    if job.client_id != client {
        return run_error(
            StatusCode::NOT_FOUND,
            &format!("job message {id} not found"),
        );
    }
    if job.acquired {
        return run_error(
            StatusCode::CONFLICT,
            &format!("job message {id} already acquired"),
        );
    }
    job.acquired = true;
    let message = job.message.clone();
    state.running += 1;
    state.peak_running = state.peak_running.max(state.running);
    Json(message).into_response()
}

/// The job a request's job token and ids name.
fn job_index(state: &super::State, headers: &HeaderMap, body: &Value) -> Option<usize> {
    let token = bearer(headers)?;
    state.jobs.iter().position(|j| {
        j.job_token == token
            && body["planId"].as_str() == Some(j.plan_id.as_str())
            && body["jobId"].as_str() == Some(j.job_id.as_str())
    })
}

pub(super) async fn renew(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut state = lock(&shared.state);
    let Some(i) = job_index(&state, &headers, &body) else {
        return run_error(StatusCode::NOT_FOUND, "job not found");
    };
    if state.jobs[i].lost || state.jobs[i].completion.is_some() {
        return run_error(StatusCode::NOT_FOUND, "job not found");
    }
    if state.fail_renewals > 0 {
        state.fail_renewals -= 1;
        return run_error(StatusCode::INTERNAL_SERVER_ERROR, "renewjob failed (fault)");
    }
    state.jobs[i].renewals += 1;
    let until = std::time::SystemTime::now() + state.lock_duration;
    Json(json!({"lockedUntil": hr_cluster::time::rfc3339(until)})).into_response()
}

pub(super) async fn complete(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut state = lock(&shared.state);
    let Some(i) = job_index(&state, &headers, &body) else {
        return run_error(StatusCode::NOT_FOUND, "job not found");
    };
    if state.fail_completions > 0 {
        state.fail_completions -= 1;
        return run_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "completejob failed (fault)",
        );
    }
    if state.jobs[i].completion.is_none() {
        state.running = state.running.saturating_sub(1);
        // GitHub removes an ephemeral runner once its job is done.
        let client = state.jobs[i].client_id.clone();
        state
            .runners
            .retain(|r| !(r.ephemeral && r.client_id == client));
    }
    state.jobs[i].completions.push(body.clone());
    state.jobs[i].completion = Some(body);
    StatusCode::OK.into_response()
}
