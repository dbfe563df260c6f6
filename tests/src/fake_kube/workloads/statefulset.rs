//! The StatefulSet controller (pkg/controller/statefulset/stateful_set_control.go
//! `updateStatefulSet`, `processReplica`, `completeRollingUpdate`; stateful_set_utils.go
//! `newVersionedStatefulSetPod`, `initIdentity`, `updateStorage`,
//! `getPersistentVolumeClaims`): pods `<set>-<ordinal>` with their identity labels and the
//! `controller-revision-hash` of their revision, claims from `volumeClaimTemplates`;
//! `OrderedReady` creates them one at a time, each after the previous one is running and
//! ready, and removes surplus ones from the highest ordinal; a `RollingUpdate` replaces
//! pods from the highest ordinal down to the partition, one at a time, waiting for each to
//! be healthy (ordinals below the partition keep the current revision); `OnDelete` only
//! recreates the pods a client deleted. `currentRevision` becomes the update revision
//! once every pod runs it and is ready.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Value, json};

use super::super::Shared;
use super::super::kubelet::{bind_claim, rt};
use super::history::{self, HASH_LABEL};
use super::rollout::replicas;
use super::{
    claim_pods, create_pod, delete_pod, event, generation, int, key_of, label, name, namespace,
    pod_available, pod_ready, terminating, write_status,
};

const COMPONENT: &str = "statefulset-controller";

pub(super) fn sync_all(shared: &Arc<Shared>) {
    for set in super::live_objects(shared, "statefulsets") {
        sync(shared, &set);
    }
}

fn ordinal(set: &Value, pod: &Value) -> Option<i64> {
    name(pod)
        .strip_prefix(name(set))?
        .strip_prefix('-')?
        .parse()
        .ok()
}

fn running_ready(p: &Value) -> bool {
    p["status"]["phase"] == "Running" && pod_ready(p)
}

fn healthy(set: &Value, p: &Value) -> bool {
    running_ready(p)
        && pod_available(p, int(&set["spec"]["minReadySeconds"]), SystemTime::now())
        && !terminating(p)
}

fn finished(p: &Value) -> bool {
    matches!(p["status"]["phase"].as_str(), Some("Failed" | "Succeeded"))
}

/// The template a revision holds (`ApplyRevision`).
fn template_of(revision: &Value) -> Value {
    let mut t = revision["data"]["spec"]["template"].clone();
    if let Some(m) = t.as_object_mut() {
        m.remove("$patch");
    }
    t
}

fn sync(shared: &Arc<Shared>, set: &Value) {
    let Some((update_rev, revisions)) = history::sync(shared, set) else {
        return;
    };
    let current_rev = revisions
        .iter()
        .find(|r| Some(name(r)) == set["status"]["currentRevision"].as_str())
        .cloned()
        .unwrap_or_else(|| update_rev.clone());
    let pods: Vec<Value> = claim_pods(shared, set, &set["spec"]["selector"])
        .into_iter()
        .filter(|p| ordinal(set, p).is_some())
        .collect();
    let mut status = compute_status(set, &pods, &current_rev, &update_rev);
    if !terminating(set) {
        act(shared, set, &pods, &current_rev, &update_rev);
    }
    complete_rolling_update(set, &mut status);
    let mut next = set.clone();
    next["status"] = status;
    write_status(shared, "statefulsets", &next);
    let live: Vec<String> = pods
        .iter()
        .filter_map(|p| label(p, HASH_LABEL).map(str::to_string))
        .chain([
            name(&current_rev).to_string(),
            name(&update_rev).to_string(),
        ])
        .collect();
    history::truncate(shared, set, &revisions, &live);
}

/// `computeReplicaStatus` with the revisions and the generation.
fn compute_status(set: &Value, pods: &[Value], current: &Value, update: &Value) -> Value {
    let min_ready = int(&set["spec"]["minReadySeconds"]);
    let at = SystemTime::now();
    let (mut ready, mut available, mut current_n, mut updated) = (0, 0, 0, 0);
    for p in pods {
        if running_ready(p) {
            ready += 1;
            if pod_available(p, min_ready, at) {
                available += 1;
            }
        }
        if !terminating(p) {
            let revision = label(p, HASH_LABEL);
            if revision == Some(name(current)) {
                current_n += 1;
            }
            if revision == Some(name(update)) {
                updated += 1;
            }
        }
    }
    let mut status = json!({
        "observedGeneration": generation(set),
        "replicas": pods.len(),
        "availableReplicas": available,
        "currentRevision": name(current),
        "updateRevision": name(update),
        "collisionCount": set["status"]["collisionCount"].as_i64().unwrap_or(0),
    });
    for (field, n) in [
        ("readyReplicas", ready),
        ("currentReplicas", current_n),
        ("updatedReplicas", updated),
    ] {
        if n > 0 {
            status[field] = json!(n);
        }
    }
    status
}

/// `completeRollingUpdate`.
fn complete_rolling_update(set: &Value, status: &mut Value) {
    let n = |f: &str| int(&status[f]);
    if set["spec"]["updateStrategy"]["type"] == "RollingUpdate"
        && n("updatedReplicas") == n("replicas")
        && n("readyReplicas") == n("replicas")
    {
        status["currentRevision"] = status["updateRevision"].clone();
        status["currentReplicas"] = status["updatedReplicas"].clone();
    }
}

