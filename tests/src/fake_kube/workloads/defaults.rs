//! What the API server does to a workload before storing it: the defaults of
//! pkg/apis/apps/v1/defaults.go (and of the pod template, as for pods), the empty status of
//! `PrepareForCreate`, the DaemonSet's template generation
//! (pkg/registry/apps/daemonset/strategy.go), and on update the validation of
//! `validation`.

use serde_json::{Value, json};

use super::super::api::{ApiError, ResourceType};
use super::super::kubelet::rt;
use super::super::pod_validation;
use super::validation;

/// The annotation apps/v1 keeps a DaemonSet's internal `templateGeneration` in.
pub(super) const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

fn default(obj: &mut Value, field: &str, value: Value) {
    if obj.get(field).is_none_or(Value::is_null) {
        obj[field] = value;
    }
}

/// A pod template's defaults: those of a pod's spec (`SetDefaults_PodSpec`,
/// `SetDefaults_Container`).
fn default_template(template: &mut Value) {
    let mut pod = json!({"spec": template["spec"].take()});
    super::super::verbs::set_defaults(rt("pods"), &mut pod, "");
    template["spec"] = pod["spec"].take();
}

/// The defaults of a workload's spec (create and update alike: the API server defaults
/// every object it decodes).
fn default_spec(plural: &str, obj: &mut Value) {
    if plural == "controllerrevisions" {
        return;
    }
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    let spec = &mut obj["spec"];
    match plural {
        "deployments" => {
            default(spec, "replicas", json!(1));
            default(spec, "strategy", json!({}));
            default(&mut spec["strategy"], "type", json!("RollingUpdate"));
            if spec["strategy"]["type"] == "RollingUpdate" {
                let rolling = &mut spec["strategy"];
                default(rolling, "rollingUpdate", json!({}));
                default(
                    &mut rolling["rollingUpdate"],
                    "maxUnavailable",
                    json!("25%"),
                );
                default(&mut rolling["rollingUpdate"], "maxSurge", json!("25%"));
            }
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "progressDeadlineSeconds", json!(600));
        }
        "replicasets" => default(spec, "replicas", json!(1)),
        "statefulsets" => {
            default(spec, "podManagementPolicy", json!("OrderedReady"));
            default(spec, "updateStrategy", json!({}));
            if spec["updateStrategy"]
                .get("type")
                .is_none_or(Value::is_null)
            {
                spec["updateStrategy"]["type"] = json!("RollingUpdate");
                default(&mut spec["updateStrategy"], "rollingUpdate", json!({}));
            }
            if spec["updateStrategy"]["type"] == "RollingUpdate"
                && spec["updateStrategy"]["rollingUpdate"].is_object()
            {
                default(
                    &mut spec["updateStrategy"]["rollingUpdate"],
                    "partition",
                    json!(0),
                );
            }
            default(spec, "persistentVolumeClaimRetentionPolicy", json!({}));
            let retention = &mut spec["persistentVolumeClaimRetentionPolicy"];
            default(retention, "whenDeleted", json!("Retain"));
            default(retention, "whenScaled", json!("Retain"));
            default(spec, "replicas", json!(1));
            default(spec, "revisionHistoryLimit", json!(10));
            for claim in spec["volumeClaimTemplates"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                default(claim, "apiVersion", json!("v1"));
                default(claim, "kind", json!("PersistentVolumeClaim"));
                default(&mut claim["spec"], "volumeMode", json!("Filesystem"));
                default(claim, "status", json!({"phase": "Pending"}));
            }
        }
        "daemonsets" => {
            default(spec, "updateStrategy", json!({}));
            default(&mut spec["updateStrategy"], "type", json!("RollingUpdate"));
            if spec["updateStrategy"]["type"] == "RollingUpdate" {
                let strategy = &mut spec["updateStrategy"];
                default(strategy, "rollingUpdate", json!({}));
                default(&mut strategy["rollingUpdate"], "maxUnavailable", json!(1));
                default(&mut strategy["rollingUpdate"], "maxSurge", json!(0));
            }
            default(spec, "revisionHistoryLimit", json!(10));
        }
        _ => return,
    }
    if spec["template"].is_object() {
        default_template(&mut spec["template"]);
    }
}

/// The defaults and empty status of a new workload (`PrepareForCreate`).
pub(crate) fn set_defaults(rt: &ResourceType, obj: &mut Value) {
    default_spec(rt.plural, obj);
    let status = match rt.plural {
        "deployments" => json!({}),
        "replicasets" => json!({"replicas": 0}),
        "statefulsets" => json!({"replicas": 0, "availableReplicas": 0}),
        "daemonsets" => {
            if !obj["metadata"]["annotations"].is_object() {
                obj["metadata"]["annotations"] = json!({});
            }
            obj["metadata"]["annotations"][TEMPLATE_GENERATION] = json!("1");
            json!({"currentNumberScheduled": 0, "numberMisscheduled": 0,
                "desiredNumberScheduled": 0, "numberReady": 0})
        }
        _ => return,
    };
    obj["status"] = status;
}

/// A write to a workload's main resource (PUT, PATCH, apply): the defaults, the
/// DaemonSet's template generation, then `ValidateUpdate`'s errors as a 422.
pub(crate) fn prepare_update(
    rt: &ResourceType,
    name: &str,
    old: &Value,
    new: &mut Value,
) -> Result<(), ApiError> {
    default_spec(rt.plural, new);
    if rt.plural == "daemonsets" {
        let generation: i64 = old["metadata"]["annotations"][TEMPLATE_GENERATION]
            .as_str()
            .and_then(|g| g.parse().ok())
            .unwrap_or(1);
        let next = if old["spec"]["template"] != new["spec"]["template"] {
            generation + 1
        } else {
            generation
        };
        if !new["metadata"]["annotations"].is_object() {
            new["metadata"]["annotations"] = json!({});
        }
        new["metadata"]["annotations"][TEMPLATE_GENERATION] = json!(next.to_string());
    }
    let errors = validation::validate_update(rt, old, new);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(pod_validation::invalid_error(rt, name, &errors))
    }
}
