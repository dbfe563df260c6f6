//! The Deployment controller (pkg/controller/deployment): `syncDeployment` in
//! deployment_controller.go, `getAllReplicaSetsAndSyncRevision`/`getNewReplicaSet`,
//! `scale`, `sync`, `cleanupDeployment` and `checkPausedConditions` in sync.go,
//! `rolloutRolling` (`reconcileNewReplicaSet`, `reconcileOldReplicaSets`,
//! `cleanupUnhealthyReplicas`, `scaleDownOldReplicaSetsForRollingUpdate`) in rolling.go,
//! `rolloutRecreate` in recreate.go. The arithmetic and status are `rollout`'s.

use std::sync::Arc;

use serde_json::{Value, json};

use super::super::Shared;
use super::super::api::ApiError;
use super::super::kubelet::rt;
use super::rollout::{
    self, DESIRED_REPLICAS, HASH_LABEL, REVISION, calculate_status, has_progress_deadline,
    new_condition, replicas, revision, set_condition, status,
};
use super::scaling::{cleanup, reconcile_old, scale, scale_and_record};
use super::{
    annotation, controller_of, event, key_of, name, namespace, owner_reference, selects,
    template_hash, terminating, uid, update, write_status,
};

pub(super) const COMPONENT: &str = "deployment-controller";

pub(super) fn sync_all(shared: &Arc<Shared>) {
    for d in super::live_objects(shared, "deployments") {
        sync_deployment(shared, d);
    }
}

/// `syncDeployment`.
fn sync_deployment(shared: &Arc<Shared>, mut d: Value) {
    let rs_list = claim_replica_sets(shared, &d);
    if terminating(&d) {
        let (new_rs, old) = all_replica_sets(shared, &mut d, &rs_list, false);
        sync_status(shared, &d, &old, new_rs.as_ref());
        return;
    }
    check_paused_conditions(shared, &mut d);
    if d["spec"]["paused"] == true || is_scaling_event(shared, &mut d, &rs_list) {
        sync(shared, &mut d, &rs_list);
        return;
    }
    if d["spec"]["strategy"]["type"] == "Recreate" {
        rollout_recreate(shared, &mut d, &rs_list);
    } else {
        rollout_rolling(shared, &mut d, &rs_list);
    }
}

/// `getReplicaSetsForDeployment`: the ReplicaSets it controls, adopting orphans its
/// selector matches; sorted by creation (`ReplicaSetsByCreationTimestamp`).
fn claim_replica_sets(shared: &Shared, d: &Value) -> Vec<Value> {
    let selector = &d["spec"]["selector"];
    let mut out = Vec::new();
    for rs in shared.read(|s| s.list("replicasets", Some(namespace(d)))) {
        match controller_of(&rs) {
            Some(r) if r["uid"] == d["metadata"]["uid"] => out.push(rs),
            None if !terminating(d) && selects(selector, &rs["metadata"]["labels"]) => {
                let reference = owner_reference(d);
                out.extend(update(shared, "replicasets", &rs, |o| {
                    o["metadata"]["ownerReferences"] = json!([reference]);
                }));
            }
            _ => {}
        }
    }
    by_creation(&mut out);
    out
}

pub(super) fn by_creation(sets: &mut [Value]) {
    sets.sort_by(|a, b| {
        let t = |o: &Value| {
            o["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        t(a).cmp(&t(b)).then_with(|| name(a).cmp(name(b)))
    });
}

/// `EqualIgnoreHash`: the templates without the `pod-template-hash` label.
fn equal_ignore_hash(a: &Value, b: &Value) -> bool {
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
            labels.remove(HASH_LABEL);
            if labels.is_empty()
                && let Some(m) = t["metadata"].as_object_mut()
            {
                m.remove("labels");
            }
        }
        if t["metadata"].as_object().is_some_and(|m| m.is_empty())
            && let Some(m) = t.as_object_mut()
        {
            m.remove("metadata");
        }
        t
    };
    strip(a) == strip(b)
}