/// `updateStatefulSet`'s actions: create, replace, condemn, then roll.
fn act(shared: &Arc<Shared>, set: &Value, pods: &[Value], current: &Value, update: &Value) {
    let count = replicas(set);
    let ordered = set["spec"]["podManagementPolicy"] != "Parallel";
    let at = |ord: i64| pods.iter().find(|p| ordinal(set, p) == Some(ord));
    for ord in 0..count {
        match at(ord) {
            None => {
                create(shared, set, ord, current, update);
                if ordered {
                    return;
                }
            }
            Some(p) if finished(p) => {
                if !terminating(p) {
                    remove(shared, set, p);
                }
                if ordered {
                    return;
                }
            }
            Some(p) if ordered && (terminating(p) || !healthy(set, p)) => return,
            Some(_) => {}
        }
    }
    let mut condemned: Vec<&Value> = pods
        .iter()
        .filter(|p| ordinal(set, p).is_some_and(|o| o >= count))
        .collect();
    condemned.sort_by_key(|p| std::cmp::Reverse(ordinal(set, p)));
    for p in condemned {
        if terminating(p) {
            if ordered {
                return;
            }
            continue;
        }
        remove(shared, set, p);
        if ordered {
            return;
        }
    }
    if set["spec"]["updateStrategy"]["type"] != "RollingUpdate" {
        return;
    }
    let partition = int(&set["spec"]["updateStrategy"]["rollingUpdate"]["partition"]);
    for target in (partition.max(0)..count).rev() {
        let Some(p) = at(target) else {
            return;
        };
        if label(p, HASH_LABEL) != Some(name(update)) && !terminating(p) {
            remove(shared, set, p);
            return;
        }
        if !healthy(set, p) {
            return;
        }
    }
}

/// `newVersionedStatefulSetPod` and its claims.
fn create(shared: &Arc<Shared>, set: &Value, ord: i64, current: &Value, update: &Value) {
    let partition = int(&set["spec"]["updateStrategy"]["rollingUpdate"]["partition"]);
    let rolling = set["spec"]["updateStrategy"]["type"] == "RollingUpdate";
    let revision = if rolling && ord < partition {
        current
    } else {
        update
    };
    let template = template_of(revision);
    let pod_name = format!("{}-{ord}", name(set));
    let claims = create_claims(shared, set, &pod_name, ord);
    let service = set["spec"]["serviceName"].clone();
    let revision_name = name(revision).to_string();
    let created = create_pod(shared, set, &template, &pod_name, |pod| {
        let labels = &mut pod["metadata"]["labels"];
        labels["statefulset.kubernetes.io/pod-name"] = json!(pod_name);
        labels["apps.kubernetes.io/pod-index"] = json!(ord.to_string());
        labels[HASH_LABEL] = json!(revision_name);
        pod["spec"]["hostname"] = json!(pod_name);
        if service.as_str().is_some_and(|s| !s.is_empty()) {
            pod["spec"]["subdomain"] = service;
        }
        if !claims.is_empty() {
            let mut volumes: Vec<Value> = pod["spec"]["volumes"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for (template, claim) in &claims {
                volumes.retain(|v| v["name"] != template.as_str());
                volumes.push(json!({"name": template,
                    "persistentVolumeClaim": {"claimName": claim}}));
            }
            pod["spec"]["volumes"] = json!(volumes);
        }
    });
    match created {
        Ok(Some(_)) => event(
            shared,
            set,
            COMPONENT,
            "SuccessfulCreate",
            &format!(
                "create Pod {pod_name} in StatefulSet {} successful",
                name(set)
            ),
        ),
        Ok(None) => {}
        Err(e) => event(
            shared,
            set,
            COMPONENT,
            "FailedCreate",
            &format!(
                "create Pod {pod_name} in StatefulSet {} failed error: {}",
                name(set),
                e.message
            ),
        ),
    }
}

/// `createPersistentVolumeClaims`: `<template>-<set>-<ordinal>` with the selector's labels,
/// kept (`Retain`) after the pod. (template name, claim name) of each.
fn create_claims(shared: &Arc<Shared>, set: &Value, pod: &str, ord: i64) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in set["spec"]["volumeClaimTemplates"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let template = t["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let claim = format!("{template}-{}-{ord}", name(set));
        out.push((template, claim.clone()));
        let key = key_of(
            "persistentvolumeclaims",
            &json!({"metadata": {
            "name": claim, "namespace": namespace(set)}}),
        );
        if shared.read(|s| s.get(&key).is_some()) {
            continue;
        }
        let mut labels = t["metadata"]["labels"].clone();
        if !labels.is_object() {
            labels = json!({});
        }
        for (k, v) in set["spec"]["selector"]["matchLabels"]
            .as_object()
            .into_iter()
            .flatten()
        {
            labels[k] = v.clone();
        }
        let mut pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim, "labels": labels}, "spec": t["spec"].clone()});
        super::super::verbs::set_defaults(rt("persistentvolumeclaims"), &mut pvc, "");
        let created = shared.write(|s| s.create(rt("persistentvolumeclaims"), namespace(set), pvc));
        if created.is_ok() {
            bind_claim(shared, key);
            let msg = format!(
                "create Claim {claim} Pod {pod} in StatefulSet {} success",
                name(set)
            );
            event(shared, set, COMPONENT, "SuccessfulCreate", &msg);
        }
    }
    out
}

fn remove(shared: &Shared, set: &Value, p: &Value) {
    delete_pod(shared, p);
    let msg = format!(
        "delete Pod {} in StatefulSet {} successful",
        name(p),
        name(set)
    );
    event(shared, set, COMPONENT, "SuccessfulDelete", &msg);
}
