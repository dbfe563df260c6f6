//! The API server's validation of the workloads, with its texts
//! (pkg/apis/apps/validation/validation.go: `ValidateDeploymentSpec`,
//! `ValidateDeploymentStrategy`, `ValidateRollingUpdateDeployment`,
//! `ValidatePodTemplateSpecForReplicaSet`, `ValidateReplicaSetSpec`,
//! `ValidateStatefulSetSpec`, `ValidateStatefulSetUpdate`, `ValidateDaemonSetSpec`; the
//! selector immutability of the apps/v1 strategies' `ValidateUpdate`), the pod template's
//! spec checked as a pod's (`pod_validation`). A bad value prints as Go's `%#v` prints it
//! (`field.Error.ErrorBody`): `map[string]string{"app":"web"}`,
//! `v1.LabelSelector{MatchLabels:..., MatchExpressions:...}`, `intstr.IntOrString{...}`.

use serde_json::{Value, json};

use super::super::api::ResourceType;
use super::super::pod_validation::{FieldError, validate_pod_spec};
use super::selects;

fn invalid(field: &str, value: &str, detail: &str) -> FieldError {
    FieldError {
        field: field.to_string(),
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {value}: {detail}"),
    }
}

fn required(field: &str) -> FieldError {
    FieldError {
        field: field.to_string(),
        reason: "FieldValueRequired",
        message: "Required value".to_string(),
    }
}

fn forbidden(field: &str, detail: &str) -> FieldError {
    FieldError {
        field: field.to_string(),
        reason: "FieldValueForbidden",
        message: format!("Forbidden: {detail}"),
    }
}

fn not_supported(field: &str, value: &str, supported: &[&str]) -> FieldError {
    let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    FieldError {
        field: field.to_string(),
        reason: "FieldValueNotSupported",
        message: format!(
            "Unsupported value: {value}: supported values: {}",
            list.join(", ")
        ),
    }
}

/// `%#v` of a `map[string]string` (keys sorted, as Go's fmt prints maps).
fn go_map(v: &Value) -> String {
    match v.as_object() {
        None => "map[string]string(nil)".to_string(),
        Some(m) => {
            let mut pairs: Vec<(&String, &Value)> = m.iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{k:?}:{:?}", v.as_str().unwrap_or_default()))
                .collect();
            format!("map[string]string{{{}}}", inner.join(", "))
        }
    }
}

/// `%#v` of a `metav1.LabelSelector`.
pub(super) fn go_label_selector(v: &Value) -> String {
    let expressions = match v["matchExpressions"].as_array() {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(list) => {
            let items: Vec<String> = list
                .iter()
                .map(|e| {
                    let values = match e["values"].as_array() {
                        None => "[]string(nil)".to_string(),
                        Some(vs) => format!(
                            "[]string{{{}}}",
                            vs.iter()
                                .map(|x| format!("{:?}", x.as_str().unwrap_or_default()))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{:?}, Operator:{:?}, Values:{values}}}",
                        e["key"].as_str().unwrap_or_default(),
                        e["operator"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{expressions}}}",
        go_map(&v["matchLabels"])
    )
}

/// `%#v` of an `intstr.IntOrString`.
fn go_int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => format!("intstr.IntOrString{{Type:1, IntVal:0, StrVal:{s:?}}}"),
        other => format!(
            "intstr.IntOrString{{Type:0, IntVal:{}, StrVal:\"\"}}",
            other.as_i64().unwrap_or_default()
        ),
    }
}

fn nonnegative(errs: &mut Vec<FieldError>, field: &str, v: &Value) {
    if let Some(n) = v.as_i64()
        && n < 0
    {
        errs.push(invalid(
            field,
            &n.to_string(),
            "must be greater than or equal to 0",
        ));
    }
}

