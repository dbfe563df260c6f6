//! The simulated control plane and kubelet: the Job controller (one pod per attempt,
//! `backoffLimit`, `activeDeadlineSeconds`, `ttlSecondsAfterFinished`, the conditions of
//! Kubernetes 1.31+), the pod lifecycle (scheduling, volume mounts, image pull, running,
//! termination, honouring the injected faults), the volume binder, deletions with
//! propagation, namespace purge, and `pods/{name}/log`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::api::{ApiError, RESOURCES, now, resource_named};
use super::logs::LogKey;
use super::routes::{Call, Target, namespaces, streaming};
use super::store::Key;
use super::{Shared, kaniko, lock};

/// How a pod ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PodEnd {
    Succeeded,
    Failed,
    /// Deleted before it finished (counts as a failed attempt).
    Deleted,
}

fn rt(plural: &str) -> &'static super::api::ResourceType {
    resource_named(plural).unwrap_or(&RESOURCES[0])
}

fn condition(kind: &str, status: bool, reason: Option<&str>, message: Option<&str>) -> Value {
    let mut c = json!({
        "type": kind, "status": if status { "True" } else { "False" },
        "lastProbeTime": null, "lastTransitionTime": now(),
    });
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    if let Some(m) = message {
        c["message"] = json!(m);
    }
    c
}

// ---------------------------------------------------------------------------------------
// Job controller

pub(crate) fn start_job(shared: &Arc<Shared>, key: Key) {
    let shared = Arc::clone(shared);
    tokio::spawn(async move { run_job(shared, key).await });
}

async fn run_job(shared: Arc<Shared>, key: Key) {
    let Some(job) = shared.read(|s| s.get(&key).cloned()) else {
        return;
    };
    let step = shared.options.kubelet_step;
    let deadline = job["spec"]["activeDeadlineSeconds"]
        .as_u64()
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let backoff_limit = job["spec"]["backoffLimit"].as_u64().unwrap_or(6);
    shared.write(|s| {
        s.modify(&key, |j| {
            j["status"]["startTime"] = json!(now());
        })
    });
    let mut failed = 0u64;
    loop {
        let Some(pod_key) = create_job_pod(&shared, &key) else {
            return;
        };
        set_job_counts(&shared, &key, 1, failed, 0);
        let handle = spawn_pod(&shared, pod_key.clone());
        tokio::pin!(handle);
        let end = match deadline {
            Some(at) => tokio::select! {
                end = &mut handle => end.unwrap_or(PodEnd::Failed),
                _ = tokio::time::sleep_until(at) => {
                    delete_pod(&shared, &pod_key);
                    let _ = handle.await;
                    failed += 1;
                    finish_failed(&shared, &key, failed, "DeadlineExceeded", "Job was active longer than specified deadline");
                    return;
                }
            },
            None => handle.await.unwrap_or(PodEnd::Failed),
        };
        if end == PodEnd::Succeeded {
            finish_succeeded(&shared, &key, failed);
            return;
        }
        failed += 1;
        if failed > backoff_limit {
            finish_failed(
                &shared,
                &key,
                failed,
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            );
            return;
        }
        set_job_counts(&shared, &key, 0, failed, 0);
        tokio::time::sleep(step).await;
    }
}

fn set_job_counts(shared: &Shared, key: &Key, active: u64, failed: u64, succeeded: u64) {
    shared.write(|s| {
        s.modify(key, |j| {
            let st = &mut j["status"];
            for (field, n) in [
                ("active", active),
                ("failed", failed),
                ("succeeded", succeeded),
            ] {
                if n > 0 {
                    st[field] = json!(n);
                } else if let Some(m) = st.as_object_mut() {
                    m.remove(field);
                }
            }
            st["ready"] = json!(0);
            st["terminating"] = json!(0);
            st["uncountedTerminatedPods"] = json!({});
        })
    });
}

fn push_condition(job: &mut Value, c: Value) {
    if !job["status"]["conditions"].is_array() {
        job["status"]["conditions"] = json!([]);
    }
    if let Some(list) = job["status"]["conditions"].as_array_mut() {
        list.push(c);
    }
}

