//! GitHub's REST API for self-hosted runners, as runner pool mode calls it, under the GitHub
//! Enterprise Server base `/api/v3`: `POST /{repos/O/R | orgs/O}/actions/runners/generate-jitconfig`
//! and `GET …/actions/runners` (paged, with a `Link` header); `DELETE …/actions/runners/{id}`
//! and the runner groups are in `admin`. Callers show `Authorization: Bearer <token>` or
//! `token <token>` with a PAT the test added (for one repository or organisation) or an
//! installation token the fake issued (`apps`). A JIT runner is real: its key is new, its
//! client is registered with the token endpoint, and its `encoded_jit_config` holds the three
//! files in the service's form (PascalCase keys, every value a string; actions/runner
//! `src/Runner.Listener/Runner.cs` writes them out as they come), so the runner can buy
//! access tokens and open a broker session. Until deleted it is in the list, with the labels
//! `self-hosted`, `Linux` and `X64` before the requested ones. Refusals carry GitHub's
//! bodies: 401 `Bad credentials`, 403, 404 `Not Found`, 409 `Already exists`, 422.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hr_github::RunnerKey;
use serde_json::{Value, json};

use super::{FakeGitHub, OAuthClient, RegisteredRunner, Shared, credential, lock};

/// A token for the REST API: a PAT or an installation token.
#[derive(Debug, Clone)]
pub(super) struct ApiToken {
    /// The repository or organisation URL it may manage, e.g. `{fake}/octo/hello`.
    pub(super) scope: String,
    pub(super) expires: Option<SystemTime>,
}

pub(super) fn message(status: StatusCode, text: &str) -> Response {
    (
        status,
        Json(json!({"message": text, "documentation_url": "https://docs.github.com/rest"})),
    )
        .into_response()
}

/// The scope of the REST API token in `headers`, when the fake issued it and it is valid.
pub(super) fn api_scope(shared: &Shared, headers: &HeaderMap) -> Option<String> {
    let token = credential(headers, "Bearer").or_else(|| credential(headers, "token"))?;
    let state = lock(&shared.state);
    let known = state.api_tokens.get(&token)?;
    let live = known.expires.is_none_or(|e| e > SystemTime::now());
    live.then(|| known.scope.clone())
}

/// Whether the route's owner parameters (`owner`, `repo` or `org`) are `scope`.
pub(super) fn in_scope(shared: &Shared, scope: &str, owner: &[(String, String)]) -> bool {
    let wanted: Vec<&str> = owner.iter().map(|(_, v)| v.as_str()).collect();
    let prefix = format!("http://{}/", shared.addr);
    scope.strip_prefix(&prefix) == Some(wanted.join("/").as_str())
}

/// The runner as the REST API shows it.
fn runner_json(runner: &RegisteredRunner, online: bool, busy: bool) -> Value {
    let system = [
        "self-hosted",
        "linux",
        "x64",
        "arm64",
        "arm",
        "x86",
        "windows",
        "macos",
    ];
    let labels: Vec<Value> = runner
        .labels
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let kind = if system.contains(&name.to_ascii_lowercase().as_str()) {
                "read-only"
            } else {
                "custom"
            };
            json!({"id": i + 1, "name": name, "type": kind})
        })
        .collect();
    json!({
        "id": runner.id,
        "name": runner.name,
        "os": "Linux",
        "status": if online { "online" } else { "offline" },
        "busy": busy,
        "ephemeral": runner.ephemeral,
        "runner_group_id": runner.group_id,
        "labels": labels,
    })
}

/// The fake's model of the labels GitHub gives a JIT runner: `self-hosted`, `Linux` and
/// `X64` (it cannot know the host), then the requested ones, without repeats in any case.
fn jit_runner_labels(requested: &[String]) -> Vec<String> {
    let mut labels: Vec<String> = vec!["self-hosted".into(), "Linux".into(), "X64".into()];
    for label in requested {
        if !labels.iter().any(|l| l.eq_ignore_ascii_case(label)) {
            labels.push(label.clone());
        }
    }
    labels
}

