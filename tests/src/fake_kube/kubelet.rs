//! The simulated kubelet: the pod lifecycle (scheduling, volume mounts, image pull,
//! running the workload: the Kaniko executor or a shell command, termination), honouring the injected faults; pod deletion, the
//! namespace purge and the volume binder.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::api::{RESOURCES, now, resource_named};
use super::logs::LogKey;
use super::routes::namespaces;
use super::store::Key;
use super::{Shared, containers, events, kaniko, lock, shell};

/// How a pod ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PodEnd {
    Succeeded,
    Failed,
    /// Deleted before it finished (counts as a failed attempt).
    Deleted,
}

pub(crate) fn rt(plural: &str) -> &'static super::api::ResourceType {
    resource_named(plural).unwrap_or(&RESOURCES[0])
}

pub(crate) fn condition(
    kind: &str,
    status: bool,
    reason: Option<&str>,
    message: Option<&str>,
) -> Value {
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

/// Runs a pod created through the API (not by a Job).
pub(crate) fn start_pod(shared: &Arc<Shared>, key: Key) {
    drop(spawn_pod(shared, key));
}

pub(crate) fn spawn_pod(shared: &Arc<Shared>, key: Key) -> tokio::task::JoinHandle<PodEnd> {
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
        // The pod's exec processes end with it.
        lock(&shared.sandboxes).remove(&key);
        lock(&shared.runtimes).remove(&key);
        if let Some(pod) = shared.read(|s| s.get(&key).cloned()) {
            let all = ["initContainers", "containers", "ephemeralContainers"]
                .into_iter()
                .flat_map(|f| pod["spec"][f].as_array().cloned().unwrap_or_default());
            for c in all {
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

pub(crate) fn set_pod(
    shared: &Shared,
    key: &Key,
    change: impl FnOnce(&mut Value),
) -> Option<Value> {
    shared.write(|s| s.modify(key, change))
}

pub(crate) fn container_names(pod: &Value) -> Vec<String> {
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
    let mut reported = false;
    while shared.faults().unschedulable {
        let msg = "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.";
        let pod = set_pod(shared, key, |p| {
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
        if let Some(pod) = pod.filter(|_| !reported) {
            events::record(
                shared,
                &pod,
                "default-scheduler",
                true,
                "FailedScheduling",
                msg,
            );
            reported = true;
        }
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
    let scheduled = format!(
        "Successfully assigned {}/{} to fake-node",
        key.namespace, key.name
    );
    events::record(
        shared,
        &pod,
        "default-scheduler",
        false,
        "Scheduled",
        &scheduled,
    );
    // Volumes: the kubelet waits until every ConfigMap, Secret and claim is there.
    let mut reported = false;
    while let Some(missing) = missing_volume(shared, &pod, &key.namespace) {
        if !reported {
            let msg = format!("MountVolume.SetUp failed: {missing}");
            events::record(shared, &pod, "kubelet", true, "FailedMount", &msg);
            reported = true;
        }
        tokio::time::sleep(step).await;
    }
    tokio::time::sleep(step).await;
    // Pods with init containers, sidecars, several containers, registry images or env
    // from Secrets: the container manager.
    if containers::takes(&pod) {
        return containers::run(shared, key, pod).await;
    }
    // Image pull.
    let image = pod["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    events::record(
        shared,
        &pod,
        "kubelet",
        false,
        "Pulling",
        &format!("Pulling image \"{image}\""),
    );
    let mut backoff = false;
    let mut reported = false;
    while shared.faults().image_pull_failure {
        if !reported {
            let failed = format!("Failed to pull image \"{image}\": not found (injected fault)");
            events::record(shared, &pod, "kubelet", true, "Failed", &failed);
            events::record(
                shared,
                &pod,
                "kubelet",
                true,
                "Failed",
                "Error: ErrImagePull",
            );
            let back_off = format!("Back-off pulling image \"{image}\"");
            events::record(shared, &pod, "kubelet", false, "BackOff", &back_off);
            reported = true;
        }
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
    // Running: a container with `stdin: true` reads what an attach sends.
    let names = container_names(&pod);
    let first = names.first().cloned().unwrap_or_default();
    let log: LogKey = (key.namespace.clone(), key.name.clone(), first);
    let container = pod["spec"]["containers"][0].clone();
    let stdin = (container["stdin"] == json!(true)).then(|| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        lock(&shared.stdin).insert(log.clone(), tx);
        rx
    });
    shared.logs.append(&log, b"");
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
    let pulled = format!("Container image \"{image}\" already present on machine");
    events::record(shared, &pod, "kubelet", false, "Pulled", &pulled);
    let created = format!("Created container: {}", log.2);
    events::record(shared, &pod, "kubelet", false, "Created", &created);
    let started = format!("Started container {}", log.2);
    events::record(shared, &pod, "kubelet", false, "Started", &started);
    if let Some(message) = shared.faults().evict {
        lock(&shared.stdin).remove(&log);
        shared.logs.finish(&log);
        let finished = now();
        set_pod(shared, key, |p| {
            p["status"]["phase"] = json!("Failed");
            p["status"]["reason"] = json!("Evicted");
            p["status"]["message"] = json!(message);
            set_conditions(p, false, false, Some("PodCompleted"));
            if let Some(conditions) = p["status"]["conditions"].as_array_mut() {
                conditions.push(condition(
                    "DisruptionTarget",
                    true,
                    Some("TerminationByKubelet"),
                    Some(&message),
                ));
            }
            set_containers(
                p,
                &json!({"terminated": {"exitCode": 137, "reason": "Error",
                    "startedAt": running_since, "finishedAt": finished}}),
                false,
                false,
            );
        });
        set_owner_ready(shared, &pod, 0);
        events::record(shared, &pod, "kubelet", true, "Evicted", &message);
        return PodEnd::Failed;
    }
    let outcome = if names.len() != 1 {
        shared
            .logs
            .append(&log, b"the fake kubelet runs single-container pods only\n");
        kaniko::Outcome::failed(1)
    } else if container["args"].as_array().is_some_and(|a| {
        a.iter()
            .any(|a| a.as_str().is_some_and(|a| a.starts_with("--context")))
    }) {
        kaniko::run(shared, &pod, &container, &log, stdin).await
    } else {
        shell::run(shared, &pod, &container, &log, stdin).await
    };
    lock(&shared.stdin).remove(&log);
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
        for field in [
            "initContainerStatuses",
            "containerStatuses",
            "ephemeralContainerStatuses",
        ] {
            for c in p["status"][field].as_array_mut().into_iter().flatten() {
                let started = c["state"]["running"]["startedAt"].clone();
                if started.is_null() {
                    continue;
                }
                c["state"] = json!({"terminated": {"exitCode": 137, "reason": "Error",
                    "startedAt": started, "finishedAt": now()}});
                c["ready"] = json!(false);
                if field != "ephemeralContainerStatuses" {
                    c["started"] = json!(false);
                }
            }
        }
        p["status"]["phase"] = json!("Failed");
    });
    let names: Vec<String> = shared
        .read(|s| s.get(key).cloned())
        .map(|pod| {
            ["initContainers", "containers", "ephemeralContainers"]
                .iter()
                .flat_map(|f| pod["spec"][*f].as_array().cloned().unwrap_or_default())
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for name in names {
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
