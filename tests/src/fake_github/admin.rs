//! Registration with a registration token (`RemoteAuth`), as the runner-admin flow of
//! actions/runner calls it (`ConfigurationManager.cs`, `RunnerDotcomServer.cs`), under the
//! GitHub Enterprise Server API base `/api/v3`:
//! `POST /actions/runner-registration`, `GET /{repos/O/R | orgs/O}/actions/runner-groups`,
//! `POST /actions/runners/register`. A registered runner's public key (the .NET XML of its
//! RSA key) becomes an OAuth client of the token endpoint. Unknown tokens get GitHub's
//! `401 {"message":"Bad credentials"}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::runners::{api_scope, in_scope};
use super::{OAuthClient, RegisteredRunner, Shared, credential, lock};

fn bad_credentials() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})),
    )
        .into_response()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})),
    )
        .into_response()
}

fn unprocessable(message: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"message": message, "documentation_url": "https://docs.github.com/rest"})),
    )
        .into_response()
}

/// The registration token of `RemoteAuth <token>`, when the fake issued it; its scope URL.
fn token_scope(shared: &Shared, headers: &HeaderMap) -> Option<String> {
    let token = credential(headers, "RemoteAuth")?;
    lock(&shared.state).registration_tokens.get(&token).cloned()
}

/// The scope of a registration token or of a REST API token (PAT, installation token).
fn any_token_scope(shared: &Shared, headers: &HeaderMap) -> Option<String> {
    token_scope(shared, headers).or_else(|| api_scope(shared, headers))
}

pub(super) async fn runner_registration(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let Some(scope) = token_scope(&shared, &headers) else {
        return bad_credentials();
    };
    if body["url"].as_str() != Some(scope.as_str()) {
        return bad_credentials();
    }
    if !matches!(body["runner_event"].as_str(), Some("register" | "remove")) {
        return unprocessable("runner_event must be register or remove");
    }
    let v2 = lock(&shared.state).use_v2_flow;
    Json(json!({
        "url": format!("http://{}/pipelines/tenant/", shared.addr),
        "token_schema": "OAuthAccessToken",
        "token": "fake-github-tenant-token",
        "use_v2_flow": v2,
    }))
    .into_response()
}

pub(super) async fn runner_groups(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
) -> Response {
    let Some(scope) = any_token_scope(&shared, &headers) else {
        return bad_credentials();
    };
    // The token registers for one repository or organisation: its groups only.
    if !in_scope(&shared, &scope, &path) {
        return not_found();
    }
    let groups = lock(&shared.state).runner_groups.clone();
    Json(json!({"total_count": groups.len(), "runner_groups": groups})).into_response()
}

/// Modulus and exponent from `<RSAKeyValue><Modulus>…</Modulus><Exponent>…</Exponent></RSAKeyValue>`.
fn xml_key(xml: &str) -> Option<OAuthClient> {
    let field = |name: &str| {
        let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
        let end = xml[start..].find(&format!("</{name}>"))? + start;
        STANDARD.decode(&xml[start..end]).ok()
    };
    xml.starts_with("<RSAKeyValue>").then_some(())?;
    Some(OAuthClient {
        modulus: field("Modulus")?,
        exponent: field("Exponent")?,
    })
}

pub(super) async fn register(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let Some(scope) = token_scope(&shared, &headers) else {
        return bad_credentials();
    };
    if body["url"].as_str() != Some(scope.as_str()) {
        return bad_credentials();
    }
    let Some(key) = body["public_key"].as_str().and_then(xml_key) else {
        return unprocessable("public_key is not an RSAKeyValue");
    };
    let name = body["name"].as_str().unwrap_or_default().to_string();
    if name.is_empty() {
        return unprocessable("name is required");
    }
    let labels: Vec<String> = body["labels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["name"].as_str().map(str::to_string))
        .collect();
    let mut state = lock(&shared.state);
    let Some(group) = body["group_id"]
        .as_u64()
        .filter(|id| state.runner_groups.iter().any(|g| g["id"] == *id))
    else {
        return unprocessable("group_id is not a runner group of this scope");
    };
    state.next_runner += 1;
    let id = state.next_runner;
    let client_id = format!("00000000-0000-4000-8000-{id:012}");
    state.clients.insert(client_id.clone(), key);
    state.runners.push(RegisteredRunner {
        id,
        name: name.clone(),
        labels,
        group_id: group,
        ephemeral: body["ephemeral"].as_bool().unwrap_or(false),
        version: body["version"].as_str().unwrap_or_default().to_string(),
        client_id: client_id.clone(),
        scope,
    });
    Json(json!({
        "id": id,
        "name": name,
        "authorization": {
            "authorization_url": format!("http://{}/oauth/token", shared.addr),
            "server_url": format!("http://{}/broker/", shared.addr),
            "client_id": client_id,
        },
    }))
    .into_response()
}

/// `DELETE /{repos/O/R | orgs/O}/actions/runners/{id}` with a registration token (as
/// `config.sh remove`) or a REST API token: 204, or 404 for a runner not in the scope.
pub(super) async fn delete_runner(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
) -> Response {
    let Some(scope) = any_token_scope(&shared, &headers) else {
        return bad_credentials();
    };
    let (id, owner) = path.split_last().expect("the route has parameters");
    if !in_scope(&shared, &scope, owner) {
        return not_found();
    }
    let mut state = lock(&shared.state);
    let before = state.runners.len();
    state
        .runners
        .retain(|r| r.id.to_string() != id.1 || r.scope != scope);
    if state.runners.len() == before {
        return not_found();
    }
    StatusCode::NO_CONTENT.into_response()
}
