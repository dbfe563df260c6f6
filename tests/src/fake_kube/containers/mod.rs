//! The kubelet's container manager for the pods a CI job runs in: init containers,
//! native sidecars (KEP-753), several containers, ephemeral containers (KEP-277), images from a loopback registry, env from
//! Secrets and ConfigMaps, `hostAliases`. Which pods take this path: see [`takes`]; the
//! others (Kaniko executors, the context loader's shell) keep the simpler lifecycle of
//! `kubelet`. The processes themselves are `pod_runtime`'s.
//!
//! Modelled on kubernetes/kubernetes (read at the index's snapshot, kubelet_pods.go at
//! df5f02437d38bc34f37e48b584b83a7227db3977):
//! - pkg/kubelet/kuberuntime/kuberuntime_manager.go (`computePodActions`): init containers
//!   run one at a time, in order, each to completion; an init container with
//!   `restartPolicy: Always` (a sidecar) is started and kept running, and the next one (at
//!   last the main containers) starts only once it is *started*: its startupProbe
//!   succeeded, or it runs when it has none. The pod is `Pending` with `Initialized=False`
//!   until then. When the main containers are done, the sidecars are stopped.
//! - pkg/kubelet/prober (worker.go, prober.go): startup probes (`exec` in the container,
//!   `tcpSocket`, `httpGet` to the pod IP) after `initialDelaySeconds`, every
//!   `periodSeconds`, `timeoutSeconds` each, `successThreshold`/`failureThreshold` in a row;
//!   a failure records `Unhealthy` "Startup probe failed: …"; at the threshold the
//!   container is killed ("Container X failed startup probe, will be restarted", SIGTERM,
//!   then SIGKILL after the probe's or the pod's `terminationGracePeriodSeconds`) and
//!   restarted.
//! - Restarts (kuberuntime_manager.go `doBackOff`): the first restart is at once, the next
//!   ones wait a back-off (`CrashLoopBackOff`, "back-off 10s restarting failed
//!   container=X pod=P_NS(UID)", doubling up to 5 min; the first step is
//!   [`super::FakeKubeOptions::crash_loop_back_off`], 10 s as in the kubelet unless a test
//!   shortens it). `restartCount`, `lastState.terminated`, `previous` logs.
//! - pkg/kubelet/images/image_manager.go: `Pulling`, `Pulled` ("Successfully pulled image
//!   … in …", or "already present on machine" under `IfNotPresent`), `Failed` "Failed to
//!   pull image …: …" + "Error: ErrImagePull", then `ImagePullBackOff` "Back-off pulling
//!   image …"; the waiting message is the runtime's error. `FailedToRetrieveImagePullSecret`
//!   for a missing pull Secret.
//! - Ephemeral containers (`computePodActions`, `SyncPod` step 5): each one added through
//!   `pods/ephemeralcontainers` is started once, whether the pod is initialized or not,
//!   like any container (image pull, env, the pod's network and volumes, working folder,
//!   Entrypoint/Cmd), and never restarted; it has no probes, is never ready, does not
//!   count for the pod's phase or conditions, and is stopped with the pod. Its status is in
//!   `ephemeralContainerStatuses`, its events name `spec.ephemeralContainers{NAME}`. A pod
//!   that ended takes up no new one (pkg/kubelet/pod_workers.go `UpdatePod`: "Pod is
//!   finished processing, no further updates").
//! - pkg/kubelet/kubelet_pods.go: `makeEnvironmentVariables` (`secretKeyRef` and
//!   `configMapKeyRef`: `secret "x" not found`, `couldn't find key K in Secret NS/NAME`,
//!   unless `optional`; `$(VAR)` expansion) giving `CreateContainerConfigError`;
//!   `managedHostsFileContent` (the hosts file with the pod's own line and the
//!   "# Entries added by HostAliases." block).
//!
//! A container's log ends with each of its instances: a follower stops when the container
//! exits (the CRI log reader stops following a container that is no longer running).
//!
//! Not modelled: `targetContainerName` (an ephemeral container gets a PID namespace of its
//! own, not its target's), liveness and readiness probes (a container is ready once started),
//! postStart/preStop hooks, resource limits, `readOnly` mounts, a grace period on pod
//! deletion (a deleted pod's processes are killed at once, as elsewhere in the fake).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::api::now;
use super::images::{self, Image, loopback_reference};
use super::kaniko::pump;
use super::kubelet::{PodEnd, condition, rt, set_pod};
use super::logs::LogKey;
use super::pod_runtime::{DEFAULT_PATH, PodSandbox, RootKind, Start, child_of};
use super::store::Key;
use super::{Shared, events, lock};