/// `getAllReplicaSetsAndSyncRevision`: the new ReplicaSet (created when `create`) and the
/// old ones.
fn all_replica_sets(
    shared: &Arc<Shared>,
    d: &mut Value,
    rs_list: &[Value],
    create: bool,
) -> (Option<Value>, Vec<Value>) {
    let found = rs_list
        .iter()
        .find(|rs| equal_ignore_hash(&rs["spec"]["template"], &d["spec"]["template"]))
        .cloned();
    let old: Vec<Value> = rs_list
        .iter()
        .filter(|rs| found.as_ref().is_none_or(|f| uid(f) != uid(rs)))
        .cloned()
        .collect();
    let new_rs = new_replica_set(shared, d, found, &old, create);
    (new_rs, old)
}

/// `getNewReplicaSet`.
fn new_replica_set(
    shared: &Arc<Shared>,
    d: &mut Value,
    existing: Option<Value>,
    old: &[Value],
    create: bool,
) -> Option<Value> {
    let max_old = old.iter().map(revision).max().unwrap_or(0);
    let new_revision = max_old + 1;
    if let Some(rs) = existing {
        let mut copy = rs.clone();
        let annotations_changed = rollout::set_new_rs_annotations(d, &mut copy, new_revision, true);
        let min_ready = d["spec"]["minReadySeconds"].clone();
        if annotations_changed || copy["spec"]["minReadySeconds"] != min_ready {
            let annotations = copy["metadata"]["annotations"].clone();
            return update(shared, "replicasets", &rs, |o| {
                o["metadata"]["annotations"] = annotations;
                if min_ready.is_null() {
                    if let Some(m) = o["spec"].as_object_mut() {
                        m.remove("minReadySeconds");
                    }
                } else {
                    o["spec"]["minReadySeconds"] = min_ready;
                }
            });
        }
        let rs_revision = annotation(&copy, REVISION).unwrap_or_default().to_string();
        let mut needs_update = set_deployment_revision(d, &rs_revision);
        if has_progress_deadline(d) && rollout::get_condition(&d["status"], "Progressing").is_none()
        {
            let msg = format!("Found new replica set \"{}\"", name(&copy));
            set_condition(
                &mut d["status"],
                new_condition("Progressing", "True", "FoundNewReplicaSet", &msg),
            );
            needs_update = true;
        }
        if needs_update {
            write_status(shared, "deployments", d);
        }
        return Some(copy);
    }
    if !create {
        return None;
    }
    let collision = d["status"]["collisionCount"].as_i64();
    let hash = template_hash(&d["spec"]["template"], collision);
    let mut template = d["spec"]["template"].clone();
    if !template["metadata"]["labels"].is_object() {
        template["metadata"]["labels"] = json!({});
    }
    template["metadata"]["labels"][HASH_LABEL] = json!(hash);
    let mut selector = d["spec"]["selector"].clone();
    if !selector["matchLabels"].is_object() {
        selector["matchLabels"] = json!({});
    }
    selector["matchLabels"][HASH_LABEL] = json!(hash);
    let rs_name = format!("{}-{hash}", name(d));
    let mut rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": rs_name, "namespace": namespace(d),
            "labels": template["metadata"]["labels"].clone(),
            "ownerReferences": [owner_reference(d)]},
        "spec": {"replicas": 0, "selector": selector, "template": template},
    });
    if let Some(m) = d["spec"].get("minReadySeconds").filter(|m| !m.is_null()) {
        rs["spec"]["minReadySeconds"] = m.clone();
    }
    let mut all: Vec<&Value> = old.iter().collect();
    all.push(&rs);
    let count = rollout::new_rs_new_replicas(d, &all, &rs);
    rs["spec"]["replicas"] = json!(count);
    rollout::set_new_rs_annotations(d, &mut rs, new_revision, false);
    let created = shared.write(|s| {
        let mut rs = rs.clone();
        super::set_defaults(rt("replicasets"), &mut rs);
        s.create(rt("replicasets"), namespace(d), rs)
    });
    let created = match created {
        Ok(c) => c,
        Err(e) if e.reason == "AlreadyExists" => {
            // A ReplicaSet of that name with another template: a hash collision
            // (`collisionCount` is raised and the next sync tries another name).
            let other = shared.read(|s| s.get(&key_of("replicasets", &rs)).cloned());
            if let Some(other) = other
                && controller_of(&other).is_some_and(|r| r["uid"] == d["metadata"]["uid"])
                && equal_ignore_hash(&other["spec"]["template"], &d["spec"]["template"])
            {
                return Some(other);
            }
            d["status"]["collisionCount"] = json!(collision.unwrap_or(0) + 1);
            write_status(shared, "deployments", d);
            return None;
        }
        Err(e) => {
            failed_create(shared, d, &rs_name, &e);
            return None;
        }
    };
    if count > 0 {
        event(
            shared,
            d,
            COMPONENT,
            "ScalingReplicaSet",
            &format!("Scaled up replica set {rs_name} from 0 to {count}"),
        );
    }
    set_deployment_revision(d, &new_revision.to_string());
    if has_progress_deadline(d) {
        let msg = format!("Created new replica set \"{rs_name}\"");
        set_condition(
            &mut d["status"],
            new_condition("Progressing", "True", "NewReplicaSetCreated", &msg),
        );
    }
    write_status(shared, "deployments", d);
    Some(created)
}