fn finish_succeeded(shared: &Shared, key: &Key, failed: u64) {
    set_job_counts(shared, key, 0, failed, 1);
    let reason = Some("CompletionsReached");
    let message = Some("Reached expected number of succeeded pods");
    shared.write(|s| {
        s.modify(key, |j| {
            push_condition(j, condition("SuccessCriteriaMet", true, reason, message))
        })
    });
    shared.write(|s| {
        s.modify(key, |j| {
            j["status"]["completionTime"] = json!(now());
            push_condition(j, condition("Complete", true, reason, message));
        })
    });
    schedule_ttl(shared, key);
}

fn finish_failed(shared: &Shared, key: &Key, failed: u64, reason: &str, message: &str) {
    set_job_counts(shared, key, 0, failed, 0);
    shared.write(|s| {
        s.modify(key, |j| {
            push_condition(
                j,
                condition("FailureTarget", true, Some(reason), Some(message)),
            )
        })
    });
    shared.write(|s| {
        s.modify(key, |j| {
            push_condition(j, condition("Failed", true, Some(reason), Some(message)))
        })
    });
    schedule_ttl(shared, key);
}

/// `ttlSecondsAfterFinished`: the TTL controller deletes the finished Job (background).
fn schedule_ttl(shared: &Shared, key: &Key) {
    let ttl = shared.read(|s| {
        s.get(key)
            .and_then(|j| j["spec"]["ttlSecondsAfterFinished"].as_u64())
    });
    let (Some(ttl), Some(shared)) = (ttl, shared_arc(shared)) else {
        return;
    };
    let key = key.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(ttl)).await;
        delete_job(&shared, &key, "Background");
    });
}

/// The `Arc` of the shared state, for tasks started from code that holds a reference.
fn shared_arc(shared: &Shared) -> Option<Arc<Shared>> {
    shared.me.upgrade()
}

/// Creates the next pod of a Job from its template; `None` when the Job is gone or its
/// namespace is terminating.
fn create_job_pod(shared: &Shared, job_key: &Key) -> Option<Key> {
    shared.write(|s| {
        let job = s.get(job_key)?.clone();
        let ns = s.get(&Key::new(namespaces(), "", &job_key.namespace))?;
        if ns["status"]["phase"] == "Terminating" {
            return None;
        }
        let template = &job["spec"]["template"];
        let mut meta = template["metadata"].clone();
        if !meta.is_object() {
            meta = json!({});
        }
        meta["generateName"] = json!(format!("{}-", job_key.name));
        if !meta["annotations"].is_object() {
            meta["annotations"] = json!({});
        }
        meta["annotations"]["batch.kubernetes.io/job-tracking"] = json!("");
        meta["ownerReferences"] = json!([{
            "apiVersion": "batch/v1", "kind": "Job", "name": job_key.name,
            "uid": job["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
        }]);
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"].clone()});
        super::verbs::set_defaults(rt("pods"), &mut pod, "");
        let created = s.create(rt("pods"), &job_key.namespace, pod).ok()?;
        Some(Key::new(rt("pods"), &job_key.namespace, created["metadata"]["name"].as_str().unwrap_or_default()))
    })
}

// ---------------------------------------------------------------------------------------
// Pods

/// Runs a pod created through the API (not by a Job).
pub(crate) fn start_pod(shared: &Arc<Shared>, key: Key) {
    drop(spawn_pod(shared, key));
}

fn spawn_pod(shared: &Arc<Shared>, key: Key) -> tokio::task::JoinHandle<PodEnd> {
    let token = CancellationToken::new();
    lock(&shared.pods).insert(key.clone(), token.clone());
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let end = tokio::select! {
            end = lifecycle(&shared, &key) => end,
            _ = token.cancelled() => {
                kill(&shared, &key);
                PodEnd::Deleted
            }
        };
        lock(&shared.pods).remove(&key);
        if let Some(pod) = shared.read(|s| s.get(&key).cloned()) {
            for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
                let name = c["name"].as_str().unwrap_or_default().to_string();
                shared
                    .logs
                    .finish(&(key.namespace.clone(), key.name.clone(), name));
            }
            if pod["metadata"].get("deletionTimestamp").is_some() {
                shared.write(|s| s.remove(&key));
                shared.logs.remove_pod(&key.namespace, &key.name);
            }
        }
        end
    })
}

