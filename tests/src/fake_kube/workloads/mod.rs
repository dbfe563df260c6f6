//! The apps/v1 workloads of the fake and their controllers: Deployments, ReplicaSets,
//! StatefulSets, DaemonSets and ControllerRevisions, reconciled as kube-controller-manager
//! does, with pods that run a simulated lifecycle against the real loopback registry
//! instead of the container manager.
//!
//! Modelled on kubernetes/kubernetes (the file each rule follows is named where it is
//! written; kubectl's `pkg/polymorphichelpers/rollout_status.go` and `rollback.go` are
//! what a client reads and sends):
//! - API server: pkg/apis/apps/v1/defaults.go (`defaults`), pkg/apis/apps/validation/
//!   validation.go and pkg/registry/apps/{deployment,replicaset,statefulset,daemonset}/
//!   strategy.go (`validation`: texts, selector immutability, generation bumps),
//!   staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go (a failed JSON patch).
//! - pkg/controller/deployment: deployment_controller.go, sync.go, rolling.go,
//!   recreate.go, progress.go, util/deployment_util.go (`deployment`, `rollout`).
//! - pkg/controller/replicaset/replica_set.go, pkg/controller/controller_utils.go
//!   (`replicaset`, pod creation and deletion ranking).
//! - pkg/controller/statefulset/stateful_set_control.go, stateful_set_utils.go
//!   (`statefulset`); pkg/controller/daemon/daemon_controller.go, update.go (`daemonset`);
//!   pkg/controller/history/controller_history.go (`history`).
//! - The kubelet: pkg/kubelet/images/image_manager.go and types.go, kuberuntime/
//!   kuberuntime_manager.go (`doBackOff`), kubelet_pods.go (`makeEnvironmentVariables`),
//!   status/generate.go (`kubelet`, `images`).
//!
//! One task reconciles every workload whenever the store changes and on a short tick (for
//! `progressDeadlineSeconds` and `minReadySeconds`); it starts with the first workload.
//! Deleting a workload removes its dependents as the garbage collector does (`Background`
//! by default for apps/v1, `Orphan` releases them, `Foreground` waits for them).

mod daemonset;
mod defaults;
mod deployment;
mod garbage;
mod history;
mod images;
mod kubelet;
mod replicaset;
mod rollout;
mod scaling;
mod statefulset;
mod validation;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::api::ApiError;
use super::kubelet::rt;
use super::store::Key;
use super::{Shared, admission, events, lock};

pub(crate) use defaults::{prepare_update, set_defaults};
pub(crate) use garbage::delete;
pub(crate) use validation::validate_create;

/// The label whose value a simulated container writes as its log before it exits 1.
pub const CRASH_LABEL: &str = "org.hybrid-runner.fake-kube.crash";

/// How often the controllers look again when nothing changed (deadlines, minReadySeconds).
const TICK: Duration = Duration::from_millis(100);

/// The kinds this module serves.
pub(crate) fn serves(plural: &str) -> bool {
    matches!(
        plural,
        "deployments" | "replicasets" | "statefulsets" | "daemonsets" | "controllerrevisions"
    )
}

/// The workloads' state in the fake: whether the controllers run, the images the node
/// has, the pod IPs handed out.
#[derive(Debug, Default)]
pub(crate) struct Workloads {
    started: AtomicBool,
    images: Mutex<HashMap<String, images::Inspected>>,
    next_ip: AtomicU32,
}

/// Starts the controllers once (the first workload created does).
pub(crate) fn ensure_started(shared: &Arc<Shared>) {
    if shared.workloads.started.swap(true, Ordering::SeqCst) {
        return;
    }
    let weak = Arc::downgrade(shared);
    let mut changes = shared.changes.subscribe();
    tokio::spawn(async move {
        let mut seen = None;
        loop {
            let rv = *changes.borrow_and_update();
            {
                let Some(shared) = weak.upgrade() else {
                    return;
                };
                // Our own writes raise the version: one more pass sees them.
                if seen != Some(rv) {
                    reconcile(&shared);
                    seen = Some(rv);
                }
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(TICK) => seen = None,
            }
        }
    });
}