mod environment;
mod lifecycle;
mod probes;
mod pull;

use environment::*;
use lifecycle::*;
use probes::*;
use pull::*;

/// The pod IP every pod of the fake gets (on `lo` of its own network namespace).
pub(crate) const POD_IP: &str = "10.244.0.10";

/// The longest crash-loop and image-pull back-off (the kubelet's `MaxContainerBackOff`).
const MAX_BACK_OFF: Duration = Duration::from_secs(300);

/// Whether a pod runs on this path: it has init containers, several containers, an image
/// on a loopback registry, host aliases, or env from Secrets or ConfigMaps. Kaniko pods
/// (`--context` args) never do. A pod on the simpler path shares the host's network and
/// never starts an ephemeral container (a test that adds one gives the pod a registry
/// image).
pub(crate) fn takes(pod: &Value) -> bool {
    let spec = &pod["spec"];
    let containers: Vec<&Value> = all_containers(pod).collect();
    let kaniko = spec["containers"][0]["args"].as_array().is_some_and(|a| {
        a.iter()
            .any(|a| a.as_str().is_some_and(|a| a.starts_with("--context")))
    });
    if kaniko {
        return false;
    }
    spec["initContainers"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
        || spec["containers"].as_array().is_some_and(|a| a.len() > 1)
        || spec["hostAliases"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        || containers.iter().any(|c| {
            c["image"]
                .as_str()
                .is_some_and(|i| loopback_reference(i).is_some())
                || c["envFrom"].as_array().is_some_and(|a| !a.is_empty())
                || c["env"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|e| e.get("valueFrom").is_some())
        })
}

fn all_containers(pod: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers"]
        .into_iter()
        .flat_map(|f| pod["spec"][f].as_array().into_iter().flatten())
}

/// The hosts file the kubelet writes for a pod (`managedHostsFileContent`).
pub(crate) fn hosts_file(pod: &Value, ip: &str) -> String {
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n",
    );
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let hostname = pod["spec"]["hostname"].as_str().unwrap_or(name);
    match pod["spec"]["subdomain"].as_str() {
        Some(sub) if !sub.is_empty() => {
            let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
            out.push_str(&format!(
                "{ip}\t{hostname}.{sub}.{ns}.svc.cluster.local\t{hostname}\n"
            ));
        }
        _ => out.push_str(&format!("{ip}\t{hostname}\n")),
    }
    let aliases = pod["spec"]["hostAliases"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !aliases.is_empty() {
        out.push_str("\n# Entries added by HostAliases.\n");
        for a in aliases {
            let names: Vec<&str> = a["hostnames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            out.push_str(&format!(
                "{}\t{}\n",
                a["ip"].as_str().unwrap_or_default(),
                names.join("\t")
            ));
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Init,
    Sidecar,
    Main,
    /// Added through `pods/ephemeralcontainers` while the pod runs; never restarted.
    Ephemeral,
}

/// The status of one container as the kubelet reports it.
#[derive(Debug, Clone)]
struct CStatus {
    image: String,
    image_id: String,
    container_id: Option<String>,
    state: Value,
    last_state: Value,
    restart_count: u32,
    started: bool,
    ready: bool,
}

#[derive(Debug)]
struct State {
    statuses: HashMap<String, CStatus>,
    init_done: bool,
    phase: &'static str,
    /// The ephemeral containers the kubelet took up, in that order.
    ephemeral: Vec<Value>,
}

struct Ctx {
    shared: Arc<Shared>,
    key: Key,
    pod: Value,
    sandbox: Arc<PodSandbox>,
    state: Mutex<State>,
    /// The pod ends: supervisors stop their containers (gracefully) and return.
    stop: CancellationToken,
    /// Volume name → host folder.
    volumes: HashMap<String, PathBuf>,
}

impl Ctx {
    fn uid(&self) -> String {
        self.pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn ns(&self) -> &str {
        &self.key.namespace
    }

    fn field_path(&self, role: Role, name: &str) -> String {
        match role {
            Role::Main => format!("spec.containers{{{name}}}"),
            Role::Ephemeral => format!("spec.ephemeralContainers{{{name}}}"),
            _ => format!("spec.initContainers{{{name}}}"),
        }
    }

    fn event(&self, role: Role, name: &str, warning: bool, reason: &str, message: &str) {
        let pod = self
            .shared
            .read(|s| s.get(&self.key).cloned())
            .unwrap_or_else(|| self.pod.clone());
        events::record_about(
            &self.shared,
            &pod,
            Some(&self.field_path(role, name)),
            "kubelet",
            warning,
            reason,
            message,
        );
    }

    fn update(&self, name: &str, change: impl FnOnce(&mut CStatus)) {
        {
            let mut state = lock(&self.state);
            if let Some(s) = state.statuses.get_mut(name) {
                change(s);
            }
        }
        self.publish();
    }

    fn waiting(&self, name: &str, reason: &str, message: Option<&str>) {
        let mut w = json!({"reason": reason});
        if let Some(m) = message {
            w["message"] = json!(m);
        }
        self.update(name, |s| s.state = json!({"waiting": w}));
    }

    fn pod_name(&self) -> String {
        format!("{}_{}({})", self.key.name, self.key.namespace, self.uid())
    }

    fn log_key(&self, name: &str) -> LogKey {
        (
            self.key.namespace.clone(),
            self.key.name.clone(),
            name.to_string(),
        )
    }

    fn back_off_start(&self) -> Duration {
        self.shared.options.crash_loop_back_off
    }

    /// Writes the pod's status from the containers' (phase, conditions, both status lists).
    fn publish(&self) {
        let state = lock(&self.state);
        let status_of = |c: &Value| -> Value {
            let name = c["name"].as_str().unwrap_or_default();
            let s = state.statuses.get(name);
            let mut v = json!({
                "name": name,
                "image": c["image"],
                "imageID": s.map(|s| s.image_id.clone()).unwrap_or_default(),
                "ready": s.is_some_and(|s| s.ready),
                "restartCount": s.map_or(0, |s| s.restart_count),
                "started": s.is_some_and(|s| s.started),
                "state": s.map_or(json!({"waiting": {"reason": "PodInitializing"}}), |s| s.state.clone()),
                "lastState": s.map_or(json!({}), |s| s.last_state.clone()),
            });
            if let Some(id) = s.and_then(|s| s.container_id.clone()) {
                v["containerID"] = json!(id);
            }
            if let Some(s) = s {
                v["image"] = json!(s.image);
            }
            v
        };
        let spec = &self.pod["spec"];
        // An ephemeral container has no `started` (the prober reports none for it) and
        // is never ready.
        let ephemeral: Vec<Value> = state
            .ephemeral
            .iter()
            .map(|c| {
                let mut v = status_of(c);
                if let Some(m) = v.as_object_mut() {
                    m.remove("started");
                }
                v
            })
            .collect();
        let inits: Vec<Value> = spec["initContainers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(status_of)
            .collect();
        let mains: Vec<Value> = spec["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(status_of)
            .collect();
        let incomplete: Vec<String> = spec["initContainers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| {
                let s = state.statuses.get(c["name"].as_str().unwrap_or_default());
                if c["restartPolicy"] == "Always" {
                    !s.is_some_and(|s| s.started)
                } else {
                    !s.is_some_and(|s| s.state["terminated"]["exitCode"] == 0)
                }
            })
            .map(|c| c["name"].as_str().unwrap_or_default().to_string())
            .collect();
        let unready: Vec<String> = spec["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(
                spec["initContainers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|c| c["restartPolicy"] == "Always"),
            )
            .filter(|c| {
                !state
                    .statuses
                    .get(c["name"].as_str().unwrap_or_default())
                    .is_some_and(|s| s.ready)
            })
            .map(|c| c["name"].as_str().unwrap_or_default().to_string())
            .collect();
        let phase = state.phase;
        let ended = matches!(phase, "Succeeded" | "Failed");
        let initialized = if state.init_done || incomplete.is_empty() {
            condition("Initialized", true, None, None)
        } else {
            let msg = format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            );
            condition(
                "Initialized",
                false,
                Some("ContainersNotInitialized"),
                Some(&msg),
            )
        };
        let ready = |kind: &str| {
            if ended {
                condition(kind, false, Some("PodCompleted"), None)
            } else if unready.is_empty() {
                condition(kind, true, None, None)
            } else {
                let msg = format!("containers with unready status: [{}]", unready.join(" "));
                condition(kind, false, Some("ContainersNotReady"), Some(&msg))
            }
        };
        let conditions = json!([
            condition("PodReadyToStartContainers", !ended, None, None),
            initialized,
            ready("Ready"),
            ready("ContainersReady"),
            condition("PodScheduled", true, None, None),
        ]);
        drop(state);
        set_pod(&self.shared, &self.key, |p| {
            p["status"]["phase"] = json!(phase);
            p["status"]["podIP"] = json!(POD_IP);
            p["status"]["podIPs"] = json!([{"ip": POD_IP}]);
            p["status"]["conditions"] = conditions;
            if inits.is_empty() {
                if let Some(s) = p["status"].as_object_mut() {
                    s.remove("initContainerStatuses");
                }
            } else {
                p["status"]["initContainerStatuses"] = json!(inits);
            }
            p["status"]["containerStatuses"] = json!(mains);
            if !ephemeral.is_empty() {
                p["status"]["ephemeralContainerStatuses"] = json!(ephemeral);
            }
        });
    }
}

/// Runs a pod on this path, from its scheduled and volume-ready state to its end.
pub(crate) async fn run(shared: &Arc<Shared>, key: &Key, pod: Value) -> PodEnd {
    let dir = shared
        .work_dir
        .join(format!("{}-{}-pod", key.namespace, key.name));
    let hosts = hosts_file(&pod, POD_IP);
    let hostname = pod["spec"]["hostname"]
        .as_str()
        .unwrap_or(&key.name)
        .to_string();
    let sandbox = match PodSandbox::create(&dir, &hostname, POD_IP, &hosts) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            let msg = format!("Failed to create pod sandbox: {e}");
            events::record(
                shared,
                &pod,
                "kubelet",
                true,
                "FailedCreatePodSandBox",
                &msg,
            );
            set_pod(shared, key, |p| {
                p["status"]["phase"] = json!("Failed");
                p["status"]["message"] = json!(msg);
            });
            return PodEnd::Failed;
        }
    };
    lock(&shared.runtimes).insert(key.clone(), Arc::clone(&sandbox));
    let volumes = match prepare_volumes(shared, &pod, &key.namespace, &dir.join("volumes")) {
        Ok(v) => v,
        Err(e) => {
            let msg = format!("MountVolume.SetUp failed: {e}");
            events::record(shared, &pod, "kubelet", true, "FailedMount", &msg);
            set_pod(shared, key, |p| p["status"]["phase"] = json!("Failed"));
            return PodEnd::Failed;
        }
    };
    let statuses = all_containers(&pod)
        .map(|c| {
            let name = c["name"].as_str().unwrap_or_default().to_string();
            let status = CStatus {
                image: c["image"].as_str().unwrap_or_default().to_string(),
                image_id: String::new(),
                container_id: None,
                state: json!({"waiting": {"reason": "PodInitializing"}}),
                last_state: json!({}),
                restart_count: 0,
                started: false,
                ready: false,
            };
            (name, status)
        })
        .collect();
    let ctx = Arc::new(Ctx {
        shared: Arc::clone(shared),
        key: key.clone(),
        pod: pod.clone(),
        sandbox,
        state: Mutex::new(State {
            statuses,
            init_done: false,
            phase: "Pending",
            ephemeral: Vec::new(),
        }),
        stop: CancellationToken::new(),
        volumes,
    });
    ctx.publish();
    // Ephemeral containers start whenever they are added, initialized or not.
    let mut ephemeral = JoinSet::new();
    ephemeral.spawn(take_up_ephemeral(Arc::clone(&ctx)));
    let mut sidecars = JoinSet::new();
    let inits = pod["spec"]["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for c in inits {
        let (tx, mut rx) = watch::channel(false);
        if c["restartPolicy"] == "Always" {
            sidecars.spawn(supervise(Arc::clone(&ctx), c, Role::Sidecar, tx));
            while !*rx.borrow_and_update() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        } else {
            let code = supervise(Arc::clone(&ctx), c, Role::Init, tx).await;
            if code != 0 {
                ctx.stop.cancel();
                while sidecars.join_next().await.is_some() {}
                while ephemeral.join_next().await.is_some() {}
                lock(&ctx.state).phase = "Failed";
                ctx.publish();
                return PodEnd::Failed;
            }
        }
    }
    lock(&ctx.state).init_done = true;
    ctx.publish();
    let mut mains = JoinSet::new();
    for c in pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let (tx, _rx) = watch::channel(false);
        mains.spawn(supervise(Arc::clone(&ctx), c, Role::Main, tx));
    }
    let mut ok = true;
    while let Some(code) = mains.join_next().await {
        ok &= code.is_ok_and(|c| c == 0);
    }
    ctx.stop.cancel();
    while sidecars.join_next().await.is_some() {}
    while ephemeral.join_next().await.is_some() {}
    lock(&ctx.state).phase = if ok { "Succeeded" } else { "Failed" };
    ctx.publish();
    if ok {
        PodEnd::Succeeded
    } else {
        PodEnd::Failed
    }
}

/// Starts every ephemeral container added to the pod while it runs, once each, as the
/// kubelet's `computePodActions` does ("Ephemeral containers may be started even if
/// initialization is not yet complete", "Ephemeral Containers are never restarted": one is
/// started when the runtime has no container of its name). Until it runs, its status
/// waits with the kubelet's default reason (`convertToAPIContainerStatuses` with
/// `hasInitContainers`: `PodInitializing` in a pod with init containers, else
/// `ContainerCreating`). Once the pod ends (`stop`), none is taken up any more: the kubelet
/// syncs no terminated pod. Returns when those started have ended.
async fn take_up_ephemeral(ctx: Arc<Ctx>) {
    let mut changes = ctx.shared.changes.subscribe();
    let mut running = JoinSet::new();
    let mut known: Vec<String> = Vec::new();
    let waiting = if ctx.pod["spec"]["initContainers"]
        .as_array()
        .is_some_and(|i| !i.is_empty())
    {
        "PodInitializing"
    } else {
        "ContainerCreating"
    };
    loop {
        let specs = ctx
            .shared
            .read(|s| {
                s.get(&ctx.key)
                    .map(|p| p["spec"]["ephemeralContainers"].clone())
            })
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default();
        for spec in specs {
            let name = spec["name"].as_str().unwrap_or_default().to_string();
            if known.contains(&name) {
                continue;
            }
            known.push(name.clone());
            {
                let mut state = lock(&ctx.state);
                state.ephemeral.push(spec.clone());
                state.statuses.insert(
                    name,
                    CStatus {
                        image: spec["image"].as_str().unwrap_or_default().to_string(),
                        image_id: String::new(),
                        container_id: None,
                        state: json!({"waiting": {"reason": waiting}}),
                        last_state: json!({}),
                        restart_count: 0,
                        started: false,
                        ready: false,
                    },
                );
            }
            ctx.publish();
            let (tx, _rx) = watch::channel(false);
            running.spawn(supervise(Arc::clone(&ctx), spec, Role::Ephemeral, tx));
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { break },
            () = ctx.stop.cancelled() => break,
        }
    }
    while running.join_next().await.is_some() {}
}

/// One host folder per pod volume: emptyDir (and any other kind) empty, ConfigMaps and
/// Secrets projected as files, persistent volume claims filled from the fake's store.
fn prepare_volumes(
    shared: &Shared,
    pod: &Value,
    ns: &str,
    dir: &std::path::Path,
) -> Result<HashMap<String, PathBuf>, String> {
    let mut out = HashMap::new();
    for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or_default();
        let host = dir.join(name);
        std::fs::create_dir_all(&host)
            .map_err(|e| format!("cannot create {}: {e}", host.display()))?;
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        if let Some(cm) = v["configMap"]["name"].as_str() {
            let obj = shared.read(|s| s.get(&Key::new(rt("configmaps"), ns, cm)).cloned());
            for (k, val) in obj
                .as_ref()
                .and_then(|o| o["data"].as_object())
                .into_iter()
                .flatten()
            {
                files.push((
                    k.clone(),
                    val.as_str().unwrap_or_default().as_bytes().to_vec(),
                ));
            }
        } else if let Some(secret) = v["secret"]["secretName"].as_str() {
            let obj = shared.read(|s| s.get(&Key::new(rt("secrets"), ns, secret)).cloned());
            for (k, val) in obj
                .as_ref()
                .and_then(|o| o["data"].as_object())
                .into_iter()
                .flatten()
            {
                files.push((k.clone(), decode(val)));
            }
        } else if let Some(claim) = v["persistentVolumeClaim"]["claimName"].as_str()
            && let Some(existing) = lock(&shared.volumes).get(&(ns.to_string(), claim.to_string()))
        {
            files.extend(existing.iter().map(|(k, b)| (k.clone(), b.clone())));
        }
        for (rel, bytes) in files {
            let file = host.join(rel);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            std::fs::write(&file, bytes)
                .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        }
        out.insert(name.to_string(), host);
    }
    Ok(out)
}

fn decode(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap_or_default())
        .unwrap_or_default()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// Go's `time.Duration` text for durations a test sees (`500ms`, `1.5s`, `10s`, `1m20s`).
pub(crate) fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        let s = format!("{:.3}", secs);
        let s = s.trim_end_matches('0').trim_end_matches('.');
        return format!("{s}s");
    }
    let whole = d.as_secs();
    let (h, m, s) = (whole / 3600, (whole % 3600) / 60, whole % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else {
        format!("{m}m{s}s")
    }
}