fn set_pod(shared: &Shared, key: &Key, change: impl FnOnce(&mut Value)) -> Option<Value> {
    shared.write(|s| s.modify(key, change))
}

fn container_names(pod: &Value) -> Vec<String> {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Sets the state of every container (`state` is e.g. `{"waiting": {...}}`).
fn set_containers(pod: &mut Value, state: &Value, ready: bool, started: bool) {
    let statuses: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            json!({
                "name": c["name"], "image": c["image"], "imageID": "", "ready": ready,
                "restartCount": 0, "started": started, "state": state,
            })
        })
        .collect();
    pod["status"]["containerStatuses"] = json!(statuses);
}

fn set_conditions(pod: &mut Value, scheduled: bool, ready: bool, reason: Option<&str>) {
    let not_ready = if ready {
        None
    } else {
        Some(reason.unwrap_or("ContainersNotReady"))
    };
    pod["status"]["conditions"] = json!([
        condition("PodReadyToStartContainers", scheduled, None, None),
        condition("Initialized", true, None, None),
        condition("Ready", ready, not_ready, None),
        condition("ContainersReady", ready, not_ready, None),
        condition("PodScheduled", true, None, None),
    ]);
}

/// Which volumes of the pod are not there yet (ConfigMaps, Secrets, bound claims).
fn missing_volume(shared: &Shared, pod: &Value, ns: &str) -> Option<String> {
    for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let (plural, name) = if let Some(n) = v["configMap"]["name"].as_str() {
            ("configmaps", n)
        } else if let Some(n) = v["secret"]["secretName"].as_str() {
            ("secrets", n)
        } else if let Some(n) = v["persistentVolumeClaim"]["claimName"].as_str() {
            ("persistentvolumeclaims", n)
        } else {
            continue;
        };
        let obj = shared.read(|s| s.get(&Key::new(rt(plural), ns, name)).cloned());
        match obj {
            None => return Some(format!("{plural} \"{name}\" not found")),
            Some(o) if plural == "persistentvolumeclaims" && o["status"]["phase"] != "Bound" => {
                return Some(format!("persistentvolumeclaim \"{name}\" is not bound"));
            }
            Some(_) => {}
        }
    }
    None
}

