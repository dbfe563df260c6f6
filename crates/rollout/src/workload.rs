//! The workloads an image is rolled out to: Deployments, StatefulSets and DaemonSets
//! (`apps/v1`), named by kind, namespace, name and container; read from the cluster into a
//! [`Workload`] that keeps the pod template as it was before any change (for the undo).

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::api::{Api, ApiResource, DynamicObject};
use serde_json::Value;

use crate::error::WorkloadProblem;

/// The kinds `deploy` sets images on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl WorkloadKind {
    pub const ALL: [WorkloadKind; 3] = [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
    ];

    /// `Deployment`, `deployment`, `deployments`, `deploy` (kubectl's short name) and so on.
    pub fn parse(text: &str) -> Option<WorkloadKind> {
        Some(match text.to_ascii_lowercase().as_str() {
            "deployment" | "deployments" | "deploy" => WorkloadKind::Deployment,
            "statefulset" | "statefulsets" | "sts" => WorkloadKind::StatefulSet,
            "daemonset" | "daemonsets" | "ds" => WorkloadKind::DaemonSet,
            _ => return None,
        })
    }

    /// The kind as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
        }
    }

    /// The lower-case name kubectl's messages use (`deployment "api" successfully rolled out`).
    pub fn lower(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
            WorkloadKind::DaemonSet => "daemon set",
        }
    }

    /// The plural of the API path (`deployments`).
    pub fn plural(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployments",
            WorkloadKind::StatefulSet => "statefulsets",
            WorkloadKind::DaemonSet => "daemonsets",
        }
    }

    pub(crate) fn api_resource(self) -> ApiResource {
        match self {
            WorkloadKind::Deployment => ApiResource::erase::<Deployment>(&()),
            WorkloadKind::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
            WorkloadKind::DaemonSet => ApiResource::erase::<DaemonSet>(&()),
        }
    }
}

impl std::fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One workload and the container whose image is set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkloadRef {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    /// `None`: the container named like the workload, else its only container.
    pub container: Option<String>,
}

impl WorkloadRef {
    /// The API path of the workload, for messages and dry runs.
    pub fn path(&self) -> String {
        format!(
            "/apis/apps/v1/namespaces/{}/{}/{}",
            self.namespace,
            self.kind.plural(),
            self.name
        )
    }

    /// The API of the workload's kind in its namespace.
    pub fn api(&self, client: &kube::Client) -> Api<DynamicObject> {
        Api::namespaced_with(client.clone(), &self.namespace, &self.kind.api_resource())
    }
}

impl std::fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// A workload as read before the rollout.
#[derive(Debug, Clone)]
pub struct Workload {
    pub target: WorkloadRef,
    /// The container whose image is set, resolved.
    pub container: String,
    /// Its index in `spec.template.spec.containers` (JSON patches address it by index).
    pub container_index: usize,
    /// Its image before the rollout.
    pub image: String,
    /// `spec.template` before the rollout: what the undo restores.
    pub template: Value,
    /// `spec.selector.matchLabels` and `matchExpressions` as a label selector string.
    pub selector: String,
    pub object: Value,
}

impl Workload {
    /// Reads `target` from the cluster and resolves its container.
    pub async fn read(
        client: &kube::Client,
        target: &WorkloadRef,
    ) -> Result<Workload, WorkloadProblem> {
        let api = target.api(client);
        let object = match hr_cluster::retry(|| api.get(&target.name)).await {
            Ok(object) => serde_json::to_value(object).unwrap_or_default(),
            Err(e) if hr_cluster::status_code(&e) == Some(404) => {
                return Err(WorkloadProblem::NotFound {
                    workload: target.clone(),
                });
            }
            Err(e) => {
                return Err(WorkloadProblem::Read {
                    workload: target.clone(),
                    message: hr_cluster::describe(&e),
                });
            }
        };
        Workload::from_object(target, object)
    }

