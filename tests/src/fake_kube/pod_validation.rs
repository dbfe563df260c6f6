//! The API server's validation of the Pod and Secret fields a CI job pod uses, with its
//! texts (kubernetes/kubernetes pkg/apis/core/validation/validation.go: `ValidatePodSpec`
//! in its order — containers, init containers, ephemeral containers, restart policy, host
//! aliases —, `validateContainers`, `validateInitContainers` with
//! `validateInitContainerRestartPolicy`, `validateEphemeralContainers`,
//! `validateProbe`/`validateStartupProbe`, `ValidateHostAliases`, `ValidateSecret`;
//! `ValidatePodCreate`, `ValidatePodUpdate` and `ValidatePodEphemeralContainersUpdate` as
//! at 000f26050b9be6fb3d79fae95e06b47fc96128cd;
//! staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go for the DNS-1123, env
//! name, config key and IP messages). Errors come back as one 422 `Invalid` whose message is
//! the aggregate (`[a, b]` when several) and whose causes are each field error.

use serde_json::{Value, json};

use super::api::{ApiError, ResourceType};

/// One field error: the path, the cause's reason and its message (`Invalid value: ...`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldError {
    pub field: String,
    pub reason: &'static str,
    pub message: String,
}

fn quoted(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn invalid(field: &str, value: &Value, detail: &str) -> FieldError {
    FieldError {
        field: field.to_string(),
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {}: {detail}", quoted(value)),
    }
}

fn required(field: &str, detail: &str) -> FieldError {
    FieldError {
        field: field.to_string(),
        reason: "FieldValueRequired",
        message: if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        },
    }
}

fn forbidden(field: &str, detail: &str) -> FieldError {
    FieldError {
        field: field.to_string(),
        reason: "FieldValueForbidden",
        message: format!("Forbidden: {detail}"),
    }
}

fn duplicate(field: &str, value: &Value) -> FieldError {
    FieldError {
        field: field.to_string(),
        reason: "FieldValueDuplicate",
        message: format!("Duplicate value: {}", quoted(value)),
    }
}

fn not_found(field: &str, value: &Value) -> FieldError {
    FieldError {
        field: field.to_string(),
        reason: "FieldValueNotFound",
        message: format!("Not found: {}", quoted(value)),
    }
}

fn not_supported(field: &str, value: &Value, supported: &[&str]) -> FieldError {
    let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    FieldError {
        field: field.to_string(),
        reason: "FieldValueNotSupported",
        message: format!(
            "Unsupported value: {}: supported values: {}",
            quoted(value),
            list.join(", ")
        ),
    }
}

const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const ENV_NAME_MSG: &str = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')";
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
const IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

fn label_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// `IsDNS1123Label`'s messages.
pub(crate) fn dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !label_ok(s) {
        errs.push(LABEL_MSG.to_string());
    }
    errs
}

/// `IsDNS1123Subdomain`'s messages.
pub(crate) fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if !s.split('.').all(label_ok) {
        errs.push(SUBDOMAIN_MSG.to_string());
    }
    errs
}

/// `IsConfigMapKey`'s messages (Secret and ConfigMap data keys).
pub(crate) fn config_key(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        errs.push(CONFIG_KEY_MSG.to_string());
    }
    if s == "." {
        errs.push("must not be '.'".to_string());
    } else if s == ".." {
        errs.push("must not be '..'".to_string());
    } else if s.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

fn env_name(s: &str) -> Vec<String> {
    let ok = !s.is_empty()
        && !s.as_bytes()[0].is_ascii_digit()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Vec::new()
    } else {
        vec![ENV_NAME_MSG.to_string()]
    }
}

fn each(errs: &mut Vec<FieldError>, field: &str, value: &str, msgs: Vec<String>) {
    for m in msgs {
        errs.push(invalid(field, &json!(value), &m));
    }
}