async fn lifecycle(shared: &Arc<Shared>, key: &Key) -> PodEnd {
    let step = shared.options.kubelet_step;
    tokio::time::sleep(step).await;
    // Scheduling.
    while shared.faults().unschedulable {
        let msg = "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.";
        set_pod(shared, key, |p| {
            p["status"]["phase"] = json!("Pending");
            if p["status"]["conditions"][0]["reason"] != "Unschedulable" {
                p["status"]["conditions"] = json!([condition(
                    "PodScheduled",
                    false,
                    Some("Unschedulable"),
                    Some(msg)
                )]);
            }
        });
        tokio::time::sleep(step).await;
    }
    let started = now();
    let Some(pod) = set_pod(shared, key, |p| {
        p["spec"]["nodeName"] = json!("fake-node");
        p["status"]["hostIP"] = json!("127.0.0.1");
        p["status"]["hostIPs"] = json!([{"ip": "127.0.0.1"}]);
        p["status"]["startTime"] = json!(started);
        set_conditions(p, false, false, None);
        set_containers(
            p,
            &json!({"waiting": {"reason": "ContainerCreating"}}),
            false,
            false,
        );
    }) else {
        return PodEnd::Deleted;
    };
    // Volumes: the kubelet waits until every ConfigMap, Secret and claim is there.
    while missing_volume(shared, &pod, &key.namespace).is_some() {
        tokio::time::sleep(step).await;
    }
    tokio::time::sleep(step).await;
    // Image pull.
    let mut backoff = false;
    while shared.faults().image_pull_failure {
        let image = pod["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let waiting = if backoff {
            json!({"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{image}\"")})
        } else {
            json!({"reason": "ErrImagePull", "message": format!("failed to pull and unpack image \"{image}\": not found (injected fault)")})
        };
        set_pod(shared, key, |p| {
            set_containers(p, &json!({"waiting": waiting}), false, false)
        });
        backoff = !backoff;
        tokio::time::sleep(step).await;
    }
    // Running.
    let running_since = now();
    set_pod(shared, key, |p| {
        p["status"]["phase"] = json!("Running");
        p["status"]["podIP"] = json!("10.244.0.10");
        p["status"]["podIPs"] = json!([{"ip": "10.244.0.10"}]);
        set_conditions(p, true, true, None);
        set_containers(
            p,
            &json!({"running": {"startedAt": running_since}}),
            true,
            true,
        );
    });
    set_owner_ready(shared, &pod, 1);
    let names = container_names(&pod);
    let first = names.first().cloned().unwrap_or_default();
    let log: LogKey = (key.namespace.clone(), key.name.clone(), first);
    let container = pod["spec"]["containers"][0].clone();
    let outcome = if names.len() != 1 {
        shared
            .logs
            .append(&log, b"the fake kubelet runs single-container pods only\n");
        kaniko::Outcome::failed(1)
    } else {
        kaniko::run(shared, &pod, &container, &log).await
    };
    shared.logs.finish(&log);
    let finished = now();
    let succeeded = outcome.exit_code == 0;
    let mut terminated = json!({
        "exitCode": outcome.exit_code,
        "reason": if succeeded { "Completed" } else { "Error" },
        "startedAt": running_since, "finishedAt": finished,
        "containerID": format!("containerd://{}", key.name),
    });
    if let Some(m) = &outcome.message {
        terminated["message"] = json!(m);
    }
    set_pod(shared, key, |p| {
        p["status"]["phase"] = json!(if succeeded { "Succeeded" } else { "Failed" });
        set_conditions(p, false, false, Some("PodCompleted"));
        set_containers(p, &json!({"terminated": terminated}), false, false);
    });
    set_owner_ready(shared, &pod, 0);
    if succeeded {
        PodEnd::Succeeded
    } else {
        PodEnd::Failed
    }
}

fn set_owner_ready(shared: &Shared, pod: &Value, ready: u64) {
    for owner in pod["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if owner["kind"] == "Job" {
            let key = Key::new(
                rt("jobs"),
                pod["metadata"]["namespace"].as_str().unwrap_or_default(),
                owner["name"].as_str().unwrap_or_default(),
            );
            shared.write(|s| s.modify(&key, |j| j["status"]["ready"] = json!(ready)));
        }
    }
}

/// A deleted pod's containers are killed (exit 137); the pod then goes.
fn kill(shared: &Shared, key: &Key) {
    set_pod(shared, key, |p| {
        let was_running = p["status"]["phase"] == "Running";
        if was_running {
            let started =
                p["status"]["containerStatuses"][0]["state"]["running"]["startedAt"].clone();
            set_containers(
                p,
                &json!({"terminated": {"exitCode": 137, "reason": "Error", "startedAt": started, "finishedAt": now()}}),
                false,
                false,
            );
        }
        p["status"]["phase"] = json!("Failed");
    });
    for name in shared
        .read(|s| s.get(key).map(container_names))
        .unwrap_or_default()
    {
        shared
            .logs
            .finish(&(key.namespace.clone(), key.name.clone(), name));
    }
}

/// Deletes a pod gracefully: `deletionTimestamp` is set, its containers are killed, then it
/// is removed. Returns the pod as the DELETE answer shows it.
pub(crate) fn delete_pod(shared: &Shared, key: &Key) -> Value {
    let marked = set_pod(shared, key, |p| {
        if p["metadata"].get("deletionTimestamp").is_none() {
            p["metadata"]["deletionTimestamp"] = json!(now());
            p["metadata"]["deletionGracePeriodSeconds"] = json!(30);
        }
    })
    .unwrap_or_default();
    let token = lock(&shared.pods).get(key).cloned();
    match token {
        Some(t) => t.cancel(),
        None => {
            shared.write(|s| s.remove(key));
            shared.logs.remove_pod(&key.namespace, &key.name);
        }
    }
    marked
}

