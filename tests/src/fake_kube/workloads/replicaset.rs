//! The ReplicaSet controller (pkg/controller/replicaset/replica_set.go): `syncReplicaSet`
//! claims the pods its selector matches, `manageReplicas` creates the missing ones from
//! the template (`<rs>-<5 chars>`, `SuccessfulCreate`) or deletes the surplus in
//! `getPodsToDelete`'s order (pkg/controller/controller_utils.go `ActivePodsWithRanks`:
//! unscheduled, pending, not ready, ready for less time, more restarts, newer first,
//! `SuccessfulDelete`), and `calculateStatus` counts replicas, fully labeled, ready and
//! available ones (`minReadySeconds`), with a `ReplicaFailure` condition while pods cannot
//! be created.

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Value, json};

use super::super::Shared;
use super::rollout::{get_condition, new_condition, remove_condition, replicas, set_condition};
use super::{
    claim_pods, condition, create_pod, delete_pod, event, generation, int, name, pod_active,
    pod_available, pod_ready, terminating, write_status,
};

const COMPONENT: &str = "replicaset-controller";

pub(super) fn sync_all(shared: &Arc<Shared>) {
    for rs in super::live_objects(shared, "replicasets") {
        sync(shared, &rs);
    }
}

fn sync(shared: &Arc<Shared>, rs: &Value) {
    let selector = &rs["spec"]["selector"];
    let pods: Vec<Value> = claim_pods(shared, rs, selector)
        .into_iter()
        .filter(pod_active)
        .collect();
    let failure = if terminating(rs) {
        None
    } else {
        manage(shared, rs, &pods)
    };
    let mut next = rs.clone();
    next["status"] = calculate_status(rs, &pods, failure.as_deref());
    write_status(shared, "replicasets", &next);
}

/// `manageReplicas`: creates or deletes pods towards `spec.replicas`; the error of a
/// refused pod creation.
fn manage(shared: &Arc<Shared>, rs: &Value, pods: &[Value]) -> Option<String> {
    let diff = pods.len() as i64 - replicas(rs);
    if diff < 0 {
        let prefix = format!("{}-", name(rs));
        for _ in 0..(-diff) {
            match create_pod(shared, rs, &rs["spec"]["template"], &prefix, |_| {}) {
                Ok(Some(pod)) => {
                    let msg = format!("Created pod: {}", name(&pod));
                    event(shared, rs, COMPONENT, "SuccessfulCreate", &msg);
                }
                Ok(None) => return None,
                Err(e) => {
                    let msg = format!("Error creating: {}", e.message);
                    event(shared, rs, COMPONENT, "FailedCreate", &msg);
                    return Some(e.message);
                }
            }
        }
    } else if diff > 0 {
        let mut ranked: Vec<&Value> = pods.iter().collect();
        ranked.sort_by(|a, b| deletion_order(a, b));
        for pod in ranked.into_iter().take(diff as usize) {
            delete_pod(shared, pod);
            let msg = format!("Deleted pod: {}", name(pod));
            event(shared, rs, COMPONENT, "SuccessfulDelete", &msg);
        }
    }
    None
}

/// `ActivePodsWithRanks.Less`: the pod to delete first sorts first.
fn deletion_order(a: &Value, b: &Value) -> Ordering {
    let scheduled = |p: &Value| {
        p["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty())
    };
    let phase = |p: &Value| match p["status"]["phase"].as_str() {
        Some("Pending") => 0,
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 3,
    };
    let ready_since = |p: &Value| {
        condition(p, "Ready")
            .filter(|c| c["status"] == "True")
            .and_then(|c| c["lastTransitionTime"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let restarts = |p: &Value| {
        p["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| int(&c["restartCount"]))
            .max()
            .unwrap_or(0)
    };
    let created = |p: &Value| {
        p["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    scheduled(a)
        .cmp(&scheduled(b))
        .then_with(|| phase(a).cmp(&phase(b)))
        .then_with(|| pod_ready(a).cmp(&pod_ready(b)))
        // Ready for less time first (a later transition).
        .then_with(|| ready_since(b).cmp(&ready_since(a)))
        .then_with(|| restarts(b).cmp(&restarts(a)))
        .then_with(|| created(b).cmp(&created(a)))
}

/// `calculateStatus`.
fn calculate_status(rs: &Value, pods: &[Value], failure: Option<&str>) -> Value {
    let template_labels = &rs["spec"]["template"]["metadata"]["labels"];
    let min_ready = int(&rs["spec"]["minReadySeconds"]);
    let at = SystemTime::now();
    let fully_labeled = pods
        .iter()
        .filter(|p| {
            template_labels
                .as_object()
                .into_iter()
                .flatten()
                .all(|(k, v)| p["metadata"]["labels"].get(k) == Some(v))
        })
        .count();
    let ready = pods.iter().filter(|p| pod_ready(p)).count();
    let available = pods
        .iter()
        .filter(|p| pod_available(p, min_ready, at))
        .count();
    let mut status = json!({"replicas": pods.len()});
    for (field, n) in [
        ("fullyLabeledReplicas", fully_labeled),
        ("readyReplicas", ready),
        ("availableReplicas", available),
    ] {
        if n > 0 {
            status[field] = json!(n);
        }
    }
    status["observedGeneration"] = json!(generation(rs));
    if let Some(c) = rs["status"].get("conditions").filter(|c| c.is_array()) {
        status["conditions"] = c.clone();
    }
    match failure {
        Some(msg) if get_condition(&status, "ReplicaFailure").is_none() => {
            let mut c = new_condition("ReplicaFailure", "True", "FailedCreate", msg);
            if let Some(m) = c.as_object_mut() {
                m.remove("lastUpdateTime");
            }
            set_condition(&mut status, c);
        }
        Some(_) => {}
        None => remove_condition(&mut status, "ReplicaFailure"),
    }
    status
}
