//! The broker: `POST/DELETE /broker/session`, `GET /broker/message` (long poll, held
//! [`super::FakeGitHub::set_poll_hold`], default 300 ms, then `202` with no body), and
//! `POST /broker/acknowledge`, as actions/runner's `BrokerHttpClient.cs` calls them; a poll
//! reporting `status=Busy` is offered no job request. Every
//! call needs a bearer token the fake's token endpoint issued; one open session per OAuth
//! client (a second is `409`); a poll with another session id is `RunnerSessionInvalid`
//! and one reporting a runner version below the minimum `RunnerVersionTooOld`, in the
//! `{source, errorKind, statusCode, errorMessage}` body of `BrokerError.cs`. The HTTP
//! statuses of those errors (400, 403) are the fake's choice: actions/runner reads only
//! the body. A session that stopped polling gives way to a new one after
//! [`super::FakeGitHub::set_session_expiry`] (5 minutes unless set: the real expiry is the
//! service's and not published).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Shared, bearer, lock};

/// The client a `Bearer` token was issued to.
fn client_of(shared: &Shared, headers: &HeaderMap) -> Option<String> {
    let token = bearer(headers)?;
    lock(&shared.state).tokens.get(&token).cloned()
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, "the access token is not valid").into_response()
}

fn broker_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"source": "broker", "errorKind": kind, "statusCode": status.as_u16(), "errorMessage": message})),
    )
        .into_response()
}

/// `2.330.0` > `2.329.5`: numeric parts compared in order.
fn version_below(version: &str, minimum: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parts(version) < parts(minimum)
}

pub(super) async fn create_session(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let Some(client) = client_of(&shared, &headers) else {
        return unauthorized();
    };
    let mut state = lock(&shared.state);
    let expired = state
        .session_seen
        .get(&client)
        .is_some_and(|seen| seen.elapsed() >= state.session_expiry);
    if expired {
        state.sessions.remove(&client);
    }
    if state.sessions.contains_key(&client) {
        return (
            StatusCode::CONFLICT,
            format!("A session for this runner already exists ({client})."),
        )
            .into_response();
    }
    state.next_session += 1;
    let session_id = format!("5e55107d-0000-4000-8000-{:012}", state.next_session);
    state.sessions.insert(client.clone(), session_id.clone());
    state.session_seen.insert(client, std::time::Instant::now());
    Json(json!({
        "sessionId": session_id,
        "ownerName": body["ownerName"],
        "agent": body["agent"],
        "useFipsEncryption": false,
    }))
    .into_response()
}

pub(super) async fn delete_session(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Response {
    let Some(client) = client_of(&shared, &headers) else {
        return unauthorized();
    };
    lock(&shared.state).sessions.remove(&client);
    StatusCode::OK.into_response()
}

/// Checks the session and version of a poll or acknowledgement; the client on success.
fn check_listener(
    shared: &Shared,
    headers: &HeaderMap,
    query: &std::collections::HashMap<String, String>,
) -> Result<String, Box<Response>> {
    let Some(client) = client_of(shared, headers) else {
        return Err(Box::new(unauthorized()));
    };
    let state = lock(&shared.state);
    if state.sessions.get(&client) != query.get("sessionId") {
        return Err(Box::new(broker_error(
            StatusCode::BAD_REQUEST,
            "RunnerSessionInvalid",
            "The runner session is not valid.",
        )));
    }
    let version = query.get("runnerVersion").cloned().unwrap_or_default();
    if version_below(&version, &state.minimum_runner_version) {
        return Err(Box::new(broker_error(
            StatusCode::FORBIDDEN,
            "RunnerVersionTooOld",
            &format!(
                "Runner version v{version} is deprecated and cannot receive messages; the minimum is v{}.",
                state.minimum_runner_version
            ),
        )));
    }
    Ok(client)
}

pub(super) async fn message(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let client = match check_listener(&shared, &headers, &query) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let hold = {
        let mut state = lock(&shared.state);
        state.polls.push((
            client.clone(),
            query.get("status").cloned().unwrap_or_default(),
        ));
        state
            .session_seen
            .insert(client.clone(), std::time::Instant::now());
        if state.fail_polls > 0 {
            state.fail_polls -= 1;
            return (StatusCode::INTERNAL_SERVER_ERROR, "broker failure (fault)").into_response();
        }
        state.poll_hold
    };
    let deadline = tokio::time::Instant::now() + hold;
    loop {
        {
            let mut state = lock(&shared.state);
            // A busy runner is offered no job: only its other messages (cancellations,
            // token refreshes) reach it.
            let busy = query.get("status").is_some_and(|s| s == "Busy");
            if !busy
                && state.messages.get(&client).is_none_or(|q| q.is_empty())
                && let Some(body) = state.open_jobs.pop_front()
            {
                let request = serde_json::from_str::<Value>(&body).unwrap_or_default();
                let id = request["runner_request_id"].as_str().unwrap_or_default();
                if let Some(job) = state.jobs.iter_mut().find(|j| j.runner_request_id == id) {
                    job.client_id = client.clone();
                }
                state
                    .messages
                    .entry(client.clone())
                    .or_default()
                    .push_back(("RunnerJobRequest".to_string(), body));
            }
            if let Some(queue) = state.messages.get_mut(&client)
                && let Some(at) = queue
                    .iter()
                    .position(|(kind, _)| !(busy && kind == "RunnerJobRequest"))
                && let Some((message_type, body)) = queue.remove(at)
            {
                state.next_message += 1;
                if message_type == "RunnerJobRequest" {
                    let request = serde_json::from_str::<Value>(&body).unwrap_or_default();
                    let id = request["runner_request_id"].as_str().unwrap_or_default();
                    if let Some(job) = state.jobs.iter_mut().find(|j| j.runner_request_id == id) {
                        job.offered_at = Some(std::time::SystemTime::now());
                    }
                }
                return Json(json!({
                    "messageId": state.next_message,
                    "messageType": message_type,
                    "body": body,
                }))
                .into_response();
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return StatusCode::ACCEPTED.into_response();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(super) async fn acknowledge(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    if let Err(r) = check_listener(&shared, &headers, &query) {
        return *r;
    }
    let Some(id) = body["runnerRequestId"].as_str() else {
        return (StatusCode::BAD_REQUEST, "runnerRequestId is required").into_response();
    };
    lock(&shared.state).acknowledged.push(id.to_string());
    StatusCode::OK.into_response()
}
