//! The DaemonSet controller for the fake's one node, `fake-node`
//! (pkg/controller/daemon/daemon_controller.go `podsShouldBeOnNode`, `syncNodes`,
//! `updateDaemonSetStatus`; update.go `rollingUpdate`, `findUpdatedPodsOnNode`;
//! pkg/controller/daemon/util/daemonset_util.go `CreatePodTemplate`, `IsPodUpdated`):
//! one pod `<ds>-<5 chars>` pinned to the node by node affinity, with the daemon
//! tolerations, the `controller-revision-hash` and `pod-template-generation` labels; a
//! failed pod is replaced; a `RollingUpdate` without surge deletes the old pod within
//! `maxUnavailable` and the manage loop creates the new one, with `maxSurge` the new pod
//! comes first and the old one goes once it is available.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Value, json};

use super::super::Shared;
use super::defaults::TEMPLATE_GENERATION;
use super::history::{self, HASH_LABEL};
use super::{
    annotation, claim_pods, create_pod, delete_pod, event, generation, int, label, name,
    pod_available, pod_ready, terminating, write_status,
};

const COMPONENT: &str = "daemonset-controller";
pub(super) const NODE: &str = "fake-node";

pub(super) fn sync_all(shared: &Arc<Shared>) {
    for ds in super::live_objects(shared, "daemonsets") {
        sync(shared, &ds);
    }
}

/// `IsPodUpdated`: the pod carries the current hash or template generation.
fn updated(ds: &Value, hash: &str, pod: &Value) -> bool {
    label(pod, HASH_LABEL) == Some(hash)
        || annotation(ds, TEMPLATE_GENERATION)
            .is_some_and(|g| label(pod, "pod-template-generation") == Some(g))
}

fn int_or_percent(v: &Value, total: i64, round_up: bool) -> i64 {
    match v {
        Value::String(s) => {
            let exact =
                s.trim_end_matches('%').parse::<f64>().unwrap_or_default() * total as f64 / 100.0;
            if round_up {
                exact.ceil() as i64
            } else {
                exact.floor() as i64
            }
        }
        other => other.as_i64().unwrap_or_default(),
    }
}