/// Sleeps `d` unless the pod ends first (then `false`).
async fn pause(ctx: &Ctx, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = ctx.stop.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_files_carry_the_pod_and_its_aliases() {
        let pod = json!({"metadata": {"name": "job", "namespace": "ns"}, "spec": {
            "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["postgres", "redis"]}]}});
        let hosts = hosts_file(&pod, "10.244.0.10");
        assert!(hosts.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(hosts.contains("10.244.0.10\tjob\n"));
        assert!(hosts.ends_with("\n# Entries added by HostAliases.\n127.0.0.1\tpostgres\tredis\n"));
    }

    #[test]
    fn durations_read_as_go_prints_them() {
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
    }

    #[test]
    fn references_expand_as_the_kubelet_expands_them() {
        let vars = vec![("A".to_string(), "x".to_string())];
        assert_eq!(expand("$(A)-$(B)-$$(A)", &vars), "x-$(B)-$(A)");
    }

    #[test]
    fn command_overrides_entrypoint_and_args_override_cmd() {
        let image = Image {
            id: String::new(),
            rootfs: PathBuf::new(),
            entrypoint: vec!["ep".into()],
            cmd: vec!["cmd".into()],
            env: Vec::new(),
            working_dir: String::new(),
            size: 0,
        };
        let run = |spec: Value| argv(&spec, Some(&image), &[]);
        assert_eq!(run(json!({})), ["ep", "cmd"]);
        assert_eq!(run(json!({"args": ["a"]})), ["ep", "a"]);
        assert_eq!(run(json!({"command": ["c"]})), ["c"]);
        assert_eq!(run(json!({"command": ["c"], "args": ["a"]})), ["c", "a"]);
    }
}
