//! The Deployment controller's arithmetic and status: pkg/controller/deployment/util/
//! deployment_util.go (`ResolveFenceposts`, `MaxSurge`, `MaxUnavailable`,
//! `NewRSNewReplicas`, `GetProportion`, the revision and replicas annotations,
//! `DeploymentComplete`, `DeploymentProgressing`, `DeploymentTimedOut`,
//! `SetDeploymentCondition`), sync.go (`calculateStatus`) and progress.go
//! (`syncRolloutStatus`).

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::super::api::now;
use super::{annotation, generation, int, parse_time};

pub(super) const REVISION: &str = "deployment.kubernetes.io/revision";
pub(super) const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub(super) const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub(super) const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// The label a Deployment puts on its ReplicaSets, their selectors and their pods.
pub(super) const HASH_LABEL: &str = "pod-template-hash";

/// Annotations a Deployment keeps to itself (`annotationsToSkip`).
pub(super) fn skipped_annotation(k: &str) -> bool {
    matches!(
        k,
        "kubectl.kubernetes.io/last-applied-configuration"
            | REVISION
            | REVISION_HISTORY
            | DESIRED_REPLICAS
            | MAX_REPLICAS
            | "deprecated.deployment.rollback.to"
    )
}

pub(super) fn replicas(o: &Value) -> i64 {
    o["spec"]["replicas"].as_i64().unwrap_or(1)
}

pub(super) fn status(o: &Value, field: &str) -> i64 {
    int(&o["status"][field])
}

pub(super) fn revision(o: &Value) -> i64 {
    annotation(o, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

pub(super) fn rolling(d: &Value) -> bool {
    d["spec"]["strategy"]["type"] == "RollingUpdate"
}

/// `intstr.GetScaledValueFromIntOrPercent`.
fn scaled(v: &Value, total: i64, round_up: bool) -> i64 {
    match v {
        Value::String(s) => {
            let pct: f64 = s.trim_end_matches('%').parse().unwrap_or_default();
            let exact = pct * total as f64 / 100.0;
            if round_up {
                exact.ceil() as i64
            } else {
                exact.floor() as i64
            }
        }
        other => other.as_i64().unwrap_or_default(),
    }
}

/// `ResolveFenceposts`: (maxSurge rounded up, maxUnavailable rounded down), never both 0.
fn fenceposts(d: &Value) -> (i64, i64) {
    let r = &d["spec"]["strategy"]["rollingUpdate"];
    let desired = replicas(d);
    let surge = scaled(&r["maxSurge"], desired, true);
    let unavailable = scaled(&r["maxUnavailable"], desired, false);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

pub(super) fn max_surge(d: &Value) -> i64 {
    if rolling(d) { fenceposts(d).0 } else { 0 }
}

pub(super) fn max_unavailable(d: &Value) -> i64 {
    if !rolling(d) || replicas(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas(d))
}

/// `GetReplicaCountForReplicaSets`: the sum of `spec.replicas`.
pub(super) fn spec_replicas(sets: &[&Value]) -> i64 {
    sets.iter().map(|rs| replicas(rs)).sum()
}

fn status_sum(sets: &[&Value], field: &str) -> i64 {
    sets.iter().map(|rs| status(rs, field)).sum()
}

/// `NewRSNewReplicas`: how far the new ReplicaSet may grow now.
pub(super) fn new_rs_new_replicas(d: &Value, all: &[&Value], new_rs: &Value) -> i64 {
    if !rolling(d) {
        return replicas(d);
    }
    let current = spec_replicas(all);
    let max_total = replicas(d) + max_surge(d);
    if current >= max_total {
        return replicas(new_rs);
    }
    let up = (max_total - current).min(replicas(d) - replicas(new_rs));
    replicas(new_rs) + up
}

/// `GetProportion`: the share of a scaling a ReplicaSet takes (`getReplicaSetFraction`
/// from its `max-replicas` annotation).
pub(super) fn proportion(rs: &Value, d: &Value, to_add: i64, added: i64) -> i64 {
    if replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = if replicas(d) == 0 {
        -replicas(rs)
    } else {
        let max = replicas(d) + max_surge(d);
        let before = annotation(rs, MAX_REPLICAS)
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|v| *v != 0)
            .unwrap_or_else(|| status(d, "replicas"));
        if before == 0 {
            0
        } else {
            ((replicas(rs) * max) as f64 / before as f64).round() as i64 - replicas(rs)
        }
    };
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// `SetReplicasAnnotations`: whether the desired and max replicas annotations changed.
pub(super) fn set_replicas_annotations(rs: &mut Value, desired: i64, max: i64) -> bool {
    if !rs["metadata"]["annotations"].is_object() {
        rs["metadata"]["annotations"] = json!({});
    }
    let a = &mut rs["metadata"]["annotations"];
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        if a[k].as_str() != Some(v.to_string().as_str()) {
            a[k] = json!(v.to_string());
            changed = true;
        }
    }
    changed
}

/// `SetNewReplicaSetAnnotations`: the Deployment's annotations (but its own), the revision
/// (raised, never lowered; a raised one keeps the old in `revision-history`, as after
/// `kubectl rollout undo`), and for a new ReplicaSet the replicas annotations. Whether
/// anything changed.
pub(super) fn set_new_rs_annotations(
    d: &Value,
    rs: &mut Value,
    new_revision: i64,
    exists: bool,
) -> bool {
    if !rs["metadata"]["annotations"].is_object() {
        rs["metadata"]["annotations"] = json!({});
    }
    let mut changed = false;
    for (k, v) in d["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
    {
        if !skipped_annotation(k) && rs["metadata"]["annotations"].get(k) != Some(v) {
            rs["metadata"]["annotations"][k] = v.clone();
            changed = true;
        }
    }
    let old = rs["metadata"]["annotations"][REVISION]
        .as_str()
        .map(str::to_string);
    let old_n: i64 = old.as_deref().and_then(|o| o.parse().ok()).unwrap_or(0);
    if old_n < new_revision {
        rs["metadata"]["annotations"][REVISION] = json!(new_revision.to_string());
        changed = true;
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let history = rs["metadata"]["annotations"][REVISION_HISTORY]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let joined = if history.is_empty() {
                old
            } else {
                format!("{history},{old}")
            };
            rs["metadata"]["annotations"][REVISION_HISTORY] = json!(joined);
        }
    }
    if !exists && set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)) {
        changed = true;
    }
    changed
}

