//! Container logs of the fake kubelet: bytes appended while a container runs, served by
//! `pods/{name}/log` whole (or its `tailLines`) or followed (`follow=true`) until the
//! container terminates.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::watch;

use super::Shared;
use super::api::ApiError;
use super::kubelet::rt;
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
    /// The log of each container's previous (terminated) instance, for `previous=true`.
    previous: Mutex<HashMap<LogKey, Vec<u8>>>,
    changed: watch::Sender<u64>,
}

impl Default for Logs {
    fn default() -> Self {
        Logs {
            map: Mutex::default(),
            previous: Mutex::default(),
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

    /// A container restarts: its log so far becomes the previous instance's, and the new
    /// instance starts an empty one (followers of the old one stop).
    pub fn rotate(&self, key: &LogKey) {
        let old = {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            map.insert(key.clone(), ContainerLog::default())
        };
        if let Some(old) = old {
            self.previous
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key.clone(), old.bytes);
        }
        self.bump();
    }

    /// The log of the previous instance of a container, if it restarted.
    pub fn read_previous(&self, key: &LogKey) -> Option<Vec<u8>> {
        self.previous
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// Forgets the logs of every container of `pod` in `namespace` (the pod was removed);
    /// followers stop.
    pub fn remove_pod(&self, namespace: &str, pod: &str) {
        {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            map.retain(|(ns, p, _), _| !(ns == namespace && p == pod));
            self.previous
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|(ns, p, _), _| !(ns == namespace && p == pod));
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
    let container = choose_container(&pod, call.q("container"), &name)?;
    let status = all_statuses(&pod)
        .into_iter()
        .find(|c| c["name"] == container.as_str());
    let key: LogKey = (target.ns().to_string(), name.clone(), container.clone());
    let previous = call.flag("previous");
    // Which instance's log, as the kubelet's validateContainerLogStatus picks it.
    let state = status
        .as_ref()
        .map(|c| c["state"].clone())
        .unwrap_or(Value::Null);
    let last = status
        .as_ref()
        .map(|c| c["lastState"]["terminated"].clone())
        .unwrap_or(Value::Null);
    let last_instance = shared.logs.read_previous(&key);
    let from_last = if previous {
        match last_instance {
            Some(bytes) if last.is_object() => Some(bytes),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "previous terminated container \"{container}\" in pod \"{name}\" not found"
                )));
            }
        }
    } else if state.get("running").is_some() || state.get("terminated").is_some() {
        None
    } else if last.is_object() {
        Some(last_instance.unwrap_or_default())
    } else {
        let reason = match &status {
            None => "ContainerCreating".to_string(),
            Some(s) => s["state"]["waiting"]["reason"]
                .as_str()
                .unwrap_or("ContainerCreating")
                .to_string(),
        };
        let why = match reason.as_str() {
            "ErrImagePull" => "image can't be pulled".to_string(),
            "ImagePullBackOff" => "trying and failing to pull image".to_string(),
            _ => reason,
        };
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: {why}"
        )));
    };
    if let Some(bytes) = from_last {
        let bytes = tail(bytes, call.q("tailLines").and_then(|n| n.parse().ok()));
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain")],
            bytes,
        )
            .into_response());
    }
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

/// The container a `log`, `exec` or `attach` request is for, as the API server's
/// `streamLocation` picks it: the one named (any container, init container or ephemeral
/// container), else the pod's only container.
pub(crate) fn choose_container(
    pod: &Value,
    asked: Option<&str>,
    name: &str,
) -> Result<String, ApiError> {
    let names = |field: &str| -> Vec<String> {
        pod["spec"][field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect()
    };
    let (mains, inits, ephemeral) = (
        names("containers"),
        names("initContainers"),
        names("ephemeralContainers"),
    );
    match asked.filter(|c| !c.is_empty()) {
        Some(c) if mains.iter().chain(&inits).chain(&ephemeral).any(|n| n == c) => {
            Ok(c.to_string())
        }
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if mains.len() == 1 => Ok(mains[0].clone()),
        None => {
            let mut e = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                mains.join(" ")
            );
            if !inits.is_empty() {
                e.push_str(&format!(
                    " or one of the init containers: [{}]",
                    inits.join(" ")
                ));
            }
            if !ephemeral.is_empty() {
                e.push_str(&format!(
                    " or one of the ephemeral containers: [{}]",
                    ephemeral.join(" ")
                ));
            }
            Err(ApiError::bad_request(e))
        }
    }
}

/// The statuses of the init containers, the containers, then the ephemeral containers.
pub(crate) fn all_statuses(pod: &Value) -> Vec<Value> {
    [
        "initContainerStatuses",
        "containerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .flat_map(|f| pod["status"][*f].as_array().cloned().unwrap_or_default())
    .collect()
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
