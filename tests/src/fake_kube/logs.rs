//! Container logs of the fake kubelet: bytes appended while a container runs, served by
//! `pods/{name}/log` whole (or its `tailLines`) or followed (`follow=true`) until the
//! container terminates.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

use super::Shared;
use super::api::ApiError;
use super::kubelet::{container_names, rt};
use super::routes::{Call, Target, streaming};

/// `(namespace, pod, container)`.
pub type LogKey = (String, String, String);

#[derive(Debug, Default)]
struct ContainerLog {
    bytes: Vec<u8>,
    done: bool,
}

#[derive(Debug)]
pub struct Logs {
    map: Mutex<HashMap<LogKey, ContainerLog>>,
    changed: watch::Sender<u64>,
}

impl Default for Logs {
    fn default() -> Self {
        Logs {
            map: Mutex::default(),
            changed: watch::channel(0).0,
        }
    }
}

impl Logs {
    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Appends `bytes` to the log of a container (creating it).
    pub fn append(&self, key: &LogKey, bytes: &[u8]) {
        {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            map.entry(key.clone())
                .or_default()
                .bytes
                .extend_from_slice(bytes);
        }
        self.bump();
    }

    /// Marks a container's log complete: followers stop after reading it.
    pub fn finish(&self, key: &LogKey) {
        {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            map.entry(key.clone()).or_default().done = true;
        }
        self.bump();
    }

    /// Forgets the logs of every container of `pod` in `namespace` (the pod was removed);
    /// followers stop.
    pub fn remove_pod(&self, namespace: &str, pod: &str) {
        {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            map.retain(|(ns, p, _), _| !(ns == namespace && p == pod));
        }
        self.bump();
    }

    /// The bytes after `offset` and whether the log is complete; `None` when there is no
    /// such log.
    pub fn read_from(&self, key: &LogKey, offset: usize) -> Option<(Vec<u8>, bool)> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(key)
            .map(|l| (l.bytes.get(offset..).unwrap_or_default().to_vec(), l.done))
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

pub(crate) fn serve(
    shared: &Arc<Shared>,
    target: &Target,
    call: &Call,
) -> Result<Response, ApiError> {
    let name = target.name.clone().unwrap_or_default();
    let pod = shared
        .read(|s| s.get(&target.key()).cloned())
        .ok_or_else(|| ApiError::not_found(rt("pods"), &name))?;
    let names = container_names(&pod);
    let container = match call.q("container") {
        Some(c) if !c.is_empty() => c.to_string(),
        _ if names.len() == 1 => names[0].clone(),
        _ => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                names.join(" ")
            )));
        }
    };
    if !names.contains(&container) {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    let state = pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["name"] == container.as_str()))
        .map(|c| c["state"].clone());
    let waiting = match &state {
        None => Some("ContainerCreating".to_string()),
        Some(s) => s["waiting"]["reason"].as_str().map(str::to_string),
    };
    if let Some(reason) = waiting {
        let why = if reason.contains("ImagePull") {
            "trying and failing to pull image".to_string()
        } else {
            reason
        };
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: {why}"
        )));
    }
    let key: LogKey = (target.ns().to_string(), name, container);
    if !call.flag("follow") {
        let (bytes, _) = shared.logs.read_from(&key, 0).unwrap_or_default();
        let bytes = tail(bytes, call.q("tailLines").and_then(|n| n.parse().ok()));
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain")],
            bytes,
        )
            .into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let mut changes = shared.logs.subscribe();
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let mut offset = 0;
        loop {
            let Some((bytes, done)) = shared.logs.read_from(&key, offset) else {
                return;
            };
            offset += bytes.len();
            if !bytes.is_empty() && tx.send(Bytes::from(bytes)).await.is_err() {
                return;
            }
            if done {
                return;
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                _ = tx.closed() => return,
            }
        }
    });
    Ok(streaming("text/plain", rx))
}

fn tail(bytes: Vec<u8>, lines: Option<usize>) -> Vec<u8> {
    let Some(n) = lines else {
        return bytes;
    };
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    let mut out = all[all.len().saturating_sub(n)..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out.into_bytes()
}