pub(super) fn new_condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    let at = now();
    json!({"type": kind, "status": status, "lastUpdateTime": at, "lastTransitionTime": at,
        "reason": reason, "message": message})
}

pub(super) fn get_condition<'a>(status: &'a Value, kind: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

pub(super) fn remove_condition(status: &mut Value, kind: &str) {
    if let Some(list) = status["conditions"].as_array_mut() {
        list.retain(|c| c["type"] != kind);
        if list.is_empty()
            && let Some(m) = status.as_object_mut()
        {
            m.remove("conditions");
        }
    }
}

/// `SetDeploymentCondition`: nothing when status and reason are the same; the transition
/// time kept when only the reason changes; the condition moves to the end.
pub(super) fn set_condition(status: &mut Value, mut condition: Value) {
    if let Some(current) = get_condition(status, condition["type"].as_str().unwrap_or_default()) {
        if current["status"] == condition["status"] && current["reason"] == condition["reason"] {
            return;
        }
        if current["status"] == condition["status"] {
            condition["lastTransitionTime"] = current["lastTransitionTime"].clone();
        }
    }
    remove_condition(status, condition["type"].as_str().unwrap_or_default());
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    if let Some(list) = status["conditions"].as_array_mut() {
        list.push(condition);
    }
}

/// `calculateStatus`: the counts from the ReplicaSets' statuses and the `Available`
/// condition.
pub(super) fn calculate_status(all: &[&Value], new_rs: Option<&Value>, d: &Value) -> Value {
    let available = status_sum(all, "availableReplicas");
    let total = spec_replicas(all);
    let unavailable = (total - available).max(0);
    let updated = new_rs.map_or(0, |rs| status(rs, "replicas"));
    let mut status = json!({"observedGeneration": generation(d)});
    for (field, n) in [
        ("replicas", status_sum(all, "replicas")),
        ("updatedReplicas", updated),
        ("readyReplicas", status_sum(all, "readyReplicas")),
        ("availableReplicas", available),
        ("unavailableReplicas", unavailable),
    ] {
        if n != 0 {
            status[field] = json!(n);
        }
    }
    if let Some(c) = d["status"].get("collisionCount").filter(|c| !c.is_null()) {
        status["collisionCount"] = c.clone();
    }
    if let Some(c) = d["status"].get("conditions").filter(|c| c.is_array()) {
        status["conditions"] = c.clone();
    }
    if available >= replicas(d) - max_unavailable(d) {
        set_condition(
            &mut status,
            new_condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            ),
        );
    } else {
        set_condition(
            &mut status,
            new_condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            ),
        );
    }
    status
}

pub(super) fn has_progress_deadline(d: &Value) -> bool {
    d["spec"]["progressDeadlineSeconds"]
        .as_i64()
        .is_some_and(|s| s != i64::from(i32::MAX))
}