/// `validateProbe` for a probe of a container that may have one.
fn probe(errs: &mut Vec<FieldError>, path: &str, probe: &Value, startup_or_liveness: bool) {
    let Some(p) = probe.as_object() else {
        return;
    };
    let handlers = ["exec", "httpGet", "tcpSocket", "grpc"]
        .iter()
        .filter(|h| p.get(**h).is_some_and(Value::is_object))
        .count();
    match handlers {
        0 => errs.push(required(path, "must specify a handler type")),
        1 => {}
        _ => errs.push(forbidden(path, "may not specify more than 1 handler type")),
    }
    for field in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        if let Some(n) = p.get(field).and_then(Value::as_i64)
            && n < 0
        {
            errs.push(invalid(
                &format!("{path}.{field}"),
                &json!(n),
                "must be greater than or equal to 0",
            ));
        }
    }
    if startup_or_liveness
        && let Some(n) = p.get("successThreshold").and_then(Value::as_i64)
        && n != 1
    {
        errs.push(invalid(
            &format!("{path}.successThreshold"),
            &json!(n),
            "must be 1",
        ));
    }
}

/// What every container kind shares (`validateContainerCommon`, in part).
fn container_common(errs: &mut Vec<FieldError>, path: &str, c: &Value, volumes: &[String]) {
    let name = c["name"].as_str().unwrap_or_default();
    if name.is_empty() {
        errs.push(required(&format!("{path}.name"), ""));
    } else {
        each(errs, &format!("{path}.name"), name, dns1123_label(name));
    }
    if c["image"].as_str().is_none_or(|i| i.trim().is_empty()) {
        errs.push(required(&format!("{path}.image"), ""));
    }
    for (i, e) in c["env"].as_array().into_iter().flatten().enumerate() {
        let epath = format!("{path}.env[{i}]");
        let n = e["name"].as_str().unwrap_or_default();
        if n.is_empty() {
            errs.push(required(&format!("{epath}.name"), ""));
        } else {
            each(errs, &format!("{epath}.name"), n, env_name(n));
        }
        for r in ["secretKeyRef", "configMapKeyRef"] {
            let reference = &e["valueFrom"][r];
            if reference.is_object() {
                let rpath = format!("{epath}.valueFrom.{r}");
                if reference["name"].as_str().is_none_or(str::is_empty) {
                    errs.push(required(&format!("{rpath}.name"), ""));
                }
                match reference["key"].as_str() {
                    None | Some("") => errs.push(required(&format!("{rpath}.key"), "")),
                    Some(k) => each(errs, &format!("{rpath}.key"), k, config_key(k)),
                }
            }
        }
    }
    for (i, vm) in c["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let n = vm["name"].as_str().unwrap_or_default();
        if !volumes.iter().any(|v| v == n) {
            errs.push(not_found(
                &format!("{path}.volumeMounts[{i}].name"),
                &json!(n),
            ));
        }
    }
}

/// The errors of a new pod (`ValidatePodCreate`): its spec's, then `ephemeralContainers`,
/// which only the `ephemeralcontainers` subresource may set.
pub(crate) fn validate_pod(pod: &Value) -> Vec<FieldError> {
    let mut errs = validate_pod_spec(pod);
    if pod["spec"]["ephemeralContainers"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        errs.push(forbidden(
            "spec.ephemeralContainers",
            "cannot be set on create",
        ));
    }
    errs
}