fn sync(shared: &Arc<Shared>, ds: &Value) {
    let Some((current, revisions)) = history::sync(shared, ds) else {
        return;
    };
    let hash = label(&current, HASH_LABEL).unwrap_or_default().to_string();
    let mut pods = claim_pods(shared, ds, &ds["spec"]["selector"]);
    pods.sort_by(|a, b| {
        let t = |p: &Value| {
            p["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        t(a).cmp(&t(b)).then_with(|| name(a).cmp(name(b)))
    });
    if !terminating(ds) {
        manage(shared, ds, &pods, &hash);
        if ds["spec"]["updateStrategy"]["type"] == "RollingUpdate" {
            rolling_update(shared, ds, &pods, &hash);
        }
    }
    let mut next = ds.clone();
    next["status"] = status(ds, &pods, &hash);
    write_status(shared, "daemonsets", &next);
    let live: Vec<String> = pods
        .iter()
        .filter_map(|p| label(p, HASH_LABEL).map(str::to_string))
        .chain([hash])
        .collect();
    history::truncate(shared, ds, &revisions, &live);
}

/// `podsShouldBeOnNode` and `syncNodes` for the one node.
fn manage(shared: &Arc<Shared>, ds: &Value, pods: &[Value], hash: &str) {
    let surge = int_or_percent(
        &ds["spec"]["updateStrategy"]["rollingUpdate"]["maxSurge"],
        1,
        true,
    );
    let mut running = Vec::new();
    for p in pods.iter().filter(|p| !terminating(p)) {
        match p["status"]["phase"].as_str() {
            Some("Failed") => {
                let msg = format!(
                    "Found failed daemon pod {}/{} on node {NODE}, will try to kill it",
                    super::namespace(p),
                    name(p)
                );
                event(shared, ds, COMPONENT, "FailedDaemonPod", &msg);
                remove(shared, ds, p);
            }
            Some("Succeeded") => remove(shared, ds, p),
            _ => running.push(p),
        }
    }
    if running.is_empty() {
        create(shared, ds, hash);
    } else if running.len() > 1 && surge == 0 {
        for p in &running[1..] {
            remove(shared, ds, p);
        }
    }
}

/// `rollingUpdate` for the one node.
fn rolling_update(shared: &Arc<Shared>, ds: &Value, pods: &[Value], hash: &str) {
    let r = &ds["spec"]["updateStrategy"]["rollingUpdate"];
    let surge = int_or_percent(&r["maxSurge"], 1, true);
    let min_ready = int(&ds["spec"]["minReadySeconds"]);
    let at = SystemTime::now();
    let live: Vec<&Value> = pods.iter().filter(|p| !terminating(p)).collect();
    let new: Vec<&&Value> = live.iter().filter(|p| updated(ds, hash, p)).collect();
    let old: Vec<&&Value> = live.iter().filter(|p| !updated(ds, hash, p)).collect();
    if new.len() > 1 || old.len() > 1 {
        return;
    }
    match (new.first(), old.first()) {
        // An unavailable old pod is replaced at once; an available one within
        // `maxUnavailable`, which is at least 1 without surge: on one node, both go.
        (None, Some(old_pod)) if surge == 0 => remove(shared, ds, old_pod),
        (None, Some(_)) => create(shared, ds, hash),
        (Some(new_pod), Some(old_pod)) if surge > 0 && pod_available(new_pod, min_ready, at) => {
            remove(shared, ds, old_pod);
        }
        _ => {}
    }
}

/// `CreatePodTemplate` plus the node affinity and tolerations of a daemon pod.
fn create(shared: &Arc<Shared>, ds: &Value, hash: &str) {
    let generation_label = annotation(ds, TEMPLATE_GENERATION).map(str::to_string);
    let prefix = format!("{}-", name(ds));
    let created = create_pod(shared, ds, &ds["spec"]["template"], &prefix, |pod| {
        let labels = &mut pod["metadata"]["labels"];
        if let Some(g) = generation_label {
            labels["pod-template-generation"] = json!(g);
        }
        labels[HASH_LABEL] = json!(hash);
        let spec = &mut pod["spec"];
        spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = json!({
            "nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": [NODE]}]}]});
        let mut tolerations = spec["tolerations"].as_array().cloned().unwrap_or_default();
        let mut daemon = vec![
            ("node.kubernetes.io/not-ready", "NoExecute"),
            ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/disk-pressure", "NoSchedule"),
            ("node.kubernetes.io/memory-pressure", "NoSchedule"),
            ("node.kubernetes.io/pid-pressure", "NoSchedule"),
            ("node.kubernetes.io/unschedulable", "NoSchedule"),
        ];
        if spec["hostNetwork"] == true {
            daemon.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
        }
        for (key, effect) in daemon {
            if !tolerations
                .iter()
                .any(|t| t["key"] == key && t["effect"] == effect)
            {
                tolerations.push(json!({"key": key, "operator": "Exists", "effect": effect}));
            }
        }
        spec["tolerations"] = json!(tolerations);
    });
    match created {
        Ok(Some(pod)) => {
            let msg = format!("Created pod: {}", name(&pod));
            event(shared, ds, COMPONENT, "SuccessfulCreate", &msg);
        }
        Ok(None) => {}
        Err(e) => event(
            shared,
            ds,
            COMPONENT,
            "FailedCreate",
            &format!("Error creating: {}", e.message),
        ),
    }
}

fn remove(shared: &Shared, ds: &Value, p: &Value) {
    delete_pod(shared, p);
    let msg = format!("Deleted pod: {}", name(p));
    event(shared, ds, COMPONENT, "SuccessfulDelete", &msg);
}

/// `updateDaemonSetStatus` for one node that should run the daemon.
fn status(ds: &Value, pods: &[Value], hash: &str) -> Value {
    let min_ready = int(&ds["spec"]["minReadySeconds"]);
    let shown: Vec<&Value> = pods
        .iter()
        .filter(|p| {
            !(terminating(p)
                && matches!(p["status"]["phase"].as_str(), Some("Failed" | "Succeeded")))
        })
        .collect();
    let (mut current, mut ready, mut available, mut updated_n) = (0, 0, 0, 0);
    if let Some(pod) = shown.first() {
        current = 1;
        if pod_ready(pod) {
            ready = 1;
            if pod_available(pod, min_ready, SystemTime::now()) {
                available = 1;
            }
        }
        if updated(ds, hash, pod) {
            updated_n = 1;
        }
    }
    let mut status = json!({
        "currentNumberScheduled": current, "numberMisscheduled": 0,
        "desiredNumberScheduled": 1, "numberReady": ready,
        "observedGeneration": generation(ds),
    });
    for (field, n) in [
        ("updatedNumberScheduled", updated_n),
        ("numberAvailable", available),
        ("numberUnavailable", 1 - available),
    ] {
        if n > 0 {
            status[field] = json!(n);
        }
    }
    if let Some(c) = ds["status"].get("collisionCount").filter(|c| !c.is_null()) {
        status["collisionCount"] = c.clone();
    }
    status
}