    /// The workload of an object already read.
    pub fn from_object(target: &WorkloadRef, object: Value) -> Result<Workload, WorkloadProblem> {
        if let Some(why) = unwatchable(target, &object) {
            return Err(WorkloadProblem::Unwatchable {
                workload: Box::new(target.clone()),
                why,
            });
        }
        let template = object["spec"]["template"].clone();
        let containers = template["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let names: Vec<String> = containers
            .iter()
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect();
        let index = match &target.container {
            Some(name) => names.iter().position(|n| n == name),
            None => names
                .iter()
                .position(|n| n == &target.name)
                .or(if names.len() == 1 { Some(0) } else { None }),
        };
        let Some(index) = index else {
            return Err(WorkloadProblem::Container {
                workload: Box::new(target.clone()),
                wanted: target.container.clone(),
                containers: names,
            });
        };
        Ok(Workload {
            target: target.clone(),
            container: names[index].clone(),
            container_index: index,
            image: containers[index]["image"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            selector: label_selector(&object["spec"]["selector"]),
            template,
            object,
        })
    }
}

/// Why a new template would not roll out, or could not be watched rolling out: a paused
/// Deployment (kubectl refuses to undo one, `rollback.go`), an `OnDelete` StatefulSet or
/// DaemonSet (kubectl's status viewers refuse those, `rollout_status.go`).
fn unwatchable(target: &WorkloadRef, object: &Value) -> Option<String> {
    let spec = &object["spec"];
    let (kind, name, ns) = (target.kind.lower(), &target.name, &target.namespace);
    match target.kind {
        WorkloadKind::Deployment if spec["paused"] == true => Some(format!(
            "is paused, so a new template would not roll out; resume it first (`kubectl rollout resume {} {name} -n {ns}`)",
            kind
        )),
        WorkloadKind::StatefulSet | WorkloadKind::DaemonSet
            if spec["updateStrategy"]["type"] == "OnDelete" =>
        {
            Some(format!(
                "updates its pods only when they are deleted (updateStrategy OnDelete), so its rollout cannot be watched; switch it to RollingUpdate, or set the image and delete the pods yourself (`kubectl -n {ns} set image {}/{name} ...`)",
                target.kind.as_str().to_ascii_lowercase()
            ))
        }
        _ => None,
    }
}

/// A `LabelSelector` as the `labelSelector` query parameter writes it
/// (`metav1.LabelSelectorAsSelector`: `k=v`, `k in (a,b)`, `k notin (a)`, `k`, `!k`).
pub fn label_selector(selector: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(labels) = selector["matchLabels"].as_object() {
        for (key, value) in labels {
            parts.push(format!("{key}={}", value.as_str().unwrap_or_default()));
        }
    }
    for expression in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = expression["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = expression["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match expression["operator"].as_str().unwrap_or_default() {
            "In" => parts.push(format!("{key} in ({})", values.join(","))),
            "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
            "Exists" => parts.push(key.to_string()),
            "DoesNotExist" => parts.push(format!("!{key}")),
            _ => {}
        }
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn target(container: Option<&str>) -> WorkloadRef {
        WorkloadRef {
            kind: WorkloadKind::Deployment,
            namespace: "shop".into(),
            name: "api".into(),
            container: container.map(str::to_string),
        }
    }

    fn object(containers: &[&str]) -> Value {
        let containers: Vec<Value> = containers
            .iter()
            .map(|n| json!({"name": n, "image": format!("reg/{n}:1")}))
            .collect();
        json!({"spec": {
            "selector": {"matchLabels": {"app": "api"},
                         "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                                              {"key": "canary", "operator": "DoesNotExist"}]},
            "template": {"spec": {"containers": containers}}}})
    }

    #[test]
    fn the_container_is_named_like_the_workload_or_the_only_one() {
        let w = Workload::from_object(&target(None), object(&["sidecar", "api"])).unwrap();
        assert_eq!((w.container.as_str(), w.container_index), ("api", 1));
        assert_eq!(w.image, "reg/api:1");
        assert_eq!(w.selector, "app=api,tier in (a,b),!canary");
        let w = Workload::from_object(&target(None), object(&["web"])).unwrap();
        assert_eq!(w.container, "web");
        let error = Workload::from_object(&target(None), object(&["a", "b"])).unwrap_err();
        assert!(error.to_string().contains("containers a, b"), "{error}");
        let w = Workload::from_object(&target(Some("b")), object(&["a", "b"])).unwrap();
        assert_eq!(w.container_index, 1);
        let error = Workload::from_object(&target(Some("c")), object(&["a", "b"])).unwrap_err();
        assert!(error.to_string().contains("no container `c`"), "{error}");
    }

    #[test]
    fn paused_and_on_delete_workloads_are_refused_before_anything_changes() {
        let mut paused = object(&["api"]);
        paused["spec"]["paused"] = json!(true);
        let error = Workload::from_object(&target(None), paused).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("kubectl rollout resume deployment api -n shop"),
            "{error}"
        );
        let sts = WorkloadRef {
            kind: WorkloadKind::StatefulSet,
            ..target(None)
        };
        let mut on_delete = object(&["api"]);
        on_delete["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
        let error = Workload::from_object(&sts, on_delete).unwrap_err();
        assert!(
            error.to_string().contains("updateStrategy OnDelete"),
            "{error}"
        );
        assert!(Workload::from_object(&sts, object(&["api"])).is_ok());
    }

    #[test]
    fn kinds_parse_as_kubectl_names_them() {
        assert_eq!(
            WorkloadKind::parse("deploy"),
            Some(WorkloadKind::Deployment)
        );
        assert_eq!(
            WorkloadKind::parse("StatefulSet"),
            Some(WorkloadKind::StatefulSet)
        );
        assert_eq!(WorkloadKind::parse("ds"), Some(WorkloadKind::DaemonSet));
        assert_eq!(WorkloadKind::parse("Job"), None);
    }
}
