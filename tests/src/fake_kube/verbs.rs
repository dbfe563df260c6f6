//! The writes: create (with the defaults and admission checks of the real API server),
//! replace, patch (merge, strategic merge with the Pod API's merge keys, server-side apply
//! as merge), delete with propagation, namespace termination, and SelfSubjectAccessReviews;
//! a plain pod update is held to what `ValidatePodUpdate` lets change; the apps/v1 kinds
//! take their defaults, validation and controllers from `workloads`.

use std::sync::Arc;

use axum::response::Response;
use serde_json::{Value, json};

use super::api::{ApiError, ResourceType, now};
use super::routes::{Call, Target, json_response, namespaces, selector};
use super::store::Key;
use super::{Shared, admission, jobs, kubelet, lock, patches, pod_validation, workloads};

/// The API server's request size limit.
const MAX_REQUEST_BYTES: usize = 3 << 20;
/// The largest ConfigMap or Secret (data plus binaryData, decoded).
const MAX_CONFIG_BYTES: usize = 1 << 20;

fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// A namespace as the API server stores it on create.
pub(crate) fn default_namespace(mut ns: Value) -> Value {
    let name = ns["metadata"]["name"].clone();
    if !ns["metadata"]["labels"].is_object() {
        ns["metadata"]["labels"] = json!({});
    }
    ns["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
    ns["spec"] = json!({"finalizers": ["kubernetes"]});
    ns["status"] = json!({"phase": "Active"});
    ns
}

pub(crate) fn dry_run(call: &Call) -> bool {
    call.q("dryRun") == Some("All")
}

pub(crate) fn record_manifest(shared: &Shared, body: &Value) {
    lock(&shared.manifests).push(body.clone());
}

/// The body of a `PUT` of object `name`: a JSON object whose `metadata.name` is `name`,
/// as the API server checks it.
pub(crate) fn put_body(call: &Call, name: &str) -> Result<Value, ApiError> {
    let body = call
        .body
        .clone()
        .filter(Value::is_object)
        .ok_or_else(|| ApiError::bad_request("the request body is not a JSON object"))?;
    if body["metadata"]["name"].as_str() != Some(name) {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            body["metadata"]["name"].as_str().unwrap_or_default()
        )));
    }
    Ok(body)
}

/// The request's media type, without its parameters.
pub(crate) fn media_type(call: &Call) -> &str {
    call.content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
}

/// Name, namespace and admission checks shared by create and apply.
fn admit(shared: &Shared, target: &Target, obj: &Value) -> Result<(), ApiError> {
    let rt = target.rt;
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let generate = obj["metadata"]["generateName"].as_str().unwrap_or_default();
    let valid = if rt.plural == "namespaces" {
        is_dns1123_label(name)
    } else if name.is_empty() {
        !generate.is_empty()
    } else {
        is_dns1123_subdomain(name) && (rt.plural != "jobs" || name.len() <= 63)
    };
    if !valid {
        return Err(ApiError::invalid(
            rt,
            name,
            "metadata.name",
            &format!(
                "Invalid value: \"{name}\": a lowercase RFC 1123 name must consist of lower case alphanumeric characters, '-' or '.' (at most 63 characters for namespaces and Jobs)"
            ),
        ));
    }
    if let Some(body_ns) = obj["metadata"]["namespace"].as_str()
        && rt.namespaced
        && body_ns != target.ns()
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    if rt.namespaced {
        let ns = shared.read(|s| s.get(&Key::new(namespaces(), "", target.ns())).cloned());
        match ns {
            None => return Err(ApiError::not_found(namespaces(), target.ns())),
            Some(ns) if ns["status"]["phase"] == "Terminating" => {
                return Err(ApiError::namespace_terminating(rt, name, target.ns()));
            }
            Some(_) => {}
        }
    }
    if matches!(rt.plural, "configmaps" | "secrets") {
        let size = config_size(obj);
        if size > MAX_CONFIG_BYTES {
            return Err(ApiError::invalid(
                rt,
                name,
                "[]",
                &format!("Too long: may not be more than {MAX_CONFIG_BYTES} bytes (got {size})"),
            ));
        }
    }
    Ok(())
}

