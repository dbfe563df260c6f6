//! The simulated kubelet of workload pods: nothing runs, but each container goes through
//! the states and events the kubelet gives it, decided by the real registry
//! (`images`). Init containers run one at a time to completion (a sidecar, `restartPolicy:
//! Always`, only until it started), then the containers start together:
//! - image present: `Pulling`/`Pulled` (or "already present on machine" under
//!   `IfNotPresent`), `Created`, `Started`; running and ready, its `imageID`
//!   `<registry>/<repo>@<digest>` (pkg/kubelet/images/image_manager.go);
//! - image absent: `Failed` "Failed to pull image ...", "Error: ErrImagePull", waiting
//!   `ErrImagePull` with containerd's message, then `BackOff` "Back-off pulling image ...",
//!   "Error: ImagePullBackOff", waiting `ImagePullBackOff` ("Back-off pulling image "x":
//!   ErrImagePull: <message>", as 1.31's `prevPullErrMsg` puts it), and a new pull after
//!   the back-off ([`super::super::FakeKubeOptions::image_pull_back_off`], doubling up to
//!   5 min);
//! - image config labelled [`super::CRASH_LABEL`]: the container starts (`Created`,
//!   `Started`), writes the label's lines as its log, exits 1 (`Error`) within a kubelet
//!   step, before the PLEG could see it run: its status goes from waiting to terminated,
//!   never running or ready; the first restart is at once, the next
//!   ones after the crash-loop back-off (`CrashLoopBackOff`, "back-off 10s restarting
//!   failed container=c pod=p_ns(uid)", kuberuntime_manager.go `doBackOff`), each restart
//!   moving the log to the previous instance's;
//! - env from a missing Secret, ConfigMap or key: `CreateContainerConfigError` until it
//!   appears.
//!
//! The pod conditions (PodReadyToStartContainers, Initialized, Ready, ContainersReady,
//! PodScheduled) change their `lastTransitionTime` only when their status changes, so
//! `minReadySeconds` counts from the moment the pod became ready. Deleting the pod (a
//! scale-down, the namespace going) stops its containers (exit 137) and removes it after a
//! kubelet step.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::super::api::now;
use super::super::containers::go_duration;
use super::super::kubelet::set_pod;
use super::super::logs::LogKey;
use super::super::store::Key;
use super::super::{Shared, events, lock};
use super::images::{self, Inspected};
use super::{next_pod_ip, node_images, terminating};

mod pull;
mod status;

use pull::ensure_image;

/// The kubelet's `MaxContainerBackOff`.
const MAX_BACK_OFF: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Init,
    Sidecar,
    Main,
}

#[derive(Debug, Clone)]
struct Container {
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
    containers: HashMap<String, Container>,
    phase: &'static str,
    init_done: bool,
    scheduled: bool,
    /// Each condition's status and when it last changed.
    since: HashMap<&'static str, (bool, String)>,
}

struct Sim {
    shared: Arc<Shared>,
    key: Key,
    pod: Value,
    ip: String,
    started_at: String,
    stop: CancellationToken,
    state: Mutex<State>,
}

/// Runs the pod at `key` until it is deleted.
pub(super) fn start(shared: &Arc<Shared>, key: Key) {
    let token = CancellationToken::new();
    lock(&shared.pods).insert(key.clone(), token.clone());
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let Some(pod) = shared.read(|s| s.get(&key).cloned()) else {
            lock(&shared.pods).remove(&key);
            return;
        };
        let waiting = if has_inits(&pod) {
            "PodInitializing"
        } else {
            "ContainerCreating"
        };
        let containers = ["initContainers", "containers"]
            .iter()
            .flat_map(|f| pod["spec"][*f].as_array().cloned().unwrap_or_default())
            .map(|c| {
                let name = c["name"].as_str().unwrap_or_default().to_string();
                let status = Container {
                    image: c["image"].as_str().unwrap_or_default().to_string(),
                    image_id: String::new(),
                    container_id: None,
                    state: json!({"waiting": {"reason": waiting}}),
                    last_state: json!({}),
                    restart_count: 0,
                    started: false,
                    ready: false,
                };
                (name, status)
            })
            .collect();
        let sim = Arc::new(Sim {
            ip: next_pod_ip(&shared),
            shared: Arc::clone(&shared),
            key: key.clone(),
            pod,
            started_at: now(),
            stop: CancellationToken::new(),
            state: Mutex::new(State {
                containers,
                phase: "Pending",
                init_done: false,
                scheduled: false,
                since: HashMap::new(),
            }),
        });
        tokio::select! {
            () = run(Arc::clone(&sim)) => {}
            () = token.cancelled() => {}
        }
        sim.stop.cancel();
        sim.kill();
        lock(&shared.pods).remove(&key);
        let deleted = shared.read(|s| s.get(&key).is_some_and(terminating));
        if deleted {
            tokio::time::sleep(shared.options.kubelet_step).await;
            shared.write(|s| s.remove(&key));
            shared.logs.remove_pod(&key.namespace, &key.name);
        }
    });
}

