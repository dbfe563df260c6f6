//! The HTTP surface: every request is recorded, checked against the injected API faults and
//! RBAC denials, then routed by its path (`/api/v1/...`, `/apis/<group>/<version>/...`) to
//! discovery, reads (get, list, watch, logs) or the writes in `verbs` (`ephemeral` for
//! `pods/ephemeralcontainers`).

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::api::{ApiError, RESOURCES, ResourceType, resource};
use super::store::{FieldSelector, Key, LabelSelector};
use super::{RecordedRequest, Shared, lock, verbs, watch};

/// What a path names.
#[derive(Debug)]
pub(crate) struct Target {
    pub rt: &'static ResourceType,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
}

impl Target {
    pub fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or_default()
    }

    pub fn key(&self) -> Key {
        Key::new(self.rt, self.ns(), self.name.as_deref().unwrap_or_default())
    }
}

/// A request in the form the verbs work on.
#[derive(Debug)]
pub(crate) struct Call {
    pub method: Method,
    pub query: Vec<(String, String)>,
    pub content_type: String,
    pub body: Option<Value>,
    pub body_len: usize,
}

impl Call {
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.q(key), Some("true" | "1"))
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/attach",
            axum::routing::any(super::attach::handle),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/exec",
            axum::routing::any(super::exec::handle),
        )
        .fallback(handle)
        .layer(DefaultBodyLimit::max(64 << 20))
        .with_state(shared)
}

/// The namespaces every cluster has.
pub(crate) fn seed_namespaces(shared: &Shared) {
    for name in ["default", "kube-system"] {
        let ns = json!({"metadata": {"name": name}});
        let _ = shared.write(|s| s.create(namespaces(), "", verbs::default_namespace(ns)));
    }
}

pub(crate) fn namespaces() -> &'static ResourceType {
    &RESOURCES[0]
}

pub(crate) fn json_response(code: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub(crate) fn error_response(e: &ApiError) -> Response {
    json_response(e.code, &e.status())
}

fn parse_body(content_type: &str, bytes: &[u8]) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        return Some(v);
    }
    if content_type.contains("yaml") {
        let text = std::str::from_utf8(bytes).ok()?;
        return serde_saphyr::from_str::<Value>(text).ok();
    }
    None
}

/// Records one request for [`super::FakeKube::requests`].
pub(crate) fn record(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: Option<Value>,
) {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    lock(&shared.requests).push(RecordedRequest {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_vec(),
        content_type,
        body,
    });
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let parsed = parse_body(&content_type, &body);
    record(&shared, &method, &path, &query, &headers, parsed.clone());
    if lock(&shared.faults).take_api_error(method.as_str(), &path) {
        return error_response(&ApiError::internal(format!(
            "injected fault for {method} {path}"
        )));
    }
    let call = Call {
        method,
        query,
        content_type,
        body: parsed,
        body_len: body.len(),
    };
    match route(&shared, &path, call).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

async fn route(shared: &Arc<Shared>, path: &str, call: Call) -> Result<Response, ApiError> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return Ok(json_response(200, &version_info(shared))),
        ["api"] => {
            return Ok(json_response(
                200,
                &json!({"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": shared.addr.to_string()}]}),
            ));
        }
        ["apis"] => return Ok(json_response(200, &group_list())),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(not_served(path)),
    };
    if rest.is_empty() {
        if !RESOURCES
            .iter()
            .any(|r| r.group == group && r.version == version)
        {
            return Err(not_served(path));
        }
        return Ok(json_response(200, &resource_list(group, version)));
    }
    let target = parse_target(group, version, rest).ok_or_else(|| not_served(path))?;
    authorize(shared, &target, &call)?;
    match call.method {
        Method::GET => match (&target.name, target.sub.as_deref()) {
            (None, _) if call.flag("watch") => watch::serve(shared, &target, &call),
            (None, _) => list(shared, &target, &call),
            (Some(_), None | Some("status")) => get(shared, &target),
            (Some(_), Some("ephemeralcontainers")) if target.rt.plural == "pods" => {
                get(shared, &target)
            }
            (Some(_), Some("log")) if target.rt.plural == "pods" => {
                super::logs::serve(shared, &target, &call)
            }
            _ => Err(not_served(path)),
        },
        Method::PUT | Method::PATCH
            if target.rt.plural == "pods"
                && target.name.is_some()
                && target.sub.as_deref() == Some("ephemeralcontainers") =>
        {
            super::ephemeral::write(shared, &target, &call)
        }
        Method::POST if target.name.is_none() => verbs::create(shared, &target, &call),
        Method::PUT if target.name.is_some() => verbs::replace(shared, &target, &call),
        Method::PATCH if target.name.is_some() => verbs::patch(shared, &target, &call),
        Method::DELETE if target.name.is_some() => verbs::delete(shared, &target, &call),
        Method::DELETE => verbs::delete_collection(shared, &target, &call),
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({} {path})",
            call.method
        ))),
    }
}

fn not_served(path: &str) -> ApiError {
    ApiError {
        code: 404,
        reason: "NotFound",
        message: format!("the server could not find the requested resource ({path})"),
        details: Value::Null,
    }
}

fn parse_target(group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let t = |rt, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>| Target {
        rt,
        namespace: namespace.map(str::to_string),
        name: name.map(str::to_string),
        sub: sub.map(str::to_string),
    };
    match rest {
        ["namespaces", ns, plural, more @ ..]
            if resource(group, version, plural).is_some_and(|r| r.namespaced) =>
        {
            let rt = resource(group, version, plural)?;
            match more {
                [] => Some(t(rt, Some(ns), None, None)),
                [name] => Some(t(rt, Some(ns), Some(name), None)),
                [name, sub] => Some(t(rt, Some(ns), Some(name), Some(sub))),
                _ => None,
            }
        }
        [plural, more @ ..] => {
            let rt = resource(group, version, plural)?;
            match more {
                [] => Some(t(rt, None, None, None)),
                [name] if !rt.namespaced => Some(t(rt, None, Some(name), None)),
                [name, sub] if !rt.namespaced => Some(t(rt, None, Some(name), Some(sub))),
                _ => None,
            }
        }
        [] => None,
    }
}

