//! Core v1 Events, as the scheduler, the kubelet and the Job controller record them
//! (`Scheduled`, `FailedScheduling`, `FailedMount`, `Pulling`, `Failed`, `BackOff`,
//! `Created`, `Started`, `SuccessfulCreate`, `Completed`, `BackoffLimitExceeded`,
//! `DeadlineExceeded`), so a client can explain why a build is stuck.

use serde_json::{Value, json};

use super::Shared;
use super::api::{now, resource_named};
use super::routes::namespaces;
use super::store::Key;

/// Records an event about `object` (a stored object) from `component`; `warning` makes it
/// a `Warning`, else `Normal`. Nothing is recorded once the namespace is terminating.
pub(crate) fn record(
    shared: &Shared,
    object: &Value,
    component: &str,
    warning: bool,
    reason: &str,
    message: &str,
) {
    record_about(shared, object, None, component, warning, reason, message);
}

/// [`record`] about a part of the object: `field_path` such as
/// `spec.initContainers{svc-redis}`, as the kubelet names the container an event is about.
pub(crate) fn record_about(
    shared: &Shared,
    object: &Value,
    field_path: Option<&str>,
    component: &str,
    warning: bool,
    reason: &str,
    message: &str,
) {
    let ns = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let Some(rt) = resource_named("events") else {
        return;
    };
    shared.write(|s| {
        let active = s
            .get(&Key::new(namespaces(), "", &ns))
            .is_some_and(|n| n["status"]["phase"] == "Active");
        if !active {
            return;
        }
        let at = now();
        let name = format!(
            "{}.{}",
            object["metadata"]["name"].as_str().unwrap_or_default(),
            s.random_suffix()
        );
        let mut event = json!({
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {
                "apiVersion": object["apiVersion"], "kind": object["kind"],
                "name": object["metadata"]["name"], "namespace": ns,
                "uid": object["metadata"]["uid"],
                "resourceVersion": object["metadata"]["resourceVersion"],
            },
            "reason": reason,
            "message": message,
            "source": {"component": component},
            "firstTimestamp": at, "lastTimestamp": at, "count": 1,
            "type": if warning { "Warning" } else { "Normal" },
            "eventTime": null, "reportingComponent": component, "reportingInstance": "",
        });
        if let Some(f) = field_path {
            event["involvedObject"]["fieldPath"] = json!(f);
        }
        let _ = s.create(rt, &ns, event);
    });
}