fn failed_create(shared: &Shared, d: &mut Value, rs_name: &str, e: &ApiError) {
    let msg = format!(
        "Failed to create new replica set \"{rs_name}\": {}",
        e.message
    );
    if has_progress_deadline(d) {
        set_condition(
            &mut d["status"],
            new_condition("Progressing", "False", "ReplicaSetCreateError", &msg),
        );
        write_status(shared, "deployments", d);
    }
    event(shared, d, COMPONENT, "FailedCreate", &msg);
}

/// `SetDeploymentRevision`.
fn set_deployment_revision(d: &mut Value, revision: &str) -> bool {
    if annotation(d, REVISION) == Some(revision) {
        return false;
    }
    if !d["metadata"]["annotations"].is_object() {
        d["metadata"]["annotations"] = json!({});
    }
    d["metadata"]["annotations"][REVISION] = json!(revision);
    true
}

/// `checkPausedConditions`.
fn check_paused_conditions(shared: &Shared, d: &mut Value) {
    if !has_progress_deadline(d) {
        return;
    }
    let current = rollout::get_condition(&d["status"], "Progressing").cloned();
    if current
        .as_ref()
        .is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded")
    {
        return;
    }
    let paused_cond = current
        .as_ref()
        .is_some_and(|c| c["reason"] == "DeploymentPaused");
    let paused = d["spec"]["paused"] == true;
    let condition = if paused && !paused_cond {
        new_condition(
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused",
        )
    } else if !paused && paused_cond {
        new_condition(
            "Progressing",
            "Unknown",
            "DeploymentResumed",
            "Deployment is resumed",
        )
    } else {
        return;
    };
    set_condition(&mut d["status"], condition);
    write_status(shared, "deployments", d);
}

/// `isScalingEvent`: an active ReplicaSet's `desired-replicas` differs from the spec.
fn is_scaling_event(shared: &Arc<Shared>, d: &mut Value, rs_list: &[Value]) -> bool {
    let (new_rs, old) = all_replica_sets(shared, d, rs_list, false);
    let Some(new_rs) = new_rs else {
        return false;
    };
    old.iter().chain(std::iter::once(&new_rs)).any(|rs| {
        replicas(rs) > 0
            && annotation(rs, DESIRED_REPLICAS)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|desired| desired != replicas(d))
    })
}

/// `sync`: scaling (or a paused Deployment), then the status.
fn sync(shared: &Arc<Shared>, d: &mut Value, rs_list: &[Value]) {
    let (new_rs, old) = all_replica_sets(shared, d, rs_list, false);
    scale(shared, d, new_rs.as_ref(), &old);
    if d["spec"]["paused"] == true {
        cleanup(shared, d, &old);
    }
    sync_status(shared, d, &old, new_rs.as_ref());
}

