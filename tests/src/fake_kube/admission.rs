//! Pod admission as the LimitRanger and ResourceQuota plugins do it: container defaults and
//! the per-container and per-pod maxima of the namespace's LimitRanges, then every ResourceQuota's `hard` limits on
//! `pods`, `requests.*` and `limits.*` checked against the non-terminal pods already there
//! (403 `must specify` / `exceeded quota`, with the real messages), and `status.used` kept.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::api::{ApiError, resource_named};
use super::routes::namespaces;
use super::store::{Key, Store};

/// A quantity in base units (cores, bytes): `500m`, `2`, `1Gi`, `512M`, `1e3`.
pub(crate) fn quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    num.parse::<f64>().ok().map(|n| n * factor)
}

fn objects(store: &Store, plural: &str, ns: &str) -> Vec<Value> {
    store.list(plural, Some(ns))
}

/// The API server's defaults of a LimitRange (`SetDefaults_LimitRangeItem`, kubernetes
/// pkg/apis/core/v1/defaults.go): for a `Container` item, `default` takes `max` where
/// unset, then `defaultRequest` takes `default`, then `min`. So a Container `max` alone
/// gives every container that limit; a `maxLimitRequestRatio` gives it nothing.
pub(crate) fn default_limit_range(range: &mut Value) {
    for item in range["spec"]["limits"].as_array_mut().into_iter().flatten() {
        if item["type"] != "Container" {
            continue;
        }
        for (target, source) in [
            ("default", "max"),
            ("defaultRequest", "default"),
            ("defaultRequest", "min"),
        ] {
            let from = item[source].as_object().cloned().unwrap_or_default();
            if from.is_empty() {
                continue;
            }
            if !item[target].is_object() {
                item[target] = json!({});
            }
            for (res, value) in from {
                if item[target].get(&res).is_none() {
                    item[target][res] = value;
                }
            }
        }
    }
}

/// Fills container requests and limits from the LimitRanges of `ns` (requests default to
/// limits, as the API server defaults them), then enforces their `max` (a limit must be
/// set) and `maxLimitRequestRatio` per container (`type: Container`) and on the pod's
/// totals (`type: Pod`), with the LimitRanger's texts.
pub(crate) fn limit_ranges(store: &Store, ns: &str, pod: &mut Value) -> Result<(), ApiError> {
    let name = pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ranges = objects(store, "limitranges", ns);
    let Some(containers) = pod["spec"]["containers"].as_array_mut() else {
        return Ok(());
    };
    let mut errors = Vec::new();
    for c in containers {
        // Requests default to the limits first (the pod's defaulting, before admission),
        // then the LimitRanger fills what is still unset.
        let limits = c["resources"]["limits"].clone();
        for (res, value) in limits.as_object().into_iter().flatten() {
            if c["resources"]["requests"].get(res).is_none() {
                c["resources"]["requests"][res] = value.clone();
            }
        }
        for range in &ranges {
            for item in range["spec"]["limits"].as_array().into_iter().flatten() {
                if item["type"] != "Container" {
                    continue;
                }
                for (field, source) in [("limits", "default"), ("requests", "defaultRequest")] {
                    for (res, value) in item[source].as_object().into_iter().flatten() {
                        if c["resources"][field].get(res).is_none() {
                            c["resources"][field][res] = value.clone();
                        }
                    }
                }
            }
        }
        for range in &ranges {
            for item in range["spec"]["limits"].as_array().into_iter().flatten() {
                if item["type"] == "Container" {
                    // Validation comes after defaulting, as the LimitRanger's `Validate`
                    // runs after its `Admit`.
                    check_item(
                        "Container",
                        item,
                        &c["resources"]["requests"],
                        &c["resources"]["limits"],
                        &mut errors,
                    );
                }
            }
        }
    }
    // `type: Pod` items bound the pod's totals: the sum over its containers of each
    // resource any of them sets (podRequests / podLimits in admission.go).
    let containers = pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let (requests, limits) = (
        pod_total(&containers, "requests"),
        pod_total(&containers, "limits"),
    );
    for range in &ranges {
        for item in range["spec"]["limits"].as_array().into_iter().flatten() {
            if item["type"] == "Pod" {
                check_item("Pod", item, &requests, &limits, &mut errors);
            }
        }
    }
    // One error as itself, several as an aggregate (`[a, b]`), as utilerrors.NewAggregate
    // prints them.
    match errors.len() {
        0 => Ok(()),
        1 => Err(forbidden(&name, &errors[0])),
        _ => Err(forbidden(&name, &format!("[{}]", errors.join(", ")))),
    }
}

