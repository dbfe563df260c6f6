//! ControllerRevisions, the template history of StatefulSets and DaemonSets
//! (pkg/controller/history/controller_history.go `NewControllerRevision`,
//! `FindEqualRevisions`; pkg/controller/statefulset/stateful_set_control.go
//! `getStatefulSetRevisions` and `truncateHistory`; pkg/controller/daemon/update.go
//! `constructHistory`, `snapshot` and `cleanupHistory`): each revision holds the patch
//! `{"spec":{"template":{...,"$patch":"replace"}}}`, is named `<owner>-<hash>` with the
//! `controller-revision-hash` label, and a template that matches an older revision again
//! (a rollback) raises that revision's number instead of making a new one.

use std::sync::Arc;

use serde_json::{Value, json};

use super::super::Shared;
use super::super::kubelet::rt;
use super::{controller_of, int, key_of, name, namespace, owner_reference, template_hash};

pub(super) const HASH_LABEL: &str = "controller-revision-hash";

/// The revision data of an owner's template (`getPatch`).
fn data(owner: &Value) -> Value {
    let mut template = owner["spec"]["template"].clone();
    template["$patch"] = json!("replace");
    json!({"spec": {"template": template}})
}

/// The owner's revisions, lowest first.
pub(super) fn owned(shared: &Shared, owner: &Value) -> Vec<Value> {
    let mut all: Vec<Value> = shared
        .read(|s| s.list("controllerrevisions", Some(namespace(owner))))
        .into_iter()
        .filter(|r| controller_of(r).is_some_and(|c| c["uid"] == owner["metadata"]["uid"]))
        .collect();
    all.sort_by_key(|r| int(&r["revision"]));
    all
}

/// The revision of the owner's current template (created, or an equal older one raised
/// to the next number), and every revision of the owner after that, lowest first.
pub(super) fn sync(shared: &Arc<Shared>, owner: &Value) -> Option<(Value, Vec<Value>)> {
    let revisions = owned(shared, owner);
    let wanted = data(owner);
    let next = revisions.last().map_or(0, |r| int(&r["revision"])) + 1;
    let equal = revisions
        .iter()
        .rev()
        .find(|r| r["data"] == wanted)
        .cloned();
    let update = match equal {
        Some(r) if Some(name(&r)) == revisions.last().map(name) => r,
        Some(r) => shared.write(|s| {
            s.update(&key_of("controllerrevisions", &r), |o| {
                o["revision"] = json!(next)
            })
        })?,
        None => {
            let collision = owner["status"]["collisionCount"].as_i64();
            let hash = template_hash(&owner["spec"]["template"], collision);
            let mut labels = owner["spec"]["template"]["metadata"]["labels"].clone();
            if !labels.is_object() {
                labels = json!({});
            }
            labels[HASH_LABEL] = json!(hash);
            let mut meta = json!({"name": format!("{}-{hash}", name(owner)), "labels": labels,
                "ownerReferences": [owner_reference(owner)]});
            if let Some(a) = owner["metadata"]
                .get("annotations")
                .filter(|a| a.is_object())
            {
                meta["annotations"] = a.clone();
            }
            let revision = json!({"apiVersion": "apps/v1", "kind": "ControllerRevision",
                "metadata": meta, "data": wanted, "revision": next});
            match shared.write(|s| s.create(rt("controllerrevisions"), namespace(owner), revision))
            {
                Ok(r) => r,
                // Same name: it is ours from a pass that has not listed it yet.
                Err(_) => shared.read(|s| {
                    s.get(&key_of(
                        "controllerrevisions",
                        &json!({"metadata": {
                        "name": format!("{}-{hash}", name(owner)), "namespace": namespace(owner)}}),
                    ))
                    .cloned()
                })?,
            }
        }
    };
    Some((update, owned(shared, owner)))
}

/// `truncateHistory`/`cleanupHistory`: beyond `revisionHistoryLimit`, the oldest revisions
/// no pod runs and that are neither `live` go.
pub(super) fn truncate(shared: &Shared, owner: &Value, revisions: &[Value], live: &[String]) {
    let limit = owner["spec"]["revisionHistoryLimit"].as_i64().unwrap_or(10);
    let old: Vec<&Value> = revisions
        .iter()
        .filter(|r| {
            !live.iter().any(|l| {
                l == name(r) || r["metadata"]["labels"][HASH_LABEL].as_str() == Some(l.as_str())
            })
        })
        .collect();
    let excess = old.len() as i64 - limit;
    for r in old.iter().take(excess.max(0) as usize) {
        shared.write(|s| s.remove(&key_of("controllerrevisions", r)));
    }
}