/// RBAC: 403 when a deny rule matches the request's verb and resource.
fn authorize(shared: &Shared, target: &Target, call: &Call) -> Result<(), ApiError> {
    let verb = match (&call.method, &target.name) {
        (&Method::GET, None) if call.flag("watch") => "watch",
        (&Method::GET, None) => "list",
        (&Method::GET, Some(_)) => "get",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, None) => "deletecollection",
        (&Method::DELETE, Some(_)) => "delete",
        _ => return Ok(()),
    };
    let resource = match &target.sub {
        Some(sub) => format!("{}/{sub}", target.rt.plural),
        None => target.rt.plural.to_string(),
    };
    if lock(&shared.faults).denied(verb, &resource) {
        return Err(ApiError::rbac(
            verb,
            &resource,
            target.rt.group,
            target.namespace.as_deref(),
        ));
    }
    Ok(())
}

fn get(shared: &Shared, target: &Target) -> Result<Response, ApiError> {
    let name = target.name.as_deref().unwrap_or_default();
    shared
        .read(|s| s.get(&target.key()).cloned())
        .map(|o| json_response(200, &o))
        .ok_or_else(|| ApiError::not_found(target.rt, name))
}

/// Parses `labelSelector` and `fieldSelector` into one predicate.
pub(crate) fn selector(call: &Call) -> Result<impl Fn(&Value) -> bool + Send + 'static, ApiError> {
    let labels = LabelSelector::parse(call.q("labelSelector").unwrap_or_default())?;
    let fields = FieldSelector::parse(call.q("fieldSelector").unwrap_or_default())?;
    Ok(move |o: &Value| labels.matches(o) && fields.matches(o))
}

fn list(shared: &Shared, target: &Target, call: &Call) -> Result<Response, ApiError> {
    let matches = selector(call)?;
    let (items, rv) = shared.read(|s| {
        (
            s.list(target.rt.plural, target.namespace.as_deref()),
            s.resource_version(),
        )
    });
    let mut items: Vec<Value> = items.into_iter().filter(|o| matches(o)).collect();
    let start: usize = call
        .q("continue")
        .map(|c| {
            c.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid continue token {c:?}")))
        })
        .transpose()?
        .unwrap_or(0);
    items = items.split_off(start.min(items.len()));
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(limit) = call
        .q("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        && items.len() > limit
    {
        let remaining = items.len() - limit;
        items.truncate(limit);
        meta["continue"] = json!((start + limit).to_string());
        meta["remainingItemCount"] = json!(remaining);
    }
    for item in &mut items {
        if let Some(m) = item.as_object_mut() {
            m.remove("kind");
            m.remove("apiVersion");
        }
    }
    Ok(json_response(
        200,
        &json!({
            "kind": format!("{}List", target.rt.kind),
            "apiVersion": target.rt.api_version(),
            "metadata": meta,
            "items": items,
        }),
    ))
}

fn version_info(shared: &Shared) -> Value {
    let git = shared.options.version.clone();
    let mut parts = git.trim_start_matches('v').split('.');
    let major = parts.next().unwrap_or("1").to_string();
    let minor = parts.next().unwrap_or("31").to_string();
    json!({
        "major": major, "minor": minor, "gitVersion": git,
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2024-08-13T00:00:00Z", "goVersion": "go1.22.5", "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn group_list() -> Value {
    let mut groups: Vec<&str> = RESOURCES
        .iter()
        .map(|r| r.group)
        .filter(|g| !g.is_empty())
        .collect();
    groups.dedup();
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|g| {
            let gv = json!({"groupVersion": format!("{g}/v1"), "version": "v1"});
            json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resource_list(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let verbs: &[&str] = if r.plural == "selfsubjectaccessreviews" {
            &["create"]
        } else {
            &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]
        };
        let mut entry = json!({
            "name": r.plural, "singularName": r.kind.to_lowercase(), "namespaced": r.namespaced,
            "kind": r.kind, "verbs": verbs,
        });
        let short: &[&str] = match r.plural {
            "deployments" => &["deploy"],
            "replicasets" => &["rs"],
            "statefulsets" => &["sts"],
            "daemonsets" => &["ds"],
            "cronjobs" => &["cj"],
            "replicationcontrollers" => &["rc"],
            _ => &[],
        };
        if !short.is_empty() {
            entry["shortNames"] = json!(short);
            entry["categories"] = json!(["all"]);
        }
        resources.push(entry);
        if r.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced,
                "kind": r.kind, "verbs": ["get", "patch", "update"],
            }));
        }
        if r.plural == "pods" {
            for (sub, verbs) in [
                ("log", vec!["get"]),
                ("attach", vec!["create", "get"]),
                ("exec", vec!["create", "get"]),
                ("ephemeralcontainers", vec!["get", "patch", "update"]),
            ] {
                resources.push(json!({
                    "name": format!("pods/{sub}"), "singularName": "", "namespaced": true,
                    "kind": match sub { "log" | "ephemeralcontainers" => "Pod", "exec" => "PodExecOptions", _ => "PodAttachOptions" }, "verbs": verbs,
                }));
            }
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

/// A streaming body fed from a channel; the sender sees an error when the client goes.
pub(crate) fn streaming(
    content_type: &'static str,
    rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