/// `DeploymentComplete`.
pub(super) fn complete(d: &Value, status: &Value) -> bool {
    let n = |f: &str| int(&status[f]);
    n("updatedReplicas") == replicas(d)
        && n("replicas") == replicas(d)
        && n("availableReplicas") == replicas(d)
        && n("observedGeneration") >= generation(d)
}

/// `DeploymentProgressing`: more updated, ready or available replicas, or fewer old ones.
fn progressing(d: &Value, new: &Value) -> bool {
    let old = &d["status"];
    let n = |s: &Value, f: &str| int(&s[f]);
    let old_old = n(old, "replicas") - n(old, "updatedReplicas");
    let new_old = n(new, "replicas") - n(new, "updatedReplicas");
    n(new, "updatedReplicas") > n(old, "updatedReplicas")
        || new_old < old_old
        || n(new, "readyReplicas") > n(old, "readyReplicas")
        || n(new, "availableReplicas") > n(old, "availableReplicas")
}

/// `DeploymentTimedOut`: no progress since the Progressing condition's last update for
/// longer than `progressDeadlineSeconds`.
fn timed_out(d: &Value, status: &Value) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(c) = get_condition(status, "Progressing") else {
        return false;
    };
    match c["reason"].as_str() {
        Some("NewReplicaSetAvailable") => false,
        Some("ProgressDeadlineExceeded") => true,
        _ => {
            let deadline = Duration::from_secs(int(&d["spec"]["progressDeadlineSeconds"]) as u64);
            parse_time(&c["lastUpdateTime"]).is_some_and(|from| from + deadline < SystemTime::now())
        }
    }
}

/// `syncRolloutStatus`: the status with the Progressing condition brought up to date.
pub(super) fn rollout_status(all: &[&Value], new_rs: Option<&Value>, d: &Value) -> Value {
    let mut status = calculate_status(all, new_rs, d);
    if !has_progress_deadline(d) {
        remove_condition(&mut status, "Progressing");
    }
    let current = get_condition(&d["status"], "Progressing");
    let complete_already = int(&status["replicas"]) == int(&status["updatedReplicas"])
        && current.is_some_and(|c| c["reason"] == "NewReplicaSetAvailable");
    let rs_name = new_rs.map(|rs| {
        rs["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    let name = d["metadata"]["name"].as_str().unwrap_or_default();
    let what = |verb: &str| match &rs_name {
        Some(rs) => format!("ReplicaSet \"{rs}\" {verb}."),
        None => format!("Deployment \"{name}\" {verb}."),
    };
    if has_progress_deadline(d) && !complete_already {
        if complete(d, &status) {
            let c = new_condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                &what("has successfully progressed"),
            );
            set_condition(&mut status, c);
        } else if progressing(d, &status) {
            let mut c = new_condition(
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                &what("is progressing"),
            );
            // Progress moves `lastUpdateTime` even with the same reason.
            if let Some(cur) = current {
                if cur["status"] == "True" {
                    c["lastTransitionTime"] = cur["lastTransitionTime"].clone();
                }
                remove_condition(&mut status, "Progressing");
            }
            set_condition(&mut status, c);
        } else if timed_out(d, &status) {
            let c = new_condition(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                &what("has timed out progressing"),
            );
            set_condition(&mut status, c);
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(replicas: i64, surge: Value, unavailable: Value) -> Value {
        json!({"spec": {"replicas": replicas, "strategy": {"type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}}})
    }

    #[test]
    fn fenceposts_round_surge_up_and_unavailability_down() {
        let d = deployment(1, json!("25%"), json!("25%"));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (1, 0));
        let d = deployment(10, json!("25%"), json!("25%"));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (3, 2));
        let d = deployment(3, json!(0), json!(0));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (0, 1));
    }

    #[test]
    fn a_new_replica_set_grows_within_the_surge() {
        let d = deployment(1, json!("25%"), json!("25%"));
        let old = json!({"spec": {"replicas": 1}});
        let new = json!({"spec": {"replicas": 0}});
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 1);
        let new = json!({"spec": {"replicas": 1}});
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 1);
    }

    #[test]
    fn a_rolled_back_replica_set_keeps_its_old_revision_in_the_history() {
        let d = json!({"metadata": {"annotations": {"team": "a", REVISION: "2"}},
            "spec": {"replicas": 1, "strategy": {"type": "Recreate"}}});
        let mut rs = json!({"metadata": {"annotations": {REVISION: "1"}}});
        assert!(set_new_rs_annotations(&d, &mut rs, 3, true));
        assert_eq!(
            rs["metadata"]["annotations"],
            json!({"team": "a", REVISION: "3", REVISION_HISTORY: "1"})
        );
        assert!(!set_new_rs_annotations(&d, &mut rs, 3, true));
    }
}