/// Pod Security admission for the namespace's `pod-security.kubernetes.io/enforce` label
/// (`baseline` or `restricted`; `privileged` and no label admit everything), as
/// staging/src/k8s.io/pod-security-admission does it: `violates PodSecurity
/// "<level>:<version>": <reason> (<detail>), ...`, the baseline checks, then the restricted
/// ones, each in the order of their check IDs (policy/check_*.go). Only the checks a build
/// or job pod can trip are modelled: host namespaces, privileged, hostPath volumes,
/// allowPrivilegeEscalation, capabilities, volume types, runAsNonRoot, runAsUser=0 and
/// seccompProfile.
pub(crate) fn pod_security(store: &Store, ns: &str, pod: &Value) -> Result<(), ApiError> {
    let Some(namespace) = store.get(&Key::new(namespaces(), "", ns)) else {
        return Ok(());
    };
    let labels = &namespace["metadata"]["labels"];
    let level = labels["pod-security.kubernetes.io/enforce"]
        .as_str()
        .unwrap_or("privileged");
    let restricted = match level {
        "baseline" => false,
        "restricted" => true,
        _ => return Ok(()),
    };
    let version = labels["pod-security.kubernetes.io/enforce-version"]
        .as_str()
        .unwrap_or("latest");
    let spec = &pod["spec"];
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .flat_map(|f| spec[*f].as_array().into_iter().flatten())
        .collect();
    let names = |pick: &dyn Fn(&Value) -> bool| -> Vec<String> {
        containers
            .iter()
            .filter(|c| pick(c))
            .map(|c| c["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let mut failures: Vec<String> = Vec::new();
    // Baseline: hostNamespaces, hostPathVolumes (restrictedVolumes replaces it when
    // restricted), privileged.
    let host: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .iter()
        .filter(|f| spec[**f] == true)
        .map(|f| format!("{f}=true"))
        .collect();
    if !host.is_empty() {
        failures.push(format!("host namespaces ({})", host.join(", ")));
    }
    let host_paths: Vec<String> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v.get("hostPath").is_some())
        .map(|v| v["name"].as_str().unwrap_or_default().to_string())
        .collect();
    if !host_paths.is_empty() && !restricted {
        failures.push(format!(
            "hostPath volumes ({} {})",
            plural("volume", &host_paths),
            quoted(&host_paths)
        ));
    }
    let privileged = names(&|c| c["securityContext"]["privileged"] == true);
    if !privileged.is_empty() {
        failures.push(format!(
            "privileged ({} {} must not set securityContext.privileged=true)",
            plural("container", &privileged),
            quoted(&privileged)
        ));
    }
    if restricted {
        let escalation = names(&|c| c["securityContext"]["allowPrivilegeEscalation"] != false);
        if !escalation.is_empty() {
            failures.push(format!(
                "allowPrivilegeEscalation != false ({} {} must set securityContext.allowPrivilegeEscalation=false)",
                plural("container", &escalation),
                quoted(&escalation)
            ));
        }
        let no_drop = names(&|c| {
            !c["securityContext"]["capabilities"]["drop"]
                .as_array()
                .is_some_and(|d| d.iter().any(|x| x == "ALL"))
        });
        if !no_drop.is_empty() {
            failures.push(format!(
                "unrestricted capabilities ({} {} must set securityContext.capabilities.drop=[\"ALL\"])",
                plural("container", &no_drop),
                quoted(&no_drop)
            ));
        }
        const ALLOWED_VOLUMES: [&str; 8] = [
            "configMap",
            "csi",
            "downwardAPI",
            "emptyDir",
            "ephemeral",
            "persistentVolumeClaim",
            "projected",
            "secret",
        ];
        let bad_volumes: Vec<(String, String)> = spec["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| {
                let kind = v.as_object()?.keys().find(|k| *k != "name")?.clone();
                (!ALLOWED_VOLUMES.contains(&kind.as_str()))
                    .then(|| (v["name"].as_str().unwrap_or_default().to_string(), kind))
            })
            .collect();
        if !bad_volumes.is_empty() {
            let names: Vec<String> = bad_volumes.iter().map(|(n, _)| n.clone()).collect();
            let kinds: Vec<String> = bad_volumes.iter().map(|(_, k)| k.clone()).collect();
            failures.push(format!(
                "restricted volume types ({} {} {} restricted volume {} {})",
                plural("volume", &names),
                quoted(&names),
                if names.len() == 1 { "uses" } else { "use" },
                if kinds.len() == 1 { "type" } else { "types" },
                quoted(&kinds)
            ));
        }
        let pod_non_root = spec["securityContext"]["runAsNonRoot"].as_bool();
        let explicit_root = names(&|c| c["securityContext"]["runAsNonRoot"] == false);
        let implicit = names(&|c| {
            c["securityContext"]["runAsNonRoot"].is_null() && pod_non_root != Some(true)
        });
        if pod_non_root == Some(false) || !explicit_root.is_empty() {
            let mut setters = Vec::new();
            if pod_non_root == Some(false) {
                setters.push("pod".to_string());
            }
            if !explicit_root.is_empty() {
                setters.push(format!(
                    "{} {}",
                    plural("container", &explicit_root),
                    quoted(&explicit_root)
                ));
            }
            failures.push(format!(
                "runAsNonRoot != true ({} must not set securityContext.runAsNonRoot=false)",
                setters.join(" and ")
            ));
        } else if !implicit.is_empty() {
            failures.push(format!(
                "runAsNonRoot != true (pod or {} {} must set securityContext.runAsNonRoot=true)",
                plural("container", &implicit),
                quoted(&implicit)
            ));
        }
        let root_user = names(&|c| c["securityContext"]["runAsUser"] == 0);
        if spec["securityContext"]["runAsUser"] == 0 || !root_user.is_empty() {
            let mut setters = Vec::new();
            if spec["securityContext"]["runAsUser"] == 0 {
                setters.push("pod".to_string());
            }
            if !root_user.is_empty() {
                setters.push(format!(
                    "{} {}",
                    plural("container", &root_user),
                    quoted(&root_user)
                ));
            }
            failures.push(format!(
                "runAsUser=0 ({} must not set runAsUser=0)",
                setters.join(" and ")
            ));
        }
        let good = |sc: &Value| {
            matches!(
                sc["seccompProfile"]["type"].as_str(),
                Some("RuntimeDefault" | "Localhost")
            )
        };
        let pod_seccomp = good(&spec["securityContext"]);
        // Containers that set no profile and inherit none (an explicit `Unconfined`,
        // reported upstream as "must not set", is not modelled).
        let no_seccomp =
            names(&|c| c["securityContext"]["seccompProfile"].is_null() && !pod_seccomp);
        if !no_seccomp.is_empty() {
            failures.push(format!(
                "seccompProfile (pod or {} {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")",
                plural("container", &no_seccomp),
                quoted(&no_seccomp)
            ));
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    Err(forbidden(
        name,
        &format!(
            "violates PodSecurity \"{level}:{version}\": {}",
            failures.join(", ")
        ),
    ))
}

/// `container` or `containers`, as pod-security-admission's `pluralize`.
fn plural(word: &str, items: &[String]) -> String {
    if items.len() == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

/// `"a", "b"`, as pod-security-admission's `joinQuote`.
fn quoted(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("{i:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn forbidden(pod: &str, why: &str) -> ApiError {
    forbidden_object("pods", pod, why)
}

fn forbidden_object(plural: &str, name: &str, why: &str) -> ApiError {
    let mut e = ApiError::bad_request(format!("{plural} \"{name}\" is forbidden: {why}"));
    e.code = 403;
    e.reason = "Forbidden";
    e.details = json!({"name": name, "kind": plural});
    e
}

/// What a pod counts against a quota resource name, if the pod evaluator tracks it
/// (`pods`, `cpu`/`memory`/`ephemeral-storage` and their `requests.`/`limits.` forms,
/// hugepages and extended resources; not `requests.storage`, which is the claims').
fn pod_usage(pod: &Value, resource: &str) -> Option<Option<f64>> {
    if resource == "pods" || resource == "count/pods" {
        return Some(Some(1.0));
    }
    let (field, res) = match resource.split_once('.') {
        Some(("requests", r)) => ("requests", r),
        Some(("limits", r)) => ("limits", r),
        None if matches!(resource, "cpu" | "memory" | "ephemeral-storage") => {
            ("requests", resource)
        }
        _ => return None,
    };
    if !(matches!(res, "cpu" | "memory" | "ephemeral-storage")
        || res.starts_with("hugepages-")
        || res.contains('/'))
    {
        return None;
    }
    let mut total = 0.0;
    for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
        match c["resources"][field][res].as_str().and_then(quantity) {
            Some(q) => total += q,
            None => return Some(None),
        }
    }
    Some(Some(total))
}

/// What a PersistentVolumeClaim counts against a quota resource name, as the claim
/// evaluator (pkg/quota/v1/evaluator/core/persistent_volume_claims.go) tracks it:
/// `persistentvolumeclaims`, `requests.storage`, and both per storage class
/// (`<class>.storageclass.storage.k8s.io/...`).
fn claim_usage(claim: &Value, resource: &str) -> Option<Option<f64>> {
    let (class, resource) = match resource.split_once(".storageclass.storage.k8s.io/") {
        Some((class, rest)) => (Some(class), rest),
        None => (None, resource),
    };
    let counted = matches!(
        resource,
        "persistentvolumeclaims" | "count/persistentvolumeclaims" | "requests.storage"
    );
    if !counted {
        return None;
    }
    if let Some(class) = class
        && claim["spec"]["storageClassName"].as_str() != Some(class)
    {
        return Some(Some(0.0));
    }
    if resource == "requests.storage" {
        return Some(
            claim["spec"]["resources"]["requests"]["storage"]
                .as_str()
                .and_then(quantity),
        );
    }
    Some(Some(1.0))
}

fn usage(plural: &str, obj: &Value, resource: &str) -> Option<Option<f64>> {
    match plural {
        "pods" => pod_usage(obj, resource),
        "persistentvolumeclaims" => claim_usage(obj, resource),
        _ => None,
    }
}

/// A claim's storage request as written (`2Gi`), as the API server prints a single
/// quantity; `None` for sums, which [`show`] prints.
fn requested_text(plural: &str, obj: &Value, resource: &str) -> Option<String> {
    (plural == "persistentvolumeclaims" && resource.ends_with("requests.storage"))
        .then(|| obj["spec"]["resources"]["requests"]["storage"].as_str())
        .flatten()
        .map(str::to_string)
}

fn live(pod: &Value) -> bool {
    !matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

/// Checks a new `pod` against every ResourceQuota of `ns`; on success records the new usage
/// in each quota's `status`.
pub(crate) fn quota(store: &mut Store, ns: &str, pod: &Value) -> Result<(), ApiError> {
    quota_for(store, ns, "pods", pod)
}

/// Checks a new object of `plural` (`pods`, counting the non-terminal ones, or
/// `persistentvolumeclaims`) against every ResourceQuota of `ns`, with the texts of
/// plugin/pkg/admission/resourcequota/controller.go (`failed quota: q: must specify r`,
/// `exceeded quota: q, requested: r=x, used: r=y, limited: r=z`); on success records the
/// new usage in each quota's `status.used` (other resources' usage kept).
pub(crate) fn quota_for(
    store: &mut Store,
    ns: &str,
    plural: &str,
    obj: &Value,
) -> Result<(), ApiError> {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let existing: Vec<Value> = objects(store, plural, ns)
        .into_iter()
        .filter(|o| plural != "pods" || live(o))
        .collect();
    let quotas = objects(store, "resourcequotas", ns);
    let mut updates = Vec::new();
    for q in &quotas {
        let qname = q["metadata"]["name"].as_str().unwrap_or_default();
        let mut used = BTreeMap::new();
        for (res, hard) in q["spec"]["hard"].as_object().into_iter().flatten() {
            let Some(wanted) = usage(plural, obj, res) else {
                continue;
            };
            let Some(wanted) = wanted else {
                return Err(forbidden_object(
                    plural,
                    name,
                    &format!("failed quota: {qname}: must specify {res}"),
                ));
            };
            let in_use: f64 = existing
                .iter()
                .filter_map(|p| usage(plural, p, res).flatten())
                .sum();
            let limit = hard.as_str().and_then(quantity).unwrap_or(f64::INFINITY);
            if in_use + wanted > limit + 1e-9 {
                return Err(forbidden_object(
                    plural,
                    name,
                    &format!(
                        "exceeded quota: {qname}, requested: {res}={}, used: {res}={}, limited: {res}={}",
                        requested_text(plural, obj, res).unwrap_or_else(|| show(wanted)),
                        show(in_use),
                        hard.as_str().unwrap_or_default()
                    ),
                ));
            }
            used.insert(res.clone(), json!(show(in_use + wanted)));
        }
        updates.push((qname.to_string(), q["spec"]["hard"].clone(), used));
    }
    let Some(rt) = resource_named("resourcequotas") else {
        return Ok(());
    };
    for (qname, hard, used) in updates {
        store.modify(&Key::new(rt, ns, &qname), |q| {
            let mut all = q["status"]["used"].as_object().cloned().unwrap_or_default();
            all.extend(used);
            q["status"] = json!({"hard": hard, "used": all});
        });
    }
    Ok(())
}

/// The `max` and `maxLimitRequestRatio` checks of one LimitRange item on the requests and
/// limits of a container or of a whole pod (`kind`), with the texts of
/// plugin/pkg/admission/limitranger/admission.go (maxConstraint,
/// limitRequestRatioConstraint).
fn check_item(
    kind: &str,
    item: &Value,
    requests: &Value,
    limits: &Value,
    errors: &mut Vec<String>,
) {
    for (res, max) in item["max"].as_object().into_iter().flatten() {
        let max = max.as_str().unwrap_or_default();
        let cap = quantity(max).unwrap_or(f64::INFINITY);
        let limit = limits[res].as_str();
        let request = requests[res].as_str();
        match limit {
            None => errors.push(format!(
                "maximum {res} usage per {kind} is {max}.  No limit is specified"
            )),
            Some(l) if quantity(l).is_some_and(|l| l > cap) => errors.push(format!(
                "maximum {res} usage per {kind} is {max}, but limit is {l}"
            )),
            Some(_) => {
                if let Some(r) = request
                    && quantity(r).is_some_and(|r| r > cap)
                {
                    errors.push(format!(
                        "maximum {res} usage per {kind} is {max}, but request is {r}"
                    ));
                }
            }
        }
    }
    for (res, ratio) in item["maxLimitRequestRatio"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let ratio = ratio.as_str().unwrap_or_default();
        let request = requests[res].as_str().and_then(quantity);
        let limit = limits[res].as_str().and_then(quantity);
        let enforced = format!("{res} max limit to request ratio per {kind} is {ratio}");
        match (request.filter(|r| *r > 0.0), limit.filter(|l| *l > 0.0)) {
            (None, _) => errors.push(format!(
                "{enforced}, but no request is specified or request is 0"
            )),
            (_, None) => errors.push(format!(
                "{enforced}, but no limit is specified or limit is 0"
            )),
            (Some(r), Some(l)) => {
                if quantity(ratio).is_some_and(|max| l / r > max + 1e-9) {
                    errors.push(format!("{enforced}, but provided ratio is {:.6}", l / r));
                }
            }
        }
    }
}

/// The pod's total of `field` (`requests` or `limits`) per resource, over the containers
/// that set it, written as the API server would print the sum: in the unit the quantities
/// share (`2Gi` + `2Gi` = `4Gi`), else in base units.
fn pod_total(containers: &[Value], field: &str) -> Value {
    let mut totals: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in containers {
        for (res, v) in c["resources"][field].as_object().into_iter().flatten() {
            if let Some(v) = v.as_str() {
                totals.entry(res.clone()).or_default().push(v.to_string());
            }
        }
    }
    let mut out = serde_json::Map::new();
    for (res, values) in totals {
        let sum: f64 = values.iter().filter_map(|v| quantity(v)).sum();
        let suffix = |v: &str| {
            v.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
                .to_string()
        };
        let first = suffix(&values[0]);
        let text = match quantity(&format!("1{first}")) {
            Some(unit)
                if !first.is_empty()
                    && values.iter().all(|v| suffix(v) == first)
                    && (sum / unit).fract().abs() < 1e-9 =>
            {
                format!("{}{first}", (sum / unit).round() as i64)
            }
            _ => show(sum),
        };
        out.insert(res, Value::String(text));
    }
    Value::Object(out)
}

/// A quantity written back the short way (`1.5`, `500m`, `1073741824`).
fn show(q: f64) -> String {
    if q.fract().abs() < 1e-9 {
        format!("{}", q.round() as i64)
    } else {
        format!("{}m", (q * 1000.0).round() as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_in_base_units() {
        assert_eq!(quantity("500m"), Some(0.5));
        assert_eq!(quantity("2"), Some(2.0));
        assert_eq!(quantity("1Gi"), Some(1073741824.0));
        assert_eq!(quantity("1e3"), Some(1000.0));
        assert_eq!(quantity("20G"), Some(2e10));
        assert_eq!(quantity("1x"), None);
        assert_eq!(show(0.5), "500m");
        assert_eq!(show(4.0), "4");
    }

    #[test]
    fn a_pod_limit_range_bounds_the_sum_of_the_containers() {
        let mut store = Store::new(7);
        store
            .create(
                resource_named("limitranges").unwrap(),
                "ns",
                json!({"metadata": {"name": "pods", "namespace": "ns"},
                   "spec": {"limits": [{"type": "Pod", "max": {"memory": "3Gi", "cpu": "1"}}]}}),
            )
            .unwrap();
        let container = |mem: &str| json!({"name": mem, "resources": {"limits": {"memory": mem}}});
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [container("2Gi"), container("2Gi")]}});
        let err = limit_ranges(&store, "ns", &mut pod).unwrap_err();
        // In the LimitRange's order (Go's map order is random; the aggregate's shape is
        // what matters).
        assert_eq!(
            err.message,
            "pods \"p\" is forbidden: [maximum memory usage per Pod is 3Gi, but limit is 4Gi, maximum cpu usage per Pod is 1.  No limit is specified]"
        );
        let mut small = json!({"metadata": {"name": "q"}, "spec": {"containers": [
            {"name": "a", "resources": {"limits": {"memory": "1Gi", "cpu": "500m"}}},
            {"name": "b", "resources": {"limits": {"memory": "1Gi", "cpu": "250m"}}}]}});
        limit_ranges(&store, "ns", &mut small).unwrap();
        // Requests defaulted from the limits (the pod's own defaulting) are summed too.
        assert_eq!(
            small["spec"]["containers"][1]["resources"]["requests"]["cpu"],
            "250m"
        );
    }
}
