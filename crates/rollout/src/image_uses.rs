//! Which images workloads reference: the containers and init containers of Pods,
//! Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs, CronJobs, ReplicationControllers
//! and PodTemplates, read from manifests (multi-document YAML such as `helm template`
//! output, or `kind: List`) or from the cluster; and which pods cannot pull theirs now.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{Api, ListParams};
use serde_json::Value;

/// One container's image in one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUse {
    pub image: String,
    pub kind: String,
    /// Empty for a manifest without a namespace.
    pub namespace: String,
    pub name: String,
    pub container: String,
    /// Whether it is an init container.
    pub init: bool,
}

impl ImageUse {
    /// `Deployment shop/api (container api)`.
    pub fn describe(&self) -> String {
        let place = if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.namespace, self.name)
        };
        let which = if self.init {
            "init container"
        } else {
            "container"
        };
        format!("{} {place} ({which} {})", self.kind, self.container)
    }
}

/// A manifest file that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: not YAML or JSON manifests: {message}")]
pub struct ManifestError {
    pub source_name: String,
    pub message: String,
}

/// The pod spec of `object`, by its kind.
fn pod_spec(object: &Value) -> Option<&Value> {
    let spec = &object["spec"];
    let found = match object["kind"].as_str()? {
        "Pod" => spec,
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "ReplicationController" => &spec["template"]["spec"],
        "CronJob" => &spec["jobTemplate"]["spec"]["template"]["spec"],
        "PodTemplate" => &object["template"]["spec"],
        _ => return None,
    };
    found.is_object().then_some(found)
}

/// Every container image `object` references (the items of a `List` too), in order.
pub fn image_uses(object: &Value) -> Vec<ImageUse> {
    if object["kind"].as_str().is_some_and(|k| k.ends_with("List")) {
        return object["items"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(image_uses)
            .collect();
    }
    let Some(spec) = pod_spec(object) else {
        return Vec::new();
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut uses = Vec::new();
    for (field, init) in [("initContainers", true), ("containers", false)] {
        for container in spec[field].as_array().into_iter().flatten() {
            uses.push(ImageUse {
                image: text(&container["image"]),
                kind: text(&object["kind"]),
                namespace: text(&object["metadata"]["namespace"]),
                name: text(&object["metadata"]["name"]),
                container: text(&container["name"]),
                init,
            });
        }
    }
    uses
}

/// The image uses of every document of a multi-document YAML (or JSON) text.
pub fn manifest_image_uses(text: &str, source_name: &str) -> Result<Vec<ImageUse>, ManifestError> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| ManifestError {
        source_name: source_name.to_string(),
        message: e.to_string(),
    })?;
    Ok(documents.iter().flat_map(image_uses).collect())
}

/// What the workloads of one namespace (or all) reference, and which pods cannot pull now.
#[derive(Debug, Clone, Default)]
pub struct ClusterImages {
    pub uses: Vec<ImageUse>,
    pub pull_failures: Vec<PullFailure>,
}

/// The image uses of every workload in `namespace` (`None`: all namespaces): Deployments,
/// StatefulSets, DaemonSets, CronJobs, ReplicationControllers, and the Jobs, ReplicaSets
/// and Pods that no controller owns (an owned one repeats its controller's template); and
/// the pods that cannot pull an image now, from the same list of pods.
pub async fn cluster_images(
    client: &kube::Client,
    namespace: Option<&str>,
) -> Result<ClusterImages, kube::Error> {
    let mut top = Vec::new();
    top.extend(list_objects::<Deployment>(client, namespace).await?);
    top.extend(list_objects::<StatefulSet>(client, namespace).await?);
    top.extend(list_objects::<DaemonSet>(client, namespace).await?);
    top.extend(list_objects::<CronJob>(client, namespace).await?);
    top.extend(list_objects::<ReplicationController>(client, namespace).await?);
    let pods = list_objects::<Pod>(client, namespace).await?;
    let mut made = Vec::new();
    made.extend(list_objects::<Job>(client, namespace).await?);
    made.extend(list_objects::<ReplicaSet>(client, namespace).await?);
    let uses = top
        .iter()
        .chain(made.iter().chain(&pods).filter(|o| !owned(o)))
        .flat_map(image_uses)
        .collect();
    Ok(ClusterImages {
        uses,
        pull_failures: pull_failures(&pods),
    })
}