pub(super) async fn generate_jitconfig(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
    Json(body): Json<Value>,
) -> Response {
    let Some(scope) = api_scope(&shared, &headers) else {
        return message(StatusCode::UNAUTHORIZED, "Bad credentials");
    };
    if !in_scope(&shared, &scope, &path) {
        return message(StatusCode::NOT_FOUND, "Not Found");
    }
    let name = body["name"].as_str().unwrap_or_default().to_string();
    if name.is_empty() {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid input: object is missing required key: name",
        );
    }
    let Some(group_id) = body["runner_group_id"].as_u64() else {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid input: object is missing required key: runner_group_id",
        );
    };
    let labels: Option<Vec<String>> = body["labels"].as_array().and_then(|a| {
        a.iter()
            .map(|l| l.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
    });
    let Some(labels) = labels.filter(|l| (1..=100).contains(&l.len())) else {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid input: labels must be an array of 1 to 100 strings",
        );
    };
    {
        let state = lock(&shared.state);
        match state.runner_groups.iter().find(|g| g["id"] == group_id) {
            None => return message(StatusCode::NOT_FOUND, "Not Found"),
            Some(g) if g["is_hosted"] == true => {
                return message(
                    StatusCode::FORBIDDEN,
                    "Resource not accessible by integration",
                );
            }
            Some(_) => {}
        }
        if state
            .runners
            .iter()
            .any(|r| r.scope == scope && r.name.eq_ignore_ascii_case(&name))
        {
            return message(StatusCode::CONFLICT, "Already exists");
        }
    }
    // GitHub makes a key per runner; the fake makes one, once, and gives it to every JIT
    // runner (a runner cannot tell, and a 100-runner pool test stays fast in a debug
    // build). Made off the server's workers: it takes a while.
    static KEY: std::sync::OnceLock<RunnerKey> = std::sync::OnceLock::new();
    let key = match KEY.get() {
        Some(key) => key.clone(),
        None => match tokio::task::spawn_blocking(RunnerKey::generate).await {
            Ok(Ok(key)) => KEY.get_or_init(|| key).clone(),
            _ => return message(StatusCode::INTERNAL_SERVER_ERROR, "no key"),
        },
    };
    let work_folder = body["work_folder"].as_str().unwrap_or("_work").to_string();
    let mut state = lock(&shared.state);
    state.next_runner += 1;
    let id = state.next_runner;
    let client_id = format!("00000000-0000-4000-9000-{id:012}");
    state.clients.insert(
        client_id.clone(),
        OAuthClient {
            modulus: key.modulus(),
            exponent: key.exponent(),
        },
    );
    let runner = RegisteredRunner {
        id,
        name: name.clone(),
        labels: jit_runner_labels(&labels),
        group_id,
        ephemeral: true,
        version: String::new(),
        client_id: client_id.clone(),
        scope,
    };
    state.runners.push(runner.clone());
    let group_name = state
        .runner_groups
        .iter()
        .find(|g| g["id"] == group_id)
        .map(|g| g["name"].clone())
        .unwrap_or(Value::Null);
    let addr = shared.addr;
    let dot_runner = json!({
        "AgentId": id.to_string(),
        "AgentName": name,
        "PoolId": group_id.to_string(),
        "PoolName": group_name,
        "DisableUpdate": "True",
        "Ephemeral": "True",
        "ServerUrl": format!("http://{addr}/pipelines/tenant/"),
        "ServerUrlV2": format!("http://{addr}/broker/"),
        "UseV2Flow": "True",
        "GitHubUrl": "",
        "WorkFolder": work_folder,
    });
    let credentials = json!({
        "Scheme": "OAuth",
        "Data": {
            "ClientId": client_id,
            "AuthorizationUrl": format!("http://{addr}/oauth/token"),
            "RequireFipsCryptography": "True",
        },
    });
    let files = json!({
        ".runner": STANDARD.encode(dot_runner.to_string()),
        ".credentials": STANDARD.encode(credentials.to_string()),
        ".credentials_rsaparams": STANDARD.encode(key.to_rsa_parameters().to_string()),
    });
    (
        StatusCode::CREATED,
        Json(json!({
            "runner": runner_json(&runner, false, false),
            "encoded_jit_config": STANDARD.encode(files.to_string()),
        })),
    )
        .into_response()
}

pub(super) async fn list_runners(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let Some(scope) = api_scope(&shared, &headers) else {
        return message(StatusCode::UNAUTHORIZED, "Bad credentials");
    };
    if !in_scope(&shared, &scope, &path) {
        return message(StatusCode::NOT_FOUND, "Not Found");
    }
    let number = |k: &str, default: usize| {
        query
            .get(k)
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(default)
    };
    let state = lock(&shared.state);
    let per_page = number("per_page", 30).min(100).min(state.max_per_page);
    let page = number("page", 1);
    let all: Vec<Value> = state
        .runners
        .iter()
        .filter(|r| r.scope == scope)
        .map(|r| {
            let online = state.sessions.contains_key(&r.client_id);
            let busy = state
                .jobs
                .iter()
                .any(|j| j.client_id == r.client_id && j.acquired && j.completion.is_none());
            runner_json(r, online, busy)
        })
        .collect();
    let last = all.len().div_ceil(per_page).max(1);
    let items: Vec<Value> = all
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect();
    let base = format!("http://{}/api/v3/{}/actions/runners", shared.addr, {
        let parts: Vec<&str> = path.iter().map(|(_, v)| v.as_str()).collect();
        if parts.len() == 2 {
            format!("repos/{}", parts.join("/"))
        } else {
            format!("orgs/{}", parts.join("/"))
        }
    });
    let link =
        |p: usize, rel: &str| format!("<{base}?per_page={per_page}&page={p}>; rel=\"{rel}\"");
    let mut links = Vec::new();
    if page > 1 {
        links.push(link(page - 1, "prev"));
    }
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    if page > 1 {
        links.push(link(1, "first"));
    }
    let mut response = Json(json!({"total_count": all.len(), "runners": items})).into_response();
    if let Some(value) = Some(links.join(", "))
        .filter(|l| !l.is_empty())
        .and_then(|l| l.parse().ok())
    {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}

impl FakeGitHub {
    /// A personal access token for the REST API of `url` (a repository or organisation,
    /// e.g. `{fake}/octo/hello`), as `Authorization: Bearer` or `token` shows it.
    pub fn add_pat(&self, token: &str, url: &str) {
        lock(&self.shared.state).api_tokens.insert(
            token.to_string(),
            ApiToken {
                scope: url.to_string(),
                expires: None,
            },
        );
    }

    /// One page of the runner list holds at most `n` runners, whatever `per_page` asks.
    pub fn set_max_per_page(&self, n: usize) {
        lock(&self.shared.state).max_per_page = n.max(1);
    }
}