/// The errors of a pod's spec, in `ValidatePodSpec`'s order (the parts modelled).
pub(crate) fn validate_pod_spec(pod: &Value) -> Vec<FieldError> {
    let spec = &pod["spec"];
    let mut errs = Vec::new();
    let volumes: Vec<String> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .collect();
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    if containers.is_empty() {
        errs.push(required("spec.containers", ""));
    }
    let mut names: Vec<String> = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let path = format!("spec.containers[{i}]");
        container_common(&mut errs, &path, c, &volumes);
        let name = c["name"].as_str().unwrap_or_default().to_string();
        if names.contains(&name) {
            errs.push(duplicate(&format!("{path}.name"), &json!(name)));
        } else {
            names.push(name);
        }
        for (field, strict) in [
            ("livenessProbe", true),
            ("readinessProbe", false),
            ("startupProbe", true),
        ] {
            probe(&mut errs, &format!("{path}.{field}"), &c[field], strict);
        }
        if c.get("restartPolicy").is_some_and(|r| !r.is_null()) {
            errs.push(forbidden(
                &format!("{path}.restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    // Init container names must be unique across both lists.
    let mut all = names.clone();
    for (i, c) in spec["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let path = format!("spec.initContainers[{i}]");
        container_common(&mut errs, &path, c, &volumes);
        let restart = &c["restartPolicy"];
        let always = restart == "Always";
        if !restart.is_null() && !always {
            errs.push(not_supported(
                &format!("{path}.restartPolicy"),
                restart,
                &["Always"],
            ));
        }
        let name = c["name"].as_str().unwrap_or_default().to_string();
        if all.contains(&name) {
            errs.push(duplicate(&format!("{path}.name"), &json!(name)));
        } else if !name.is_empty() {
            all.push(name);
        }
        if always {
            for (field, strict) in [
                ("livenessProbe", true),
                ("readinessProbe", false),
                ("startupProbe", true),
            ] {
                probe(&mut errs, &format!("{path}.{field}"), &c[field], strict);
            }
        } else {
            for field in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if c.get(field).is_some_and(|v| !v.is_null()) {
                    errs.push(forbidden(
                        &format!("{path}.{field}"),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
    ephemeral_containers(&mut errs, spec, &volumes, all);
    if let Some(policy) = spec["restartPolicy"].as_str()
        && !matches!(policy, "Always" | "OnFailure" | "Never")
    {
        errs.push(not_supported(
            "spec.restartPolicy",
            &json!(policy),
            &["Always", "OnFailure", "Never"],
        ));
    }
    for (i, alias) in spec["hostAliases"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let path = format!("spec.hostAliases[{i}]");
        let ip = alias["ip"].as_str().unwrap_or_default();
        if ip.is_empty() {
            errs.push(required(&format!("{path}.ip"), ""));
        } else if ip.parse::<std::net::IpAddr>().is_err() {
            errs.push(invalid(&format!("{path}.ip"), &json!(ip), IP_MSG));
        }
        for (j, h) in alias["hostnames"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let h = h.as_str().unwrap_or_default();
            each(
                &mut errs,
                &format!("{path}.hostnames[{j}]"),
                h,
                dns1123_subdomain(h),
            );
        }
    }
    errs
}

/// The fields of `EphemeralContainerCommon` that `allowedEphemeralContainerFields` does not
/// allow, in the struct's field order (which is the order of the errors), with whether
/// the Go field is a struct value (set only when not empty) rather than a pointer or a
/// slice (set when present at all).
const FORBIDDEN_EPHEMERAL_FIELDS: [(&str, bool); 9] = [
    ("ports", false),
    ("resources", true),
    ("resizePolicy", false),
    ("restartPolicy", false),
    ("restartPolicyRules", false),
    ("livenessProbe", false),
    ("readinessProbe", false),
    ("startupProbe", false),
    ("lifecycle", false),
];

/// `validateEphemeralContainers`: what every container is checked for, a name unique
/// across all containers, a `targetContainerName` naming a container or init container,
/// no field outside `allowedEphemeralContainerFields` (ports, resources, probes,
/// lifecycle, restart and resize policies) and no `subPath` or `subPathExpr` mounts
/// ("VolumeMount subpaths have the potential to leak resources ... they're disallowed
/// entirely").
fn ephemeral_containers(
    errs: &mut Vec<FieldError>,
    spec: &Value,
    volumes: &[String],
    mut all: Vec<String>,
) {
    let others = all.clone();
    for (i, c) in spec["ephemeralContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let path = format!("spec.ephemeralContainers[{i}]");
        container_common(errs, &path, c, volumes);
        let name = c["name"].as_str().unwrap_or_default().to_string();
        if all.contains(&name) {
            errs.push(duplicate(&format!("{path}.name"), &json!(name)));
        } else {
            all.push(name);
        }
        if let Some(target) = c["targetContainerName"].as_str()
            && !target.is_empty()
            && !others.iter().any(|o| o == target)
        {
            errs.push(not_found(
                &format!("{path}.targetContainerName"),
                &json!(target),
            ));
        }
        for (field, struct_value) in FORBIDDEN_EPHEMERAL_FIELDS {
            let set = match c.get(field) {
                None | Some(Value::Null) => false,
                Some(Value::Object(m)) if struct_value => m
                    .values()
                    .any(|v| !v.is_null() && v != &json!({}) && v != &json!([])),
                Some(_) => true,
            };
            if set {
                errs.push(forbidden(
                    &format!("{path}.{field}"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
        for (j, vm) in c["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            for field in ["subPath", "subPathExpr"] {
                if vm[field].as_str().is_some_and(|s| !s.is_empty()) {
                    errs.push(forbidden(
                        &format!("{path}.volumeMounts[{j}].{field}"),
                        "cannot be set for an Ephemeral Container",
                    ));
                }
            }
        }
    }
}

/// The fields of a pod's spec a plain update may change (`updatablePodSpecFields`).
const UPDATABLE_POD_SPEC_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// A rendering of what changed between two values, in the spirit of the `cmp.Diff` the
/// API server appends to its "may not change" errors (whose exact text go-cmp keeps
/// deliberately unstable): a `-` and a `+` line per changed field, Go-style field names.
fn diff(type_name: &str, old: &Value, new: &Value) -> String {
    let empty = serde_json::Map::new();
    let (o, n) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    let go = |k: &str| {
        let mut c = k.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    };
    let show = |v: Option<&Value>| v.map_or("nil".to_string(), Value::to_string);
    let mut out = format!(
        "  {type_name}{{
"
    );
    let mut same = 0;
    for k in keys {
        if o.get(k) == n.get(k) {
            same += 1;
            continue;
        }
        out.push_str(&format!("- \t{}: {},\n", go(k), show(o.get(k))));
        out.push_str(&format!("+ \t{}: {},\n", go(k), show(n.get(k))));
    }
    if same > 0 {
        out.push_str(&format!("  \t... // {same} identical fields\n"));
    }
    out.push_str("  }\n");
    out
}

/// The errors of a pod written through the `ephemeralcontainers` subresource
/// (`ValidatePodEphemeralContainersUpdate`): the whole new spec as on create, then each
/// existing ephemeral container must still be there, unchanged ("Order isn't preserved by
/// patch, so check each individually").
pub(crate) fn validate_ephemeral_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = validate_pod_spec(new);
    let fresh = new["spec"]["ephemeralContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for o in old["spec"]["ephemeralContainers"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = o["name"].as_str().unwrap_or_default();
        match fresh.iter().find(|n| n["name"] == name) {
            None => errs.push(forbidden(
                "spec.ephemeralContainers",
                &format!("existing ephemeral containers {name:?} may not be removed\n"),
            )),
            Some(n) if n != o => errs.push(forbidden(
                "spec.ephemeralContainers",
                &format!(
                    "existing ephemeral containers {name:?} may not be changed\n{}",
                    diff("core.EphemeralContainer", o, n)
                ),
            )),
            Some(_) => {}
        }
    }
    errs
}

/// The errors of a plain pod update (`ValidatePodUpdate`, in part): the new spec as on
/// create, no container added or removed, and no change to the spec but the updatable
/// fields (the containers' and init containers' images, `activeDeadlineSeconds`,
/// `tolerations`, `schedulingGates`); `ephemeralContainers` among what may not change,
/// as only the subresource writes them.
pub(crate) fn validate_pod_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = validate_pod_spec(new);
    for list in ["containers", "initContainers"] {
        let count = |p: &Value| p["spec"][list].as_array().map_or(0, Vec::len);
        if count(new) != count(old) {
            errs.push(forbidden(
                &format!("spec.{list}"),
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
    }
    if new["spec"] == old["spec"] {
        return errs;
    }
    let mut munged = new["spec"].clone();
    for list in ["containers", "initContainers"] {
        if let Some(cs) = munged[list].as_array_mut() {
            for (i, c) in cs.iter_mut().enumerate() {
                c["image"] = old["spec"][list][i]["image"].clone();
            }
        }
    }
    if let Some(m) = munged.as_object_mut() {
        for field in ["activeDeadlineSeconds", "tolerations", "schedulingGates"] {
            match old["spec"].get(field) {
                Some(v) => {
                    m.insert(field.to_string(), v.clone());
                }
                None => {
                    m.remove(field);
                }
            }
        }
    }
    if munged != old["spec"] {
        errs.push(forbidden(
            "spec",
            &format!(
                "pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}\n{}",
                diff("core.PodSpec", &old["spec"], &munged)
            ),
        ));
    }
    errs
}

/// Go's `json.Unmarshal` error text (into a `map[string]interface{}`) for the common cases.
fn go_json_error(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim_start();
    match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Object(_) | Value::Null) => return None,
        Ok(v) => {
            let kind = match v {
                Value::Bool(_) => "bool",
                Value::Number(_) => "number",
                Value::String(_) => "string",
                _ => "array",
            };
            return Some(format!(
                "json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
            ));
        }
        Err(e) if e.is_eof() => return Some("unexpected end of JSON input".to_string()),
        Err(_) => {}
    }
    let first = trimmed.chars().next()?;
    for literal in ["null", "true", "false"] {
        if literal.starts_with(first) {
            for (got, want) in trimmed.chars().zip(literal.chars()).skip(1) {
                if got != want {
                    return Some(format!(
                        "invalid character '{got}' in literal {literal} (expecting '{want}')"
                    ));
                }
            }
        }
    }
    if matches!(first, '{' | '[' | '"' | '-' | '0'..='9') {
        return Some(format!(
            "invalid JSON: {}",
            serde_json::from_str::<Value>(trimmed).err()?
        ));
    }
    Some(format!(
        "invalid character '{first}' looking for beginning of value"
    ))
}

/// The errors of a Secret (after `stringData` was merged into `data`).
pub(crate) fn validate_secret(secret: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let data = secret["data"].as_object().cloned().unwrap_or_default();
    let mut keys: Vec<&String> = data.keys().collect();
    keys.sort();
    for k in keys {
        for m in config_key(k) {
            errs.push(invalid(&format!("data[{k}]"), &json!(k), &m));
        }
    }
    let decode = |k: &str| -> Option<Vec<u8>> {
        use base64::Engine as _;
        data.get(k).map(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or_default())
                .unwrap_or_default()
        })
    };
    for (kind, key) in [
        ("kubernetes.io/dockerconfigjson", ".dockerconfigjson"),
        ("kubernetes.io/dockercfg", ".dockercfg"),
    ] {
        if secret["type"] != kind {
            continue;
        }
        match decode(key) {
            None => errs.push(required(&format!("data[{key}]"), "")),
            Some(bytes) => {
                if let Some(e) = go_json_error(&bytes) {
                    errs.push(invalid(
                        &format!("data[{key}]"),
                        &json!("<secret contents redacted>"),
                        &e,
                    ));
                }
            }
        }
    }
    errs
}

/// A 422 `Invalid` for `errors`, as the API server writes it.
pub(crate) fn invalid_error(rt: &ResourceType, name: &str, errors: &[FieldError]) -> ApiError {
    let one = |e: &FieldError| format!("{}: {}", e.field, e.message);
    let aggregate = if errors.len() == 1 {
        one(&errors[0])
    } else {
        format!(
            "[{}]",
            errors.iter().map(one).collect::<Vec<_>>().join(", ")
        )
    };
    let mut e = ApiError::invalid(rt, name, "", "");
    e.message = format!("{} \"{name}\" is invalid: {aggregate}", rt.qualified_kind());
    e.details["causes"] = json!(
        errors
            .iter()
            .map(|e| json!({"reason": e.reason, "message": e.message, "field": e.field}))
            .collect::<Vec<_>>()
    );
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_rules_and_host_aliases_read_as_the_api_server_writes_them() {
        let pod = json!({"spec": {
            "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["my_db"]}],
            "initContainers": [
                {"name": "steps", "image": "x"},
                {"name": "svc", "image": "x", "restartPolicy": "OnFailure",
                 "startupProbe": {"exec": {"command": ["true"]}}},
            ],
            "containers": [{"name": "steps", "image": "x"}]}});
        let errs: Vec<String> = validate_pod(&pod)
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        assert_eq!(
            errs,
            [
                "spec.initContainers[0].name: Duplicate value: \"steps\"",
                "spec.initContainers[1].restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"",
                "spec.initContainers[1].startupProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
                &format!(
                    "spec.hostAliases[0].hostnames[0]: Invalid value: \"my_db\": {SUBDOMAIN_MSG}"
                ),
            ]
        );
    }

    #[test]
    fn docker_config_secrets_need_their_key_and_json() {
        let missing = json!({"type": "kubernetes.io/dockerconfigjson", "data": {}});
        assert_eq!(validate_secret(&missing)[0].message, "Required value");
        let bad = json!({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "bm90IGpzb24="}});
        assert_eq!(
            validate_secret(&bad)[0].message,
            "Invalid value: \"<secret contents redacted>\": invalid character 'o' in literal null (expecting 'u')"
        );
        let key = json!({"type": "Opaque", "data": {"a b": ""}});
        assert_eq!(validate_secret(&key)[0].field, "data[a b]");
    }
}