/// The value of an int-or-percent (`getIntOrPercentValue`), and whether it is a percent.
fn int_or_percent(v: &Value) -> (i64, bool) {
    match v {
        Value::String(s) => (
            s.trim_end_matches('%').parse().unwrap_or_default(),
            s.ends_with('%'),
        ),
        other => (other.as_i64().unwrap_or_default(), false),
    }
}

/// `ValidatePositiveIntOrPercent`.
fn positive_int_or_percent(errs: &mut Vec<FieldError>, field: &str, v: &Value) {
    match v {
        Value::String(s)
            if !(s.ends_with('%') && s.trim_end_matches('%').parse::<i64>().is_ok()) =>
        {
            errs.push(invalid(
                field,
                &format!("{s:?}"),
                "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
            ));
        }
        _ => {
            let (n, _) = int_or_percent(v);
            if n < 0 {
                errs.push(invalid(
                    field,
                    &n.to_string(),
                    "must be greater than or equal to 0",
                ));
            }
        }
    }
}

/// `ValidatePodTemplateSpecForReplicaSet` (and the StatefulSet's and DaemonSet's
/// variants): the selector must select the template's labels, the spec is a pod's, and a
/// controller's pods always restart.
fn template(errs: &mut Vec<FieldError>, spec: &Value, extra_volumes: &[String]) {
    let selector = &spec["selector"];
    let template = &spec["template"];
    let labels = &template["metadata"]["labels"];
    // A missing selector is `labels.Nothing()`, which is not empty and matches nothing.
    let empty = selector.is_object()
        && selector["matchLabels"]
            .as_object()
            .is_none_or(|m| m.is_empty())
        && selector["matchExpressions"]
            .as_array()
            .is_none_or(Vec::is_empty);
    if !empty && !selects(selector, labels) {
        errs.push(invalid(
            "spec.template.metadata.labels",
            &go_map(labels),
            "`selector` does not match template `labels`",
        ));
    }
    let mut pod_spec = template["spec"].clone();
    if !extra_volumes.is_empty() {
        let volumes = pod_spec["volumes"].as_array().cloned().unwrap_or_default();
        let mut all = volumes;
        for v in extra_volumes {
            all.push(json!({"name": v, "persistentVolumeClaim": {"claimName": v}}));
        }
        pod_spec["volumes"] = json!(all);
    }
    for mut e in validate_pod_spec(&json!({"spec": pod_spec})) {
        e.field = e.field.replacen("spec.", "spec.template.spec.", 1);
        errs.push(e);
    }
    let policy = template["spec"]["restartPolicy"]
        .as_str()
        .unwrap_or("Always");
    if policy != "Always" {
        errs.push(not_supported(
            "spec.template.spec.restartPolicy",
            &format!("{policy:?}"),
            &["Always"],
        ));
    }
    if template["spec"]
        .get("activeDeadlineSeconds")
        .is_some_and(|v| !v.is_null())
    {
        errs.push(forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in ReplicaSet is not Supported",
        ));
    }
}

/// `spec.selector`: required, and not empty.
fn selector(errs: &mut Vec<FieldError>, spec: &Value, what: &str) {
    let s = &spec["selector"];
    if !s.is_object() {
        errs.push(required("spec.selector"));
    } else if s["matchLabels"].as_object().is_none_or(|m| m.is_empty())
        && s["matchExpressions"].as_array().is_none_or(Vec::is_empty)
    {
        errs.push(invalid(
            "spec.selector",
            &go_label_selector(s),
            &format!("empty selector is invalid for {what}"),
        ));
    }
}