/// `syncDeploymentStatus`.
fn sync_status(shared: &Shared, d: &Value, old: &[Value], new_rs: Option<&Value>) {
    let all: Vec<&Value> = old.iter().chain(new_rs).collect();
    let mut next = d.clone();
    next["status"] = calculate_status(&all, new_rs, d);
    write_status(shared, "deployments", &next);
}

/// `rolloutRolling`.
fn rollout_rolling(shared: &Arc<Shared>, d: &mut Value, rs_list: &[Value]) {
    let (new_rs, old) = all_replica_sets(shared, d, rs_list, true);
    let Some(new_rs) = new_rs else {
        return;
    };
    let all: Vec<&Value> = old.iter().chain(std::iter::once(&new_rs)).collect();
    // reconcileNewReplicaSet.
    let scaled_up = if replicas(&new_rs) == replicas(d) {
        false
    } else if replicas(&new_rs) > replicas(d) {
        scale_and_record(shared, d, &new_rs, replicas(d)).0
    } else {
        let count = rollout::new_rs_new_replicas(d, &all, &new_rs);
        scale_and_record(shared, d, &new_rs, count).0
    };
    if !scaled_up
        && !reconcile_old(shared, d, &all, &old, &new_rs)
        && rollout::complete(d, &d["status"])
    {
        cleanup(shared, d, &old);
    }
    sync_rollout_status(shared, d, &old, Some(&new_rs));
}

fn sync_rollout_status(shared: &Shared, d: &Value, old: &[Value], new_rs: Option<&Value>) {
    let all: Vec<&Value> = old.iter().chain(new_rs).collect();
    let mut next = d.clone();
    next["status"] = rollout::rollout_status(&all, new_rs, d);
    write_status(shared, "deployments", &next);
}

/// `rolloutRecreate`: old ReplicaSets to 0, wait for their pods to go, then the new one
/// to the full count.
fn rollout_recreate(shared: &Arc<Shared>, d: &mut Value, rs_list: &[Value]) {
    let (mut new_rs, mut old) = all_replica_sets(shared, d, rs_list, false);
    let mut scaled_down = false;
    for rs in old.iter().filter(|rs| replicas(rs) > 0) {
        scaled_down |= scale_and_record(shared, d, rs, 0).0;
    }
    if scaled_down {
        sync_rollout_status(shared, d, &old, new_rs.as_ref());
        return;
    }
    if old_pods_running(shared, d, new_rs.as_ref(), &old) {
        sync_rollout_status(shared, d, &old, new_rs.as_ref());
        return;
    }
    if new_rs.is_none() {
        (new_rs, old) = all_replica_sets(shared, d, rs_list, true);
    }
    if let Some(rs) = &new_rs {
        scale_and_record(shared, d, rs, replicas(d));
    }
    if rollout::complete(d, &d["status"]) {
        cleanup(shared, d, &old);
    }
    sync_rollout_status(shared, d, &old, new_rs.as_ref());
}

/// `oldPodsRunning`: an old ReplicaSet still counts pods, or a pod of one is not finished.
fn old_pods_running(shared: &Shared, d: &Value, new_rs: Option<&Value>, old: &[Value]) -> bool {
    if old.iter().map(|rs| status(rs, "replicas")).sum::<i64>() > 0 {
        return true;
    }
    let old_uids: Vec<&str> = old.iter().map(uid).collect();
    let new_uid = new_rs.map(uid);
    shared
        .read(|s| s.list("pods", Some(namespace(d))))
        .iter()
        .any(|p| {
            controller_of(p).is_some_and(|r| {
                let owner = r["uid"].as_str().unwrap_or_default();
                Some(owner) != new_uid && old_uids.contains(&owner)
            }) && !matches!(p["status"]["phase"].as_str(), Some("Failed" | "Succeeded"))
        })
}
