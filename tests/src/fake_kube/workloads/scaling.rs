//! How the Deployment controller sizes its ReplicaSets: `scale` (proportional scaling),
//! `scaleReplicaSet` and `cleanupDeployment` in pkg/controller/deployment/sync.go, and
//! `reconcileOldReplicaSets` (`cleanupUnhealthyReplicas`,
//! `scaleDownOldReplicaSetsForRollingUpdate`) in rolling.go.

use serde_json::{Value, json};

use super::super::Shared;
use super::deployment::{COMPONENT, by_creation};
use super::rollout::{self, DESIRED_REPLICAS, max_surge, replicas, revision, rolling, status};
use super::{annotation, event, key_of, name, terminating, update};

/// `scale`: the one active (or latest) ReplicaSet takes the whole count; a saturated new
/// one scales the old ones to 0; else the change is shared out proportionally.
pub(super) fn scale(shared: &Shared, d: &Value, new_rs: Option<&Value>, old: &[Value]) {
    let mut old_sorted: Vec<&Value> = old.iter().collect();
    old_sorted.reverse();
    let active: Vec<&Value> = old_sorted
        .iter()
        .copied()
        .chain(new_rs)
        .filter(|rs| replicas(rs) > 0)
        .collect();
    let active_or_latest = match active.len() {
        0 => new_rs.or(old_sorted.first().copied()),
        1 => Some(active[0]),
        _ => None,
    };
    if let Some(rs) = active_or_latest {
        if replicas(rs) != replicas(d) {
            scale_and_record(shared, d, rs, replicas(d));
        }
        return;
    }
    let saturated = new_rs.is_some_and(|rs| {
        annotation(rs, DESIRED_REPLICAS) == Some(replicas(d).to_string().as_str())
            && replicas(rs) == replicas(d)
            && status(rs, "availableReplicas") == replicas(d)
    });
    if saturated {
        for rs in old.iter().filter(|rs| replicas(rs) > 0) {
            scale_and_record(shared, d, rs, 0);
        }
        return;
    }
    if !rolling(d) {
        return;
    }
    let mut sets: Vec<&Value> = old
        .iter()
        .chain(new_rs)
        .filter(|rs| replicas(rs) > 0)
        .collect();
    let total = rollout::spec_replicas(&sets);
    let allowed = if replicas(d) > 0 {
        replicas(d) + max_surge(d)
    } else {
        0
    };
    let to_add = allowed - total;
    let created = |rs: &Value| {
        rs["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let operation = if to_add > 0 {
        // ReplicaSetsBySizeNewer.
        sets.sort_by(|a, b| {
            replicas(b)
                .cmp(&replicas(a))
                .then_with(|| created(b).cmp(&created(a)))
        });
        "up"
    } else if to_add < 0 {
        // ReplicaSetsBySizeOlder.
        sets.sort_by(|a, b| {
            replicas(b)
                .cmp(&replicas(a))
                .then_with(|| created(a).cmp(&created(b)))
        });
        "down"
    } else {
        ""
    };
    let mut added = 0;
    let mut sizes: Vec<i64> = Vec::new();
    for rs in &sets {
        if to_add != 0 {
            let p = rollout::proportion(rs, d, to_add, added);
            sizes.push(replicas(rs) + p);
            added += p;
        } else {
            sizes.push(replicas(rs));
        }
    }
    for (i, rs) in sets.iter().enumerate() {
        let mut size = sizes[i];
        if i == 0 && to_add != 0 {
            size = (size + to_add - added).max(0);
        }
        scale_rs(shared, d, rs, size, operation);
    }
}

/// `scaleReplicaSetAndRecordEvent`: whether the ReplicaSet was scaled, and it as stored.
pub(super) fn scale_and_record(shared: &Shared, d: &Value, rs: &Value, to: i64) -> (bool, Value) {
    if replicas(rs) == to {
        return (false, rs.clone());
    }
    let operation = if replicas(rs) < to { "up" } else { "down" };
    scale_rs(shared, d, rs, to, operation)
}

/// `scaleReplicaSet`: `spec.replicas` and the replicas annotations, with a
/// `ScalingReplicaSet` event when the size changed.
fn scale_rs(shared: &Shared, d: &Value, rs: &Value, to: i64, operation: &str) -> (bool, Value) {
    let desired = replicas(d);
    let max = desired + max_surge(d);
    let mut probe = rs.clone();
    let annotations_change = rollout::set_replicas_annotations(&mut probe, desired, max);
    let from = replicas(rs);
    if from == to && !annotations_change {
        return (false, rs.clone());
    }
    let stored = update(shared, "replicasets", rs, |o| {
        o["spec"]["replicas"] = json!(to);
        rollout::set_replicas_annotations(o, desired, max);
    });
    let Some(stored) = stored else {
        return (false, rs.clone());
    };
    if from != to {
        let msg = format!(
            "Scaled {operation} replica set {} from {from} to {to}",
            name(rs)
        );
        event(shared, d, COMPONENT, "ScalingReplicaSet", &msg);
    }
    (from != to, stored)
}

/// `cleanupDeployment`: old ReplicaSets past `revisionHistoryLimit` that are scaled to 0
/// and settled go, lowest revision first.
pub(super) fn cleanup(shared: &Shared, d: &Value, old: &[Value]) {
    let Some(limit) = d["spec"]["revisionHistoryLimit"].as_i64() else {
        return;
    };
    let mut cleanable: Vec<&Value> = old.iter().filter(|rs| !terminating(rs)).collect();
    let diff = cleanable.len() as i64 - limit;
    if diff <= 0 {
        return;
    }
    cleanable.sort_by(|a, b| {
        revision(a).cmp(&revision(b)).then_with(|| {
            let t = |o: &Value| {
                o["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            };
            t(a).cmp(&t(b))
        })
    });
    for rs in cleanable.iter().take(diff as usize) {
        if status(rs, "replicas") != 0
            || replicas(rs) != 0
            || super::generation(rs) > status(rs, "observedGeneration")
        {
            continue;
        }
        shared.write(|s| s.remove(&key_of("replicasets", rs)));
    }
}

/// `reconcileOldReplicaSets`: scale old ReplicaSets down as far as availability allows,
/// their unhealthy replicas first. Whether any was scaled.
pub(super) fn reconcile_old(
    shared: &Shared,
    d: &Value,
    all: &[&Value],
    old: &[Value],
    new_rs: &Value,
) -> bool {
    let mut active: Vec<Value> = old.iter().filter(|rs| replicas(rs) > 0).cloned().collect();
    if active.is_empty() {
        return false;
    }
    let all_pods = rollout::spec_replicas(all);
    let min_available = replicas(d) - rollout::max_unavailable(d);
    let new_unavailable = replicas(new_rs) - status(new_rs, "availableReplicas");
    let max_scaled_down = all_pods - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return false;
    }
    by_creation(&mut active);
    // cleanupUnhealthyReplicas.
    let mut cleaned = 0;
    for rs in active.iter_mut() {
        if cleaned >= max_scaled_down {
            break;
        }
        if replicas(rs) == 0 || replicas(rs) == status(rs, "availableReplicas") {
            continue;
        }
        let down = (max_scaled_down - cleaned).min(replicas(rs) - status(rs, "availableReplicas"));
        let (_, stored) = scale_and_record(shared, d, rs, replicas(rs) - down);
        *rs = stored;
        cleaned += down;
    }
    // scaleDownOldReplicaSetsForRollingUpdate.
    let mut sets: Vec<&Value> = active.iter().collect();
    sets.push(new_rs);
    let available: i64 = sets.iter().map(|rs| status(rs, "availableReplicas")).sum();
    let mut scaled = 0;
    if available > min_available {
        let total = available - min_available;
        for rs in &active {
            if scaled >= total {
                break;
            }
            if replicas(rs) == 0 {
                continue;
            }
            let down = replicas(rs).min(total - scaled);
            scale_and_record(shared, d, rs, replicas(rs) - down);
            scaled += down;
        }
    }
    cleaned + scaled > 0
}