fn deployment(errs: &mut Vec<FieldError>, spec: &Value) {
    nonnegative(errs, "spec.replicas", &spec["replicas"]);
    selector(errs, spec, "deployment");
    template(errs, spec, &[]);
    let strategy = &spec["strategy"];
    match strategy["type"].as_str().unwrap_or_default() {
        "Recreate" => {
            if strategy.get("rollingUpdate").is_some_and(|r| !r.is_null()) {
                errs.push(forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => {
            let r = &strategy["rollingUpdate"];
            let path = "spec.strategy.rollingUpdate";
            surge_and_unavailable(errs, path, r);
            let (n, percent) = int_or_percent(&r["maxUnavailable"]);
            if percent && n > 100 {
                errs.push(invalid(
                    &format!("{path}.maxUnavailable"),
                    &format!("{:?}", r["maxUnavailable"].as_str().unwrap_or_default()),
                    "must not be greater than 100%",
                ));
            }
        }
        other => errs.push(not_supported(
            "spec.strategy.type",
            &format!("{other:?}"),
            &["Recreate", "RollingUpdate"],
        )),
    }
    nonnegative(errs, "spec.minReadySeconds", &spec["minReadySeconds"]);
    nonnegative(
        errs,
        "spec.revisionHistoryLimit",
        &spec["revisionHistoryLimit"],
    );
    if let Some(deadline) = spec["progressDeadlineSeconds"].as_i64() {
        nonnegative(
            errs,
            "spec.progressDeadlineSeconds",
            &spec["progressDeadlineSeconds"],
        );
        if deadline <= spec["minReadySeconds"].as_i64().unwrap_or(0) {
            errs.push(invalid(
                "spec.progressDeadlineSeconds",
                &deadline.to_string(),
                "must be greater than minReadySeconds",
            ));
        }
    }
}

fn stateful_set(errs: &mut Vec<FieldError>, spec: &Value) {
    match spec["podManagementPolicy"].as_str().unwrap_or_default() {
        "OrderedReady" | "Parallel" => {}
        other => errs.push(invalid(
            "spec.podManagementPolicy",
            &format!("{other:?}"),
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let strategy = &spec["updateStrategy"];
    match strategy["type"].as_str().unwrap_or_default() {
        "OnDelete" if strategy.get("rollingUpdate").is_some_and(|r| !r.is_null()) => {
            errs.push(forbidden(
                "spec.updateStrategy.rollingUpdate",
                "only allowed for updateStrategy 'RollingUpdate'",
            ));
        }
        "OnDelete" => {}
        "RollingUpdate" => nonnegative(
            errs,
            "spec.updateStrategy.rollingUpdate.partition",
            &strategy["rollingUpdate"]["partition"],
        ),
        other => errs.push(not_supported(
            "spec.updateStrategy.type",
            &format!("{other:?}"),
            &["OnDelete", "RollingUpdate"],
        )),
    }
    nonnegative(errs, "spec.replicas", &spec["replicas"]);
    nonnegative(errs, "spec.minReadySeconds", &spec["minReadySeconds"]);
    selector(errs, spec, "statefulset");
    let claims: Vec<String> = spec["volumeClaimTemplates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    template(errs, spec, &claims);
}

/// What a Deployment's and a DaemonSet's `rollingUpdate` share: `maxUnavailable` and
/// `maxSurge` non-negative integers or percentages, not both 0.
fn surge_and_unavailable(errs: &mut Vec<FieldError>, path: &str, r: &Value) {
    positive_int_or_percent(
        errs,
        &format!("{path}.maxUnavailable"),
        &r["maxUnavailable"],
    );
    positive_int_or_percent(errs, &format!("{path}.maxSurge"), &r["maxSurge"]);
    if int_or_percent(&r["maxUnavailable"]).0 == 0 && int_or_percent(&r["maxSurge"]).0 == 0 {
        errs.push(invalid(
            &format!("{path}.maxUnavailable"),
            &go_int_or_string(&r["maxUnavailable"]),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
}

fn daemon_set(errs: &mut Vec<FieldError>, spec: &Value) {
    selector(errs, spec, "daemonset");
    template(errs, spec, &[]);
    nonnegative(errs, "spec.minReadySeconds", &spec["minReadySeconds"]);
    let strategy = &spec["updateStrategy"];
    match strategy["type"].as_str().unwrap_or_default() {
        "OnDelete" => {}
        "RollingUpdate" => {
            let r = &strategy["rollingUpdate"];
            let path = "spec.updateStrategy.rollingUpdate";
            surge_and_unavailable(errs, path, r);
        }
        other => errs.push(not_supported(
            "spec.updateStrategy.type",
            &format!("{other:?}"),
            &["OnDelete", "RollingUpdate"],
        )),
    }
}

/// The errors of a new workload (`Validate` of its strategy).
pub(crate) fn validate_create(rt: &ResourceType, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = &obj["spec"];
    match rt.plural {
        "deployments" => deployment(&mut errs, spec),
        "replicasets" => {
            nonnegative(&mut errs, "spec.replicas", &spec["replicas"]);
            nonnegative(&mut errs, "spec.minReadySeconds", &spec["minReadySeconds"]);
            selector(&mut errs, spec, "replicaset");
            template(&mut errs, spec, &[]);
        }
        "statefulsets" => stateful_set(&mut errs, spec),
        "daemonsets" => daemon_set(&mut errs, spec),
        "controllerrevisions" => {
            if obj.get("data").is_none_or(Value::is_null) {
                errs.push(FieldError {
                    field: "data".to_string(),
                    reason: "FieldValueRequired",
                    message: "Required value: data is mandatory".to_string(),
                });
            }
            nonnegative(&mut errs, "revision", &obj["revision"]);
        }
        _ => {}
    }
    errs
}

/// The errors of an update (`ValidateUpdate`): the new object's, then what may not
/// change: the selector (apps/v1), a StatefulSet's spec beyond its mutable fields, a
/// ControllerRevision's data.
pub(crate) fn validate_update(rt: &ResourceType, old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = validate_create(rt, new);
    if matches!(rt.plural, "deployments" | "replicasets" | "daemonsets")
        && old["spec"]["selector"] != new["spec"]["selector"]
    {
        errs.push(invalid(
            "spec.selector",
            &go_label_selector(&new["spec"]["selector"]),
            "field is immutable",
        ));
    }
    if rt.plural == "statefulsets" {
        let mutable = [
            "replicas",
            "ordinals",
            "template",
            "updateStrategy",
            "persistentVolumeClaimRetentionPolicy",
            "minReadySeconds",
        ];
        let strip = |spec: &Value| {
            let mut s = spec.clone();
            if let Some(m) = s.as_object_mut() {
                for f in mutable {
                    m.remove(f);
                }
            }
            s
        };
        if strip(&old["spec"]) != strip(&new["spec"]) {
            errs.push(forbidden(
                "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ));
        }
    }
    if rt.plural == "controllerrevisions" && old["data"] != new["data"] {
        errs.push(FieldError {
            field: "data".to_string(),
            reason: "FieldValueInvalid",
            message: "Invalid value: \"...\": field is immutable".to_string(),
        });
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect()
    }

    #[test]
    fn values_print_as_go_prints_them() {
        assert_eq!(
            go_label_selector(&json!({"matchLabels": {"b": "2", "a": "1"}})),
            "v1.LabelSelector{MatchLabels:map[string]string{\"a\":\"1\", \"b\":\"2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
        );
        assert_eq!(go_map(&Value::Null), "map[string]string(nil)");
        assert_eq!(
            go_int_or_string(&json!(0)),
            "intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}"
        );
    }

    #[test]
    fn a_deployment_without_selector_reads_as_the_api_server_writes_it() {
        let rt = super::super::super::api::resource_named("deployments").unwrap();
        let d = json!({"spec": {"replicas": 1, "strategy": {"type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}},
            "progressDeadlineSeconds": 600,
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"restartPolicy": "Always", "containers": [{"name": "c"}]}}}});
        assert_eq!(
            messages(&validate_create(rt, &d)),
            [
                "spec.selector: Required value",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
                "spec.template.spec.containers[0].image: Required value",
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0",
            ]
        );
    }
}