fn has_inits(pod: &Value) -> bool {
    pod["spec"]["initContainers"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
}

impl Sim {
    fn log_key(&self, name: &str) -> LogKey {
        (
            self.key.namespace.clone(),
            self.key.name.clone(),
            name.to_string(),
        )
    }

    fn event(&self, role: Role, name: &str, warning: bool, reason: &str, message: &str) {
        let pod = self
            .shared
            .read(|s| s.get(&self.key).cloned())
            .unwrap_or_else(|| self.pod.clone());
        let path = match role {
            Role::Main => format!("spec.containers{{{name}}}"),
            _ => format!("spec.initContainers{{{name}}}"),
        };
        events::record_about(
            &self.shared,
            &pod,
            Some(&path),
            "kubelet",
            warning,
            reason,
            message,
        );
    }

    fn update(&self, name: &str, change: impl FnOnce(&mut Container)) {
        if let Some(c) = lock(&self.state).containers.get_mut(name) {
            change(c);
        }
        self.publish();
    }

    fn waiting(&self, name: &str, reason: &str, message: &str) {
        let w = json!({"waiting": {"reason": reason, "message": message}});
        self.update(name, |c| {
            c.state = w;
            c.ready = false;
        });
    }

    /// `back-off ... pod=NAME_NS(UID)`'s pod (`format.Pod`).
    fn pod_name(&self) -> String {
        format!(
            "{}_{}({})",
            self.key.name,
            self.key.namespace,
            self.pod["metadata"]["uid"].as_str().unwrap_or_default()
        )
    }

    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(d) => true,
            () = self.stop.cancelled() => false,
        }
    }
}

async fn run(sim: Arc<Sim>) {
    let step = sim.shared.options.kubelet_step;
    tokio::time::sleep(step).await;
    lock(&sim.state).scheduled = true;
    sim.publish();
    let pod = sim
        .shared
        .read(|s| s.get(&sim.key).cloned())
        .unwrap_or_else(|| sim.pod.clone());
    let msg = format!(
        "Successfully assigned {}/{} to {}",
        sim.key.namespace,
        sim.key.name,
        super::daemonset::NODE
    );
    events::record(
        &sim.shared,
        &pod,
        "default-scheduler",
        false,
        "Scheduled",
        &msg,
    );
    tokio::time::sleep(step).await;
    let mut sidecars = JoinSet::new();
    for c in sim.pod["spec"]["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let name = c["name"].as_str().unwrap_or_default().to_string();
        if c["restartPolicy"] == "Always" {
            sidecars.spawn(container(Arc::clone(&sim), c, Role::Sidecar));
            while !lock(&sim.state)
                .containers
                .get(&name)
                .is_some_and(|s| s.started)
            {
                if !sim.pause(step).await {
                    return;
                }
            }
        } else {
            container(Arc::clone(&sim), c, Role::Init).await;
        }
    }
    lock(&sim.state).init_done = true;
    sim.publish();
    let mut mains = JoinSet::new();
    for c in sim.pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        mains.spawn(container(Arc::clone(&sim), c, Role::Main));
    }
    while mains.join_next().await.is_some() {}
    sim.stop.cancelled().await;
}