fn owned_pods(shared: &Shared, namespace: &str, uid: &Value) -> Vec<Key> {
    shared.read(|s| {
        s.list("pods", Some(namespace))
            .iter()
            .filter(|p| {
                p["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|o| o.iter().any(|r| r["uid"] == *uid))
            })
            .map(|p| {
                Key::new(
                    rt("pods"),
                    namespace,
                    p["metadata"]["name"].as_str().unwrap_or_default(),
                )
            })
            .collect()
    })
}

/// Deletes a Job with `policy` (`Orphan`, `Background` or `Foreground`).
pub(crate) fn delete_job(shared: &Shared, key: &Key, policy: &str) -> (u16, Value) {
    let Some(job) = shared.read(|s| s.get(key).cloned()) else {
        return (404, ApiError::not_found(rt("jobs"), &key.name).status());
    };
    let uid = job["metadata"]["uid"].clone();
    let pods = owned_pods(shared, &key.namespace, &uid);
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": key.name, "group": "batch", "kind": "jobs", "uid": uid}});
    match policy {
        "Foreground" => {
            let marked = shared.write(|s| {
                s.modify(key, |j| {
                    j["metadata"]["deletionTimestamp"] = json!(now());
                    j["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                    j["metadata"]["finalizers"] = json!(["foregroundDeletion"]);
                })
            });
            for p in &pods {
                delete_pod(shared, p);
            }
            if let Some(shared) = shared_arc(shared) {
                let key = key.clone();
                tokio::spawn(async move {
                    while pods.iter().any(|p| shared.read(|s| s.get(p).is_some())) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    shared.write(|s| s.remove(&key));
                });
            }
            (200, marked.unwrap_or(job))
        }
        "Background" => {
            shared.write(|s| s.remove(key));
            for p in &pods {
                delete_pod(shared, p);
            }
            (200, status)
        }
        _ => {
            for p in &pods {
                set_pod(shared, p, |pod| {
                    if let Some(m) = pod["metadata"].as_object_mut() {
                        m.remove("ownerReferences");
                    }
                });
            }
            shared.write(|s| s.remove(key));
            (200, status)
        }
    }
}

/// Removes everything in a terminating namespace, then the namespace.
pub(crate) async fn purge_namespace(shared: &Arc<Shared>, name: &str) {
    let tokens: Vec<CancellationToken> = lock(&shared.pods)
        .iter()
        .filter(|(k, _)| k.namespace == name)
        .map(|(_, t)| t.clone())
        .collect();
    for t in tokens {
        t.cancel();
    }
    for key in shared.read(|s| s.keys_in(name)) {
        if key.plural == "pods" {
            shared.logs.remove_pod(name, &key.name);
        }
        shared.write(|s| s.remove(&key));
    }
    lock(&shared.volumes).retain(|(ns, _), _| ns != name);
    shared.write(|s| s.remove(&Key::new(namespaces(), "", name)));
}

/// A new claim binds after one kubelet step.
pub(crate) fn bind_claim(shared: &Arc<Shared>, key: Key) {
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        tokio::time::sleep(shared.options.kubelet_step).await;
        shared.write(|s| {
            s.modify(&key, |c| {
                c["status"]["phase"] = json!("Bound");
                c["status"]["accessModes"] = c["spec"]["accessModes"].clone();
                c["status"]["capacity"] =
                    json!({"storage": c["spec"]["resources"]["requests"]["storage"]});
                c["spec"]["volumeName"] = json!(format!(
                    "pvc-{}",
                    c["metadata"]["uid"].as_str().unwrap_or_default()
                ));
            })
        });
    });
}

// ---------------------------------------------------------------------------------------
// Logs

pub(crate) fn log(
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
