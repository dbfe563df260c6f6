//! Deleting workloads, and the garbage collector's part for them
//! (pkg/controller/garbagecollector: a dependent whose owners are all gone is deleted;
//! pkg/registry/apps/deployment/strategy.go `DefaultGarbageCollectionPolicy`:
//! `Background` for apps/v1). `Orphan` releases the dependents (their owner reference
//! goes), `Foreground` marks the owner (`deletionTimestamp`, the `foregroundDeletion`
//! finalizer) and removes it once its dependents are gone.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Value, json};

use super::super::Shared;
use super::super::api::{ApiError, ResourceType, now};
use super::super::store::Key;
use super::{delete_pod, ensure_started, key_of, terminating, uid};

const OWNER_KINDS: [&str; 4] = ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"];

/// The garbage collector for the apps kinds: a dependent whose apps/v1 owners are all
/// gone is deleted (a pod gracefully); an owner marked for `Foreground` deletion goes once
/// it has no dependents left.
pub(super) fn collect_garbage(shared: &Arc<Shared>) {
    let live: HashSet<String> = shared.read(|s| {
        ["deployments", "replicasets", "statefulsets", "daemonsets"]
            .iter()
            .flat_map(|p| s.list(p, None))
            .filter(|o| !foreground_done(o))
            .map(|o| uid(&o).to_string())
            .collect()
    });
    let mut owners_with_dependents: HashSet<String> = HashSet::new();
    for plural in ["replicasets", "pods", "controllerrevisions"] {
        for o in shared.read(|s| s.list(plural, None)) {
            let refs: Vec<&Value> = o["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| {
                    r["apiVersion"] == "apps/v1"
                        && OWNER_KINDS.contains(&r["kind"].as_str().unwrap_or_default())
                })
                .collect();
            if refs.is_empty() {
                continue;
            }
            for r in &refs {
                owners_with_dependents.insert(r["uid"].as_str().unwrap_or_default().to_string());
            }
            if refs
                .iter()
                .any(|r| live.contains(r["uid"].as_str().unwrap_or_default()))
            {
                continue;
            }
            match plural {
                "pods" if !terminating(&o) => delete_pod(shared, &o),
                "pods" => {}
                _ => {
                    shared.write(|s| s.remove(&key_of(plural, &o)));
                }
            }
        }
    }
    // Owners being deleted in the foreground: their dependents are gone first.
    for plural in ["deployments", "replicasets", "statefulsets", "daemonsets"] {
        for o in shared.read(|s| s.list(plural, None)) {
            if foreground_done(&o) && !owners_with_dependents.contains(uid(&o)) {
                shared.write(|s| s.remove(&key_of(plural, &o)));
            }
        }
    }
}

fn foreground_done(o: &Value) -> bool {
    terminating(o)
        && o["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "foregroundDeletion"))
}

/// Deletes a workload with `policy` (apps/v1 defaults to `Background`:
/// pkg/registry/apps/deployment/strategy.go `DefaultGarbageCollectionPolicy`). Returns the
/// DELETE answer.
pub(crate) fn delete(
    shared: &Arc<Shared>,
    rt: &ResourceType,
    key: &Key,
    policy: Option<&str>,
) -> (u16, Value) {
    let Some(obj) = shared.read(|s| s.get(key).cloned()) else {
        return (404, ApiError::not_found(rt, &key.name).status());
    };
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": key.name, "group": rt.group, "kind": rt.plural, "uid": obj["metadata"]["uid"]}});
    match policy.unwrap_or("Background") {
        "Orphan" => {
            release_dependents(shared, &key.namespace, uid(&obj));
            shared.write(|s| s.remove(key));
            (200, status)
        }
        "Foreground" => {
            let marked = shared.write(|s| {
                s.modify(key, |o| {
                    o["metadata"]["deletionTimestamp"] = json!(now());
                    o["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                    o["metadata"]["finalizers"] = json!(["foregroundDeletion"]);
                })
            });
            ensure_started(shared);
            (200, marked.unwrap_or(obj))
        }
        _ => {
            shared.write(|s| s.remove(key));
            ensure_started(shared);
            (200, status)
        }
    }
}

/// `Orphan`: the dependents lose their owner reference and stay.
fn release_dependents(shared: &Shared, namespace: &str, owner_uid: &str) {
    for plural in ["replicasets", "pods", "controllerrevisions"] {
        for o in shared.read(|s| s.list(plural, Some(namespace))) {
            let owned = o["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["uid"] == owner_uid));
            if owned {
                shared.write(|s| {
                    s.modify(&key_of(plural, &o), |d| {
                        if let Some(refs) = d["metadata"]["ownerReferences"].as_array_mut() {
                            refs.retain(|r| r["uid"] != owner_uid);
                        }
                        if d["metadata"]["ownerReferences"]
                            .as_array()
                            .is_some_and(Vec::is_empty)
                            && let Some(m) = d["metadata"].as_object_mut()
                        {
                            m.remove("ownerReferences");
                        }
                    })
                });
            }
        }
    }
}
