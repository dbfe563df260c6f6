//! `pods/{name}/attach` over WebSocket, as kube-rs's `Api::attach` speaks it: subprotocol
//! `v5.channel.k8s.io` (or `v4`), binary frames whose first byte is the channel (0 stdin,
//! 1 stdout, 2 stderr, 3 the exit `Status`, 255 close-channel in v5). Stdin goes to the
//! container (with `stdinOnce`, the first attach owns it and closing it is EOF); the
//! container's output after the attach comes back on stdout; its exit code ends the session.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use super::api::ApiError;
use super::kubelet::{container_names, rt};
use super::logs::LogKey;
use super::routes::{error_response, record};
use super::store::Key;
use super::{Shared, lock};

/// Upgrades a `pods/{subresource}` request to Kubernetes' channel WebSocket (the first of
/// [`FakeKubeOptions::stream_protocols`](super::FakeKubeOptions::stream_protocols) the
/// client offers; by default v5, else v4) and runs `session` on it with whether v5 was
/// chosen; a request that is not a WebSocket upgrade gets the API server's 400.
pub(crate) fn upgrade_channel<F, Fut>(
    protocols: Vec<String>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    subresource: &str,
    session: F,
) -> Response
where
    F: FnOnce(WebSocket, bool) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    match ws {
        Err(rejection) => error_response(&ApiError::bad_request(format!(
            "Upgrade request required: pods/{subresource} speaks WebSocket ({rejection})"
        ))),
        Ok(ws) => {
            let ws = ws.protocols(protocols);
            let v5 = ws
                .selected_protocol()
                .is_some_and(|p| p.as_bytes() == super::V5_CHANNEL.as_bytes());
            ws.on_upgrade(move |socket| session(socket, v5))
                .into_response()
        }
    }
}

pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    Path((ns, name)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let path = format!("/api/v1/namespaces/{ns}/pods/{name}/attach");
    record(&shared, &method, &path, &query, &headers, None);
    match prepare(&shared, &ns, &name, &query) {
        Err(e) => error_response(&e),
        Ok(plan) => upgrade_channel(
            shared.options.stream_protocols.clone(),
            ws,
            "attach",
            move |socket, v5| session(shared, socket, plan, v5),
        ),
    }
}

/// What an accepted attach is wired to.
#[derive(Debug)]
struct Plan {
    log: LogKey,
    pod: Key,
    stdin: Option<UnboundedSender<Bytes>>,
    stdout: bool,
    /// Flip one byte of the stdin (the `corrupt_uploads` fault).
    corrupt: bool,
}

fn prepare(
    shared: &Shared,
    ns: &str,
    name: &str,
    query: &[(String, String)],
) -> Result<Plan, ApiError> {
    let q = |k: &str| {
        query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    if lock(&shared.faults).take_api_error("GET", &format!("/namespaces/{ns}/pods/{name}/attach")) {
        return Err(ApiError::internal(format!(
            "injected fault for attach to {ns}/{name}"
        )));
    }
    if lock(&shared.faults).denied("create", "pods/attach") {
        return Err(ApiError::rbac("create", "pods/attach", "", Some(ns)));
    }
    let key = Key::new(rt("pods"), ns, name);
    let pod = shared
        .read(|s| s.get(&key).cloned())
        .ok_or_else(|| ApiError::not_found(rt("pods"), name))?;
    let names = container_names(&pod);
    let container = match q("container") {
        Some(c) if !c.is_empty() => c.to_string(),
        _ => names.first().cloned().unwrap_or_default(),
    };
    if !names.contains(&container) {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    if matches!(phase, "Succeeded" | "Failed") {
        return Err(ApiError::bad_request(format!(
            "cannot attach a container in a completed pod; current phase is {phase}"
        )));
    }
    if phase != "Running" {
        return Err(ApiError::bad_request(format!(
            "pod {name} is not running (phase {phase}); attach once it runs"
        )));
    }
    let log: LogKey = (ns.to_string(), name.to_string(), container.clone());
    let stdin = if q("stdin") == Some("true") {
        let spec = pod["spec"]["containers"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == container.as_str()).cloned())
            .unwrap_or_default();
        if spec["stdin"] != json!(true) {
            return Err(ApiError::bad_request(format!(
                "stdin is not enabled for container {container} of pod {name}"
            )));
        }
        let mut pipes = lock(&shared.stdin);
        if spec["stdinOnce"] == json!(true) {
            pipes.remove(&log)
        } else {
            pipes.get(&log).cloned()
        }
    } else {
        None
    };
    let corrupt = stdin.is_some() && {
        let mut faults = lock(&shared.faults);
        let hit = faults.corrupt_uploads > 0;
        faults.corrupt_uploads = faults.corrupt_uploads.saturating_sub(1);
        hit
    };
    Ok(Plan {
        log,
        pod: key,
        stdin,
        stdout: q("stdout") == Some("true") || q("stderr") == Some("true"),
        corrupt,
    })
}

async fn session(shared: Arc<Shared>, mut socket: WebSocket, plan: Plan, v5: bool) {
    let Plan {
        log,
        pod,
        mut stdin,
        stdout,
        mut corrupt,
    } = plan;
    let mut changes = shared.logs.subscribe();
    let mut offset = shared.logs.read_from(&log, 0).map_or(0, |(b, _)| b.len());
    loop {
        let Some((bytes, done)) = shared.logs.read_from(&log, offset) else {
            return;
        };
        offset += bytes.len();
        if stdout && !bytes.is_empty() {
            let mut frame = vec![1u8];
            frame.extend_from_slice(&bytes);
            if socket.send(Message::Binary(frame.into())).await.is_err() {
                return;
            }
        }
        if done {
            break;
        }
        tokio::select! {
            msg = socket.recv() => match msg {
                Some(Ok(Message::Binary(b))) => match b.first() {
                    Some(0) => {
                        if let Some(tx) = &stdin {
                            let mut data = b.slice(1..);
                            if corrupt && !data.is_empty() {
                                let mut bytes = data.to_vec();
                                let last = bytes.len() - 1;
                                bytes[last] ^= 0x5a;
                                data = Bytes::from(bytes);
                                corrupt = false;
                            }
                            let _ = tx.send(data);
                        }
                    }
                    Some(255) if v5 && b.get(1) == Some(&0) => stdin = None,
                    _ => {}
                },
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            changed = changes.changed() => if changed.is_err() { return },
        }
    }
    drop(stdin);
    let status = exit_status(&shared, &pod, &log.2).await;
    let mut frame = vec![3u8];
    frame.extend_from_slice(status.to_string().as_bytes());
    let _ = socket.send(Message::Binary(frame.into())).await;
    let _ = socket.send(Message::Close(None)).await;
}

/// The `Status` the error channel carries when the container has terminated.
async fn exit_status(shared: &Shared, pod: &Key, container: &str) -> Value {
    for _ in 0..500 {
        let code = shared.read(|s| {
            s.get(pod).and_then(|p| {
                p["status"]["containerStatuses"]
                    .as_array()?
                    .iter()
                    .find(|c| c["name"] == container)?["state"]["terminated"]["exitCode"]
                    .as_i64()
            })
        });
        match code {
            Some(0) => return json!({"metadata": {}, "status": "Success"}),
            Some(code) => {
                return json!({
                    "metadata": {}, "status": "Failure",
                    "message": format!("command terminated with non-zero exit code: exit status {code}"),
                    "reason": "NonZeroExitCode",
                    "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
                });
            }
            None => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    json!({"metadata": {}, "status": "Failure", "message": "the container did not report an exit code", "reason": "InternalError"})
}