/// One container's life, restarted as the pod's `restartPolicy: Always` wants; returns
/// when an init container completed or the pod stopped.
async fn container(sim: Arc<Sim>, spec: Value, role: Role) {
    let name = spec["name"].as_str().unwrap_or_default().to_string();
    let log = sim.log_key(&name);
    let step = sim.shared.options.kubelet_step;
    let mut instance = 0u32;
    let mut back_off: Option<Duration> = None;
    loop {
        let Some(img) = ensure_image(&sim, &spec, role).await else {
            return;
        };
        let mut reported: Option<String> = None;
        while let Some(msg) = images::config_error(&sim.shared, &sim.key.namespace, &spec) {
            if reported.as_deref() != Some(msg.as_str()) {
                sim.event(role, &name, true, "Failed", &format!("Error: {msg}"));
                sim.waiting(&name, "CreateContainerConfigError", &msg);
                reported = Some(msg);
            }
            if !sim.pause(step * 4).await {
                return;
            }
        }
        instance += 1;
        // 64 hex digits as containerd's, different for each container of the pod and
        // each instance of a container.
        let container_id = format!(
            "containerd://{}{:08x}{instance:024x}",
            sim.pod["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .replace('-', ""),
            super::fnv32a(name.as_bytes()),
        );
        let started_at = now();
        sim.shared.logs.append(&log, b"");
        sim.event(
            role,
            &name,
            false,
            "Created",
            &format!("Created container: {name}"),
        );
        sim.event(
            role,
            &name,
            false,
            "Started",
            &format!("Started container {name}"),
        );
        {
            let mut state = lock(&sim.state);
            if role == Role::Main && state.phase == "Pending" {
                state.phase = "Running";
            }
        }
        let (id, image_id) = (container_id.clone(), img.id.clone());
        let Some(crash) = img.crash.as_deref() else {
            let at = started_at.clone();
            sim.update(&name, |c| {
                c.state = json!({"running": {"startedAt": at}});
                c.container_id = Some(id);
                c.image_id = image_id;
                c.restart_count = instance - 1;
                c.started = true;
                c.ready = role != Role::Init;
            });
            if role == Role::Init {
                if !sim.pause(step).await {
                    return;
                }
                let done = json!({"terminated": {"exitCode": 0, "reason": "Completed",
                    "startedAt": started_at, "finishedAt": now(), "containerID": container_id}});
                sim.shared.logs.finish(&log);
                sim.update(&name, |c| {
                    c.state = done;
                    c.started = false;
                    c.ready = true;
                });
                return;
            }
            sim.stop.cancelled().await;
            return;
        };
        // A crashing container lives one kubelet step, far less than the PLEG's relist
        // period (1 s, pkg/kubelet/pleg/generic.go), and the kubelet's status is made
        // from what a relist saw: it is first seen, and shown, terminated. It is never
        // `running`, never ready, never `started` (a sidecar that crashes holds the pod's
        // next containers back), so nothing can count the pod as ready for a moment.
        for line in images::crash_lines(crash) {
            sim.shared.logs.append(&log, format!("{line}\n").as_bytes());
        }
        if !sim.pause(step).await {
            return;
        }
        let terminated = json!({"terminated": {"exitCode": 1, "reason": "Error",
            "startedAt": started_at, "finishedAt": now(), "containerID": container_id}});
        sim.shared.logs.finish(&log);
        // The log of this instance is now the previous one's.
        sim.shared.logs.rotate(&log);
        sim.update(&name, |c| {
            c.state = terminated.clone();
            c.last_state = terminated;
            c.container_id = Some(id);
            c.image_id = image_id;
            c.restart_count = instance - 1;
            c.started = false;
            c.ready = false;
        });
        if let Some(d) = back_off {
            let message = format!(
                "back-off {} restarting failed container={name} pod={}",
                go_duration(d),
                sim.pod_name()
            );
            let event = format!(
                "Back-off restarting failed container {name} in pod {}",
                sim.pod_name()
            );
            sim.event(role, &name, true, "BackOff", &event);
            sim.waiting(&name, "CrashLoopBackOff", &message);
            if !sim.pause(d).await {
                return;
            }
        }
        back_off = Some(
            back_off.map_or(sim.shared.options.crash_loop_back_off, |d| {
                (d * 2).min(MAX_BACK_OFF)
            }),
        );
    }
}