fn owned(object: &Value) -> bool {
    object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["controller"] == true))
}

/// The objects of kind `K` as JSON, with their `kind` set (lists leave it out).
async fn list_objects<K>(
    client: &kube::Client,
    namespace: Option<&str>,
) -> Result<Vec<Value>, kube::Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let params = ListParams::default();
    let list = hr_cluster::retry(|| api.list(&params)).await?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|item| serde_json::to_value(item).ok())
        .map(|mut value| {
            value["kind"] = Value::String(kind.clone());
            value
        })
        .collect())
}

/// A pod that cannot pull an image now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullFailure {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub image: String,
    /// `ImagePullBackOff`, `ErrImagePull` or `InvalidImageName`.
    pub reason: String,
    pub message: String,
}

/// The containers of `pods` waiting on an image pull.
pub fn pull_failures(pods: &[Value]) -> Vec<PullFailure> {
    let mut failures = Vec::new();
    for pod in pods {
        for field in ["initContainerStatuses", "containerStatuses"] {
            for status in pod["status"][field].as_array().into_iter().flatten() {
                let waiting = &status["state"]["waiting"];
                let reason = waiting["reason"].as_str().unwrap_or_default();
                if matches!(
                    reason,
                    "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName"
                ) {
                    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
                    failures.push(PullFailure {
                        namespace: text(&pod["metadata"]["namespace"]),
                        pod: text(&pod["metadata"]["name"]),
                        container: text(&status["name"]),
                        image: text(&status["image"]),
                        reason: reason.to_string(),
                        message: text(&waiting["message"]),
                    });
                }
            }
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CHART: &str = r#"---
# Source: shop/templates/api.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: shop
spec:
  template:
    spec:
      initContainers:
        - name: migrate
          image: reg/shop/api:1.0.0
      containers:
        - name: api
          image: reg/shop/api:1.0.0
---
# Source: shop/templates/svc.yaml
apiVersion: v1
kind: Service
metadata:
  name: api
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: report
              image: reg/shop/report:2
---
"#;

    #[test]
    fn workloads_of_a_multi_document_chart_name_their_images() {
        let uses = manifest_image_uses(CHART, "chart.yaml").unwrap();
        let images: Vec<(&str, &str, bool)> = uses
            .iter()
            .map(|u| (u.image.as_str(), u.container.as_str(), u.init))
            .collect();
        assert_eq!(
            images,
            [
                ("reg/shop/api:1.0.0", "migrate", true),
                ("reg/shop/api:1.0.0", "api", false),
                ("reg/shop/report:2", "report", false)
            ]
        );
        assert_eq!(uses[1].describe(), "Deployment shop/api (container api)");
        assert_eq!(uses[2].describe(), "CronJob nightly (container report)");
        let list = serde_json::json!({"kind": "List", "items": [
            {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}]});
        assert_eq!(image_uses(&list)[0].image, "x");
        let error = manifest_image_uses("a: [", "bad.yaml").unwrap_err();
        assert!(
            error.to_string().starts_with("bad.yaml: not YAML"),
            "{error}"
        );
    }

    #[test]
    fn pods_waiting_on_a_pull_are_found() {
        let pods = [
            serde_json::json!({"metadata": {"name": "api-1", "namespace": "shop"},
            "status": {"containerStatuses": [
                {"name": "api", "image": "reg/shop/api:1.0.0",
                 "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"reg/shop/api:1.0.0\""}}},
                {"name": "log", "image": "busybox", "state": {"running": {}}}]}}),
        ];
        let failures = pull_failures(&pods);
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].reason, "ImagePullBackOff");
        assert_eq!(failures[0].pod, "api-1");
    }
}
