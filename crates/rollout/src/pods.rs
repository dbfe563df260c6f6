//! The new pods of a rollout and the states that will not heal by waiting: a container
//! waiting with `ErrImagePull`, `ImagePullBackOff`, `InvalidImageName`, `CrashLoopBackOff`,
//! `CreateContainerConfigError` or `CreateContainerError` (the kubelet's reasons:
//! `pkg/kubelet/images/types.go`, `pkg/kubelet/kuberuntime/kuberuntime_container.go`).
//! A rollout that meets one fails at once with the pod's reason and the container's last
//! log lines, instead of waiting for the progress deadline.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use serde_json::Value;

/// The waiting reasons that fail a rollout at once.
pub const FATAL_REASONS: [&str; 6] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// How many log lines a failure report carries.
pub const LOG_LINES: i64 = 20;

/// A container of a new pod stuck in a fatal state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckContainer {
    pub pod: String,
    pub container: String,
    pub reason: String,
    pub message: String,
    /// Whether the container ran before (its previous instance has the log to show).
    pub restarted: bool,
}

/// Whether `pod` runs `image` in its container `container`: the pods the rollout created.
pub fn is_new_pod(pod: &Value, container: &str, image: &str) -> bool {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["name"] == container && c["image"] == image)
}

/// The first init container or container of `pod` waiting for a fatal reason.
pub fn stuck_container(pod: &Value) -> Option<StuckContainer> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let statuses = ["initContainerStatuses", "containerStatuses"]
        .iter()
        .flat_map(|field| pod["status"][field].as_array().cloned().unwrap_or_default());
    for status in statuses {
        let waiting = &status["state"]["waiting"];
        let reason = waiting["reason"].as_str().unwrap_or_default();
        if FATAL_REASONS.contains(&reason) {
            return Some(StuckContainer {
                pod: name.to_string(),
                container: status["name"].as_str().unwrap_or_default().to_string(),
                reason: reason.to_string(),
                message: waiting["message"].as_str().unwrap_or_default().to_string(),
                restarted: status["restartCount"].as_i64().unwrap_or(0) > 0
                    || status["lastState"]["terminated"].is_object(),
            });
        }
    }
    None
}

/// How many not-ready pods a timeout describes.
const NOT_READY_SHOWN: usize = 5;

/// What each new pod that is not ready waits for: not scheduled (the scheduler's reason
/// and message), a container waiting (its reason and message), a container running but not
/// ready (its readiness probe), or the pod's phase.
pub fn not_ready(pods: &[Value], container: &str, image: &str) -> Vec<String> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut out = Vec::new();
    for pod in pods.iter().filter(|p| is_new_pod(p, container, image)) {
        let name = text(&pod["metadata"]["name"]);
        let conditions = pod["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let condition = |kind: &str| conditions.iter().find(|c| c["type"] == kind).cloned();
        if condition("Ready").is_some_and(|c| c["status"] == "True") {
            continue;
        }
        if let Some(c) = condition("PodScheduled").filter(|c| c["status"] == "False") {
            out.push(format!(
                "pod {name}: not scheduled: {}: {}",
                text(&c["reason"]),
                text(&c["message"])
            ));
            continue;
        }
        let statuses: Vec<Value> = ["initContainerStatuses", "containerStatuses"]
            .iter()
            .flat_map(|f| pod["status"][f].as_array().cloned().unwrap_or_default())
            .collect();
        let waiting = statuses.iter().find(|s| s["state"]["waiting"].is_object());
        let unready = statuses
            .iter()
            .find(|s| s["state"]["running"].is_object() && s["ready"] != true);
        out.push(match (waiting, unready) {
            (Some(s), _) => {
                let w = &s["state"]["waiting"];
                let message = text(&w["message"]);
                format!(
                    "pod {name}, container {}: waiting: {}{}",
                    text(&s["name"]),
                    text(&w["reason"]),
                    if message.is_empty() {
                        String::new()
                    } else {
                        format!(": {message}")
                    }
                )
            }
            (None, Some(s)) => format!(
                "pod {name}, container {}: running, not ready (its readiness probe)",
                text(&s["name"])
            ),
            (None, None) => format!("pod {name}: {}", text(&pod["status"]["phase"])),
        });
        if out.len() == NOT_READY_SHOWN {
            break;
        }
    }
    out
}