/// One pass of every controller. A controller that panics is reported on stderr and
/// the pass goes on with the next one: a panic must not end the task, which would stop
/// every workload of the fake for good and leave the test waiting for a rollout that
/// nothing drives any more.
fn reconcile(shared: &Arc<Shared>) {
    type Sync = fn(&Arc<Shared>);
    let controllers: [(&str, Sync); 5] = [
        ("garbage collector", garbage::collect_garbage),
        ("Deployment controller", deployment::sync_all),
        ("ReplicaSet controller", replicaset::sync_all),
        ("StatefulSet controller", statefulset::sync_all),
        ("DaemonSet controller", daemonset::sync_all),
    ];
    for (what, sync) in controllers {
        let run = std::panic::AssertUnwindSafe(|| sync(shared));
        if let Err(panic) = std::panic::catch_unwind(run) {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            eprintln!(
                "fake-kube: BUG: the {what} panicked ({message}); its pass is lost, the next change or tick runs it again"
            );
        }
    }
}

/// The workloads of `plural` whose namespace is active: in a terminating namespace the
/// API server refuses what a controller would create, and everything is going anyway.
pub(super) fn live_objects(shared: &Shared, plural: &str) -> Vec<Value> {
    shared.read(|s| {
        s.list(plural, None)
            .into_iter()
            .filter(|o| {
                s.get(&Key::new(super::routes::namespaces(), "", namespace(o)))
                    .is_some_and(|n| n["status"]["phase"] == "Active")
            })
            .collect()
    })
}

/// Whether a pod is run by the simulated kubelet: one a ReplicaSet, StatefulSet or
/// DaemonSet controls.
pub(crate) fn simulated(pod: &Value) -> bool {
    controller_of(pod).is_some_and(|o| {
        o["apiVersion"] == "apps/v1"
            && matches!(
                o["kind"].as_str(),
                Some("ReplicaSet" | "StatefulSet" | "DaemonSet")
            )
    })
}

/// Runs a workload pod's simulated lifecycle.
pub(crate) fn start_pod(shared: &Arc<Shared>, key: Key) {
    kubelet::start(shared, key);
}

// ---- object helpers ----

pub(super) fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or_default()
}

pub(super) fn namespace(o: &Value) -> &str {
    o["metadata"]["namespace"].as_str().unwrap_or_default()
}

pub(super) fn uid(o: &Value) -> &str {
    o["metadata"]["uid"].as_str().unwrap_or_default()
}

pub(super) fn key_of(plural: &str, o: &Value) -> Key {
    Key::new(rt(plural), namespace(o), name(o))
}

pub(super) fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or_default()
}

pub(super) fn generation(o: &Value) -> i64 {
    int(&o["metadata"]["generation"])
}

pub(super) fn terminating(o: &Value) -> bool {
    o["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

pub(super) fn annotation<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o["metadata"]["annotations"][key].as_str()
}

pub(super) fn label<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o["metadata"]["labels"][key].as_str()
}

/// The owner reference with `controller: true`.
pub(super) fn controller_of(o: &Value) -> Option<&Value> {
    o["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
}

/// `metav1.NewControllerRef`.
pub(super) fn owner_reference(owner: &Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": owner["kind"], "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
    })
}

/// `metav1.LabelSelectorAsSelector(selector).Matches(labels)`: a missing selector selects
/// nothing, an empty one everything.
pub(super) fn selects(selector: &Value, labels: &Value) -> bool {
    if !selector.is_object() {
        return false;
    }
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    let matched = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| get(k) == v.as_str());
    matched
        && selector["matchExpressions"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|e| {
                let key = e["key"].as_str().unwrap_or_default();
                let values: Vec<&str> = e["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                match e["operator"].as_str().unwrap_or_default() {
                    "In" => get(key).is_some_and(|l| values.contains(&l)),
                    "NotIn" => get(key).is_none_or(|l| !values.contains(&l)),
                    "Exists" => get(key).is_some(),
                    "DoesNotExist" => get(key).is_none(),
                    _ => false,
                }
            })
}