/// Decoded bytes of `data` plus `binaryData` (`stringData` counted as is).
fn config_size(obj: &Value) -> usize {
    let mut total = 0;
    for (field, base64) in [("data", true), ("binaryData", true), ("stringData", false)] {
        if let Some(map) = obj[field].as_object() {
            for v in map.values() {
                let s = v.as_str().unwrap_or_default();
                let secret_data = field == "data" && obj["kind"] == "Secret";
                total += if base64 && (field == "binaryData" || secret_data) {
                    s.len() / 4 * 3 - s.chars().rev().take_while(|c| *c == '=').count()
                } else {
                    s.len()
                };
            }
        }
    }
    total
}

/// Defaults the API server sets on create; `uid` is the new object's uid.
pub(crate) fn set_defaults(rt: &ResourceType, obj: &mut Value, uid: &str) {
    if rt.status_subresource
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    match rt.plural {
        "namespaces" => *obj = default_namespace(obj.clone()),
        "limitranges" => admission::default_limit_range(obj),
        "jobs" => {
            let name = obj["metadata"]["name"].clone();
            let spec = &mut obj["spec"];
            for (field, value) in [
                ("parallelism", json!(1)),
                ("completions", json!(1)),
                ("backoffLimit", json!(6)),
                ("completionMode", json!("NonIndexed")),
                ("suspend", json!(false)),
                ("podReplacementPolicy", json!("TerminatingOrFailed")),
                ("manualSelector", Value::Null),
            ] {
                if spec.get(field).is_none() && !value.is_null() {
                    spec[field] = value;
                }
            }
            spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
            let labels = &mut spec["template"]["metadata"]["labels"];
            if !labels.is_object() {
                *labels = json!({});
            }
            labels["batch.kubernetes.io/controller-uid"] = json!(uid);
            labels["batch.kubernetes.io/job-name"] = name.clone();
            labels["controller-uid"] = json!(uid);
            labels["job-name"] = name;
            obj["status"] = json!({});
        }
        "pods" => {
            let spec = &mut obj["spec"];
            for (field, value) in [
                ("restartPolicy", json!("Always")),
                ("terminationGracePeriodSeconds", json!(30)),
                ("dnsPolicy", json!("ClusterFirst")),
                ("schedulerName", json!("default-scheduler")),
                ("securityContext", json!({})),
            ] {
                if spec.get(field).is_none() {
                    spec[field] = value;
                }
            }
            for list in ["initContainers", "containers", "ephemeralContainers"] {
                for c in spec[list].as_array_mut().into_iter().flatten() {
                    default_container(c);
                }
            }
            obj["status"] = json!({"phase": "Pending", "qosClass": "Burstable"});
        }
        "secrets" => {
            // stringData is write-only: merged into data (base64) on write.
            if let Some(string_data) = obj.get("stringData").and_then(Value::as_object).cloned() {
                use base64::Engine as _;
                if !obj["data"].is_object() {
                    obj["data"] = json!({});
                }
                for (k, v) in string_data {
                    let encoded = base64::engine::general_purpose::STANDARD
                        .encode(v.as_str().unwrap_or_default());
                    obj["data"][k] = json!(encoded);
                }
                if let Some(m) = obj.as_object_mut() {
                    m.remove("stringData");
                }
            }
            if obj["type"].as_str().is_none_or(str::is_empty) {
                obj["type"] = json!("Opaque");
            }
        }
        p if workloads::serves(p) => workloads::set_defaults(rt, obj),
        "persistentvolumeclaims" => {
            if obj["spec"].get("volumeMode").is_none() {
                obj["spec"]["volumeMode"] = json!("Filesystem");
            }
            obj["status"] = json!({"phase": "Pending"});
        }
        _ => {}
    }
}