/// The pods of `namespace` matching `selector`, as JSON.
pub async fn list_pods(
    client: &kube::Client,
    namespace: &str,
    selector: &str,
) -> Result<Vec<Value>, kube::Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().labels(selector);
    let pods = hr_cluster::retry(|| api.list(&params)).await?;
    Ok(pods
        .items
        .into_iter()
        .filter_map(|p| serde_json::to_value(p).ok())
        .collect())
}

/// The last [`LOG_LINES`] lines of a stuck container: its previous instance's after a
/// restart (`kubectl logs --previous`), else the current one's. Empty when the container
/// never ran or the log cannot be read.
pub async fn last_log_lines(
    client: &kube::Client,
    namespace: &str,
    stuck: &StuckContainer,
) -> Vec<String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let read = |previous: bool| {
        let params = LogParams {
            container: Some(stuck.container.clone()),
            previous,
            tail_lines: Some(LOG_LINES),
            ..LogParams::default()
        };
        let api = api.clone();
        let pod = stuck.pod.clone();
        async move { api.logs(&pod, &params).await }
    };
    let text = if stuck.restarted {
        match read(true).await {
            Ok(text) => Ok(text),
            Err(_) => read(false).await,
        }
    } else if stuck.reason.contains("Image") {
        return Vec::new();
    } else {
        read(false).await
    };
    text.map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fatal_waiting_reasons_are_found_in_init_containers_and_containers() {
        let pod = json!({
            "metadata": {"name": "api-7d9-x2"},
            "spec": {"containers": [{"name": "api", "image": "reg/api:k8s-1@sha256:ab"}]},
            "status": {
                "initContainerStatuses": [{"name": "migrate", "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0}}}],
                "containerStatuses": [{"name": "api", "restartCount": 2,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s restarting failed container=api"}},
                    "lastState": {"terminated": {"exitCode": 1}}}]}});
        assert!(is_new_pod(&pod, "api", "reg/api:k8s-1@sha256:ab"));
        assert!(!is_new_pod(&pod, "api", "reg/api:old"));
        let stuck = stuck_container(&pod).unwrap_or_else(|| panic!("stuck"));
        assert_eq!(stuck.reason, "CrashLoopBackOff");
        assert_eq!(stuck.container, "api");
        assert!(stuck.restarted);
        let creating = json!({"status": {"containerStatuses": [{"name": "api",
            "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        assert_eq!(stuck_container(&creating), None);
    }

    #[test]
    fn a_timeout_says_what_the_new_pods_wait_for() {
        let spec = json!({"containers": [{"name": "api", "image": "new"}]});
        let pods = [
            json!({"metadata": {"name": "a"}, "spec": spec, "status": {"phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                "message": "0/3 nodes are available: 3 Insufficient cpu."}]}}),
            json!({"metadata": {"name": "b"}, "spec": spec, "status": {"phase": "Running",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{"name": "api", "ready": false, "state": {"running": {}}}]}}),
            json!({"metadata": {"name": "c"}, "spec": spec, "status": {"phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}]}}),
            json!({"metadata": {"name": "old"}, "spec": {"containers": [{"name": "api", "image": "old"}]},
                "status": {"phase": "Pending"}}),
        ];
        assert_eq!(
            not_ready(&pods, "api", "new"),
            [
                "pod a: not scheduled: Unschedulable: 0/3 nodes are available: 3 Insufficient cpu.",
                "pod b, container api: running, not ready (its readiness probe)"
            ]
        );
    }
}