/// The condition of `kind` in `status.conditions`.
pub(super) fn condition<'a>(o: &'a Value, kind: &str) -> Option<&'a Value> {
    o["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

pub(super) fn parse_time(v: &Value) -> Option<SystemTime> {
    hr_cluster::time::parse_rfc3339(v.as_str()?)
}

// ---- pods ----

/// `FilterActivePods`: not terminating, not Succeeded or Failed.
pub(super) fn pod_active(p: &Value) -> bool {
    !terminating(p) && !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
}

pub(super) fn pod_ready(p: &Value) -> bool {
    condition(p, "Ready").is_some_and(|c| c["status"] == "True")
}

/// `podutil.IsPodAvailable`: Ready for at least `min_ready` seconds.
pub(super) fn pod_available(p: &Value, min_ready: i64, at: SystemTime) -> bool {
    let Some(ready) = condition(p, "Ready").filter(|c| c["status"] == "True") else {
        return false;
    };
    if min_ready <= 0 {
        return true;
    }
    parse_time(&ready["lastTransitionTime"])
        .is_some_and(|t| t + Duration::from_secs(min_ready as u64) <= at)
}

/// The pods of `namespace` an owner controls, adopting the orphans its selector matches
/// (`ControllerRefManager.ClaimPods`) unless it is being deleted.
pub(super) fn claim_pods(shared: &Shared, owner: &Value, selector: &Value) -> Vec<Value> {
    let pods = shared.read(|s| s.list("pods", Some(namespace(owner))));
    let mut out = Vec::new();
    for p in pods {
        match controller_of(&p) {
            Some(r) if r["uid"] == owner["metadata"]["uid"] => out.push(p),
            None if !terminating(owner)
                && !terminating(&p)
                && selects(selector, &p["metadata"]["labels"]) =>
            {
                let reference = owner_reference(owner);
                let adopted = shared.write(|s| {
                    s.modify(&key_of("pods", &p), |pod| {
                        let refs = &mut pod["metadata"]["ownerReferences"];
                        if !refs.is_array() {
                            *refs = json!([]);
                        }
                        if let Some(list) = refs.as_array_mut() {
                            list.push(reference);
                        }
                    })
                });
                out.extend(adopted);
            }
            _ => {}
        }
    }
    out
}

/// A new pod from `template` for `owner` (`GetPodFromTemplate`): the template's labels,
/// annotations and spec, the API server's defaults, the admission checks, then the
/// simulated kubelet. `Ok(None)` when the namespace is going away.
pub(super) fn create_pod(
    shared: &Arc<Shared>,
    owner: &Value,
    template: &Value,
    name: &str,
    dress: impl FnOnce(&mut Value),
) -> Result<Option<Value>, ApiError> {
    let ns = namespace(owner).to_string();
    let created = shared.write(|s| {
        let active = s
            .get(&Key::new(super::routes::namespaces(), "", &ns))
            .is_some_and(|n| n["status"]["phase"] == "Active");
        if !active {
            return Ok(None);
        }
        let mut meta = json!({
            "labels": template["metadata"]["labels"].clone(),
            "ownerReferences": [owner_reference(owner)],
        });
        for field in ["annotations", "finalizers"] {
            if let Some(v) = template["metadata"].get(field).filter(|v| !v.is_null()) {
                meta[field] = v.clone();
            }
        }
        if !meta["labels"].is_object() {
            meta["labels"] = json!({});
        }
        let full = if name.ends_with('-') {
            let base: String = name.chars().take(58).collect();
            meta["generateName"] = json!(name);
            format!("{base}{}", s.random_suffix())
        } else {
            name.to_string()
        };
        meta["name"] = json!(full);
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": template["spec"].clone()});
        dress(&mut pod);
        super::verbs::set_defaults(rt("pods"), &mut pod, "");
        admission::limit_ranges(s, &ns, &mut pod)?;
        admission::pod_security(s, &ns, &pod)?;
        admission::quota(s, &ns, &pod)?;
        s.create(rt("pods"), &ns, pod).map(Some)
    })?;
    if let Some(pod) = &created {
        kubelet::start(shared, key_of("pods", pod));
    }
    Ok(created)
}

/// Deletes a pod as a controller does (graceful: the kubelet stops it, then it goes).
pub(super) fn delete_pod(shared: &Shared, pod: &Value) {
    super::kubelet::delete_pod(shared, &key_of("pods", pod));
}

/// Records an event about `object` from a controller.
pub(super) fn event(shared: &Shared, object: &Value, component: &str, reason: &str, msg: &str) {
    let warning = reason.starts_with("Failed");
    events::record(shared, object, component, warning, reason, msg);
}

/// Writes `status` when it differs from what is stored, with the Deployment's revision
/// annotation (which the controller sets through `UpdateStatus`); other annotations are
/// left as a client last wrote them.
pub(super) fn write_status(shared: &Shared, plural: &str, obj: &Value) {
    const REVISION: &str = rollout::REVISION;
    let key = key_of(plural, obj);
    let stored = shared.read(|s| s.get(&key).cloned());
    let Some(stored) = stored else {
        return;
    };
    let revision = obj["metadata"]["annotations"].get(REVISION).cloned();
    if stored["status"] == obj["status"]
        && (revision.is_none()
            || stored["metadata"]["annotations"].get(REVISION) == revision.as_ref())
    {
        return;
    }
    let status = obj["status"].clone();
    shared.write(|s| {
        s.modify(&key, |o| {
            o["status"] = status;
            if let Some(r) = revision {
                if !o["metadata"]["annotations"].is_object() {
                    o["metadata"]["annotations"] = json!({});
                }
                o["metadata"]["annotations"][REVISION] = r;
            }
        })
    });
}

/// Applies `change` to a stored object as a controller's plain update (a spec change
/// bumps the generation; a change of nothing is no write). The stored result.
pub(super) fn update(
    shared: &Shared,
    plural: &str,
    obj: &Value,
    change: impl FnOnce(&mut Value),
) -> Option<Value> {
    let key = key_of(plural, obj);
    shared.write(|s| s.update(&key, change))
}

// ---- hashes ----

/// FNV-1a, 32 bits (`hash/fnv` New32a), as `controller.ComputeHash` uses it.
fn fnv32a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// `rand.SafeEncodeString`: each byte mapped into the alphabet of generated names, so a
/// hash never spells a word.
pub(super) fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// A stable text of a JSON value with sorted keys.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for k in keys {
                out.push_str(&json!(k).to_string());
                out.push(':');
                canonical(&m[k], out);
                out.push(',');
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for x in a {
                canonical(x, out);
                out.push(',');
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// `controller.ComputeHash`: the FNV-1a of the template (and of the collision count when
/// there is one), as decimal, safe-encoded (`5d59d67564`).
pub(super) fn template_hash(template: &Value, collision_count: Option<i64>) -> String {
    let mut text = String::new();
    canonical(template, &mut text);
    if let Some(n) = collision_count {
        text.push_str(&n.to_string());
    }
    safe_encode(&fnv32a(text.as_bytes()).to_string())
}

/// The next pod IP of the fake's node (`10.244.1.2` on).
pub(super) fn next_pod_ip(shared: &Shared) -> String {
    let n = shared.workloads.next_ip.fetch_add(1, Ordering::SeqCst) + 2;
    format!("10.244.{}.{}", 1 + n / 250, n % 250 + 1)
}

/// The images the node holds, by containerd's name.
pub(super) fn node_images(
    shared: &Shared,
) -> std::sync::MutexGuard<'_, HashMap<String, images::Inspected>> {
    lock(&shared.workloads.images)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_read_like_pod_template_hashes() {
        // Decimal digits map into `4 5 6 7 8 9 b c d f`, as in `5d59d67564`.
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
        let a = template_hash(
            &json!({"spec": {"containers": [{"name": "c", "image": "x"}]}}),
            None,
        );
        let b = template_hash(
            &json!({"spec": {"containers": [{"image": "x", "name": "c"}]}}),
            None,
        );
        assert_eq!(a, b);
        assert!(a.chars().all(|c| "456789bcdf".contains(c)), "{a}");
        assert_ne!(a, template_hash(&json!({"spec": {}}), None));
        assert_ne!(
            template_hash(&json!({}), Some(1)),
            template_hash(&json!({}), None)
        );
    }

    #[test]
    fn selectors_match_as_label_selector_as_selector() {
        let labels = json!({"app": "web", "tier": "front"});
        assert!(selects(&json!({"matchLabels": {"app": "web"}}), &labels));
        assert!(!selects(&json!({"matchLabels": {"app": "db"}}), &labels));
        assert!(selects(&json!({}), &labels));
        assert!(!selects(&Value::Null, &labels));
        let expr = |op: &str, values: Value| json!({"matchExpressions": [{"key": "tier", "operator": op, "values": values}]});
        assert!(selects(&expr("In", json!(["front", "back"])), &labels));
        assert!(!selects(&expr("NotIn", json!(["front"])), &labels));
        assert!(selects(&expr("Exists", Value::Null), &labels));
        assert!(!selects(&expr("DoesNotExist", Value::Null), &labels));
    }
}
