//! The live console feed: a websocket at `/feed` (the job message's `FeedStreamUrl`) that
//! wants the job's token as `Authorization: Bearer`, as actions/runner's
//! `ResultsServer.cs` connects; every text message is kept with the job it came for
//! (`{count, value, stepId, startLine}`, `TimelineRecordFeedLinesWrapper`).

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{Shared, bearer, lock};

pub(super) async fn socket(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let token = bearer(&headers).unwrap_or_default();
    let job = lock(&shared.state)
        .jobs
        .iter()
        .find(|j| j.job_token == token)
        .map(|j| j.job_id.clone());
    let Some(job) = job else {
        return (StatusCode::UNAUTHORIZED, "not a job's token").into_response();
    };
    upgrade.on_upgrade(move |ws| receive(shared, job, ws))
}

async fn receive(shared: Arc<Shared>, job: String, mut ws: WebSocket) {
    while let Some(Ok(message)) = ws.recv().await {
        match message {
            Message::Text(text) => {
                let batch: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                lock(&shared.state).feed.push((job.clone(), batch));
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
}