/// The defaults of a container, init container or ephemeral container
/// (`SetDefaults_Container`, which `SetDefaults_EphemeralContainer` calls): `:latest` (or
/// no tag) pulls Always, anything else IfNotPresent; the termination message file.
pub(crate) fn default_container(c: &mut Value) {
    let image = c["image"].as_str().unwrap_or_default();
    let last = image.rsplit('/').next().unwrap_or_default();
    let latest =
        !image.contains('@') && last.split_once(':').is_none_or(|(_, tag)| tag == "latest");
    let pull = if latest { "Always" } else { "IfNotPresent" };
    for (field, value) in [
        ("terminationMessagePath", json!("/dev/termination-log")),
        ("terminationMessagePolicy", json!("File")),
        ("imagePullPolicy", json!(pull)),
    ] {
        if c.get(field).is_none() {
            c[field] = value;
        }
    }
}

/// Stores a new object, then starts what reacts to it (the Job controller, the kubelet,
/// the volume binder). Shared by POST and by server-side apply of a missing object.
fn create_object(
    shared: &Arc<Shared>,
    target: &Target,
    call: &Call,
    mut obj: Value,
) -> Result<Value, ApiError> {
    admit(shared, target, &obj)?;
    let rt = target.rt;
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    let uid = shared.write(|s| s.uid());
    obj["metadata"]["uid"] = json!(uid);
    obj["kind"] = json!(rt.kind);
    if obj["metadata"]["name"].as_str().is_none_or(str::is_empty) {
        let prefix = obj["metadata"]["generateName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        obj["metadata"]["name"] = json!(format!("{prefix}{}", shared.write(|s| s.random_suffix())));
    }
    set_defaults(rt, &mut obj, &uid);
    let errors = match rt.plural {
        "pods" => pod_validation::validate_pod(&obj),
        "secrets" => pod_validation::validate_secret(&obj),
        p if workloads::serves(p) => workloads::validate_create(rt, &obj),
        _ => Vec::new(),
    };
    if !errors.is_empty() {
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        return Err(pod_validation::invalid_error(rt, name, &errors));
    }
    if dry_run(call) {
        obj["metadata"]["creationTimestamp"] = json!(now());
        return Ok(obj);
    }
    let created = shared.write(|s| {
        if rt.plural == "pods" {
            admission::limit_ranges(s, target.ns(), &mut obj)?;
            admission::pod_security(s, target.ns(), &obj)?;
            admission::quota(s, target.ns(), &obj)?;
        }
        if rt.plural == "persistentvolumeclaims" {
            admission::quota_for(s, target.ns(), rt.plural, &obj)?;
        }
        s.create(rt, target.ns(), obj)
    })?;
    let key = Key::new(
        rt,
        target.ns(),
        created["metadata"]["name"].as_str().unwrap_or_default(),
    );
    match rt.plural {
        "jobs" => jobs::start_job(shared, key),
        "pods" if workloads::simulated(&created) => workloads::start_pod(shared, key),
        "pods" => kubelet::start_pod(shared, key),
        p if workloads::serves(p) => workloads::ensure_started(shared),
        "persistentvolumeclaims" => kubelet::bind_claim(shared, key),
        _ => {}
    }
    Ok(created)
}

pub(crate) fn create(
    shared: &Arc<Shared>,
    target: &Target,
    call: &Call,
) -> Result<Response, ApiError> {
    if call.body_len > MAX_REQUEST_BYTES {
        return Err(ApiError::too_large(MAX_REQUEST_BYTES));
    }
    let body = call
        .body
        .clone()
        .filter(Value::is_object)
        .ok_or_else(|| ApiError::bad_request("the request body is not a JSON object"))?;
    if target.rt.plural == "selfsubjectaccessreviews" {
        return Ok(json_response(201, &access_review(shared, body)));
    }
    if !dry_run(call) {
        record_manifest(shared, &body);
    }
    let created = create_object(shared, target, call, body)?;
    Ok(json_response(201, &created))
}

fn access_review(shared: &Shared, mut review: Value) -> Value {
    let attrs = &review["spec"]["resourceAttributes"];
    let verb = attrs["verb"].as_str().unwrap_or_default().to_string();
    let mut resource = attrs["resource"].as_str().unwrap_or_default().to_string();
    if let Some(sub) = attrs["subresource"].as_str().filter(|s| !s.is_empty()) {
        resource = format!("{resource}/{sub}");
    }
    let denied = attrs.is_object() && lock(&shared.faults).denied(&verb, &resource);
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    review["kind"] = json!("SelfSubjectAccessReview");
    review["metadata"] = json!({"creationTimestamp": null});
    review["status"] = if denied {
        json!({"allowed": false, "denied": true, "reason": format!("denied by the fake's RBAC rule for {verb} {resource}")})
    } else {
        json!({"allowed": true, "reason": "RBAC: allowed by the fake cluster"})
    };
    review
}

/// Keeps what a write may not change: the status on the main resource, everything but the
/// status on `/status`.
fn protect(rt: &ResourceType, sub: Option<&str>, old: &Value, new: &mut Value) {
    if !rt.status_subresource {
        return;
    }
    if sub == Some("status") {
        let status = new.get("status").cloned();
        *new = old.clone();
        match status {
            Some(s) => new["status"] = s,
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    } else {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
}

fn check_immutable(
    rt: &ResourceType,
    name: &str,
    old: &Value,
    new: &Value,
) -> Result<(), ApiError> {
    if matches!(rt.plural, "configmaps" | "secrets")
        && old["immutable"] == json!(true)
        && (old["data"] != new["data"]
            || old["binaryData"] != new["binaryData"]
            || new["immutable"] != json!(true))
    {
        return Err(ApiError::invalid(
            rt,
            name,
            "data",
            "Forbidden: field is immutable when `immutable` is set",
        ));
    }
    Ok(())
}

fn write_back(
    shared: &Shared,
    target: &Target,
    call: &Call,
    old: &Value,
    mut new: Value,
) -> Result<Response, ApiError> {
    let name = target.name.as_deref().unwrap_or_default();
    if let Some(rv) = new["metadata"]["resourceVersion"].as_str()
        && !rv.is_empty()
        && Some(rv) != old["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::conflict(target.rt, name));
    }
    protect(target.rt, target.sub.as_deref(), old, &mut new);
    check_immutable(target.rt, name, old, &new)?;
    if workloads::serves(target.rt.plural) && target.sub.is_none() {
        workloads::prepare_update(target.rt, name, old, &mut new)?;
    }
    if target.rt.plural == "pods" && target.sub.is_none() {
        // A plain update may change little of a pod's spec, its ephemeral containers not
        // at all (pkg/registry/core/pod/strategy.go podStrategy.ValidateUpdate).
        let errors = pod_validation::validate_pod_update(&new, old);
        if !errors.is_empty() {
            return Err(pod_validation::invalid_error(target.rt, name, &errors));
        }
    }
    if dry_run(call) {
        return Ok(json_response(200, &new));
    }
    let stored = shared
        .write(|s| s.replace(&target.key(), new))
        .ok_or_else(|| ApiError::not_found(target.rt, name))?;
    Ok(json_response(200, &stored))
}

pub(crate) fn replace(
    shared: &Arc<Shared>,
    target: &Target,
    call: &Call,
) -> Result<Response, ApiError> {
    let name = target.name.as_deref().unwrap_or_default();
    let body = put_body(call, name)?;
    let old = shared
        .read(|s| s.get(&target.key()).cloned())
        .ok_or_else(|| ApiError::not_found(target.rt, name))?;
    if target.sub.is_none() && !dry_run(call) {
        record_manifest(shared, &body);
    }
    write_back(shared, target, call, &old, body)
}

pub(crate) fn patch(
    shared: &Arc<Shared>,
    target: &Target,
    call: &Call,
) -> Result<Response, ApiError> {
    let name = target.name.as_deref().unwrap_or_default();
    let ct = media_type(call);
    let apply = ct == "application/apply-patch+yaml";
    if !apply && !PATCH_TYPES.contains(&ct) {
        return Err(ApiError::unsupported_media_type(ct));
    }
    let body = patch_body(call, ct)?;
    if apply && call.q("fieldManager").is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(
            "PATCH, application/apply-patch+yaml requests require fieldManager",
        ));
    }
    let old = shared.read(|s| s.get(&target.key()).cloned());
    let Some(old) = old else {
        if apply && target.sub.is_none() {
            if !dry_run(call) {
                record_manifest(shared, &body);
            }
            let created = create_object(shared, target, call, body)?;
            return Ok(json_response(201, &created));
        }
        return Err(ApiError::not_found(target.rt, name));
    };
    if apply && target.sub.is_none() && !dry_run(call) {
        record_manifest(shared, &body);
    }
    let mut new = if apply {
        let mut new = old.clone();
        super::store::merge_patch(&mut new, &body);
        new
    } else {
        apply_patch(ct, &old, &body)?
    };
    if !sets_resource_version(&body) {
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
    }
    write_back(shared, target, call, &old, new)
}

/// Whether a patch names a `resourceVersion` (then it is a precondition of the write).
pub(crate) fn sets_resource_version(body: &Value) -> bool {
    match body {
        Value::Array(ops) => ops
            .iter()
            .any(|op| op["path"] == "/metadata/resourceVersion"),
        _ => body["metadata"].get("resourceVersion").is_some(),
    }
}

/// The patch types the API server applies (besides server-side apply).
pub(crate) const PATCH_TYPES: [&str; 3] = [
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/json-patch+json",
];

/// The body of a patch of type `ct`: a list of operations for a JSON patch, an object
/// for the others.
pub(crate) fn patch_body(call: &Call, ct: &str) -> Result<Value, ApiError> {
    let body = call.body.clone().unwrap_or(Value::Null);
    match (ct, &body) {
        ("application/json-patch+json", Value::Array(_)) => Ok(body),
        ("application/json-patch+json", _) => Err(ApiError::bad_request(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
        )),
        (_, Value::Object(_)) => Ok(body),
        _ => Err(ApiError::bad_request("the patch is not a JSON object")),
    }
}

/// `old` with the patch `body` of type `ct` applied (pkg/endpoints/handlers/patch.go):
/// JSON merge patch, strategic merge patch (`patches`; its errors answer 500, as
/// `interpretStrategicMergePatchError` passes them on) or JSON patch (a failed operation,
/// a `test` included, answers `NewGenericServerResponse(422)`: `Invalid`, "the server
/// rejected our request due to an error in our request", the library's text dropped).
pub(crate) fn apply_patch(ct: &str, old: &Value, body: &Value) -> Result<Value, ApiError> {
    let mut new = old.clone();
    match ct {
        "application/strategic-merge-patch+json" => {
            patches::strategic_merge(&mut new, body).map_err(ApiError::internal)?;
        }
        "application/json-patch+json" => {
            patches::json_patch(&mut new, body).map_err(|_| ApiError::json_patch_failed())?;
        }
        _ => super::store::merge_patch(&mut new, body),
    }
    Ok(new)
}

/// `propagationPolicy` from the DeleteOptions body or the query; `None` when not given.
fn propagation(call: &Call) -> Option<String> {
    if let Some(p) = call
        .body
        .as_ref()
        .and_then(|b| b["propagationPolicy"].as_str())
    {
        return Some(p.to_string());
    }
    if call
        .body
        .as_ref()
        .and_then(|b| b["orphanDependents"].as_bool())
        == Some(true)
    {
        return Some("Orphan".to_string());
    }
    call.q("propagationPolicy").map(str::to_string)
}

fn success_status(rt: &ResourceType, obj: &Value) -> Value {
    let mut details =
        json!({"name": obj["metadata"]["name"], "kind": rt.plural, "uid": obj["metadata"]["uid"]});
    if !rt.group.is_empty() {
        details["group"] = json!(rt.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

pub(crate) fn delete(
    shared: &Arc<Shared>,
    target: &Target,
    call: &Call,
) -> Result<Response, ApiError> {
    let name = target.name.as_deref().unwrap_or_default();
    let key = target.key();
    let obj = shared
        .read(|s| s.get(&key).cloned())
        .ok_or_else(|| ApiError::not_found(target.rt, name))?;
    if let Some(uid) = call
        .body
        .as_ref()
        .and_then(|b| b["preconditions"]["uid"].as_str())
        && Some(uid) != obj["metadata"]["uid"].as_str()
    {
        return Err(ApiError::conflict(target.rt, name));
    }
    if dry_run(call) {
        return Ok(json_response(200, &obj));
    }
    let (code, body) = delete_object(shared, target.rt, &key, propagation(call).as_deref());
    Ok(json_response(code, &body))
}

/// Deletes one object the way its kind is deleted, returning the response.
fn delete_object(
    shared: &Arc<Shared>,
    rt: &ResourceType,
    key: &Key,
    policy: Option<&str>,
) -> (u16, Value) {
    match rt.plural {
        "namespaces" => (200, terminate_namespace(shared, &key.name)),
        "pods" => (200, kubelet::delete_pod(shared, key)),
        "jobs" => {
            // batch/v1 Jobs orphan their pods unless told otherwise.
            let policy = policy.unwrap_or("Orphan");
            jobs::delete_job(shared, key, policy)
        }
        "deployments" | "replicasets" | "statefulsets" | "daemonsets" => {
            workloads::delete(shared, rt, key, policy)
        }
        _ => {
            let removed = shared.write(|s| s.remove(key)).unwrap_or_default();
            (200, success_status(rt, &removed))
        }
    }
}

pub(crate) fn delete_collection(
    shared: &Arc<Shared>,
    target: &Target,
    call: &Call,
) -> Result<Response, ApiError> {
    let matches = selector(call)?;
    let objects = shared.read(|s| s.list(target.rt.plural, target.namespace.as_deref()));
    let policy = propagation(call);
    let mut items = Vec::new();
    for obj in objects.into_iter().filter(|o| matches(o)) {
        let key = Key::new(
            target.rt,
            obj["metadata"]["namespace"].as_str().unwrap_or_default(),
            obj["metadata"]["name"].as_str().unwrap_or_default(),
        );
        if !dry_run(call) {
            delete_object(shared, target.rt, &key, policy.as_deref());
        }
        items.push(obj);
    }
    let rv = shared.read(|s| s.resource_version());
    Ok(json_response(
        200,
        &json!({"kind": format!("{}List", target.rt.kind), "apiVersion": target.rt.api_version(),
            "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
    ))
}

/// Marks a namespace `Terminating`; after the deletion delay its contents and then the
/// namespace itself are removed. Returns the namespace as stored.
pub(crate) fn terminate_namespace(shared: &Arc<Shared>, name: &str) -> Value {
    let key = Key::new(namespaces(), "", name);
    let already = shared.read(|s| {
        s.get(&key)
            .is_some_and(|n| n["status"]["phase"] == "Terminating")
    });
    let stored = shared.write(|s| {
        s.modify(&key, |ns| {
            if ns["metadata"].get("deletionTimestamp").is_none() {
                ns["metadata"]["deletionTimestamp"] = json!(now());
                ns["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            }
            ns["status"]["phase"] = json!("Terminating");
        })
    });
    if !already {
        let shared = Arc::clone(shared);
        let name = name.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(shared.namespace_deletion_delay()).await;
            kubelet::purge_namespace(&shared, &name).await;
        });
    }
    stored.unwrap_or_default()
}
