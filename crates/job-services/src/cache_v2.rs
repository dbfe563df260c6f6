//! The cache's second protocol: the twirp service
//! `github.actions.results.api.v1.CacheService` under `ACTIONS_RESULTS_URL`, which
//! `@actions/cache` speaks when `ACTIONS_CACHE_SERVICE_V2` is set. JSON as protobuf
//! writes it (field names in proto form, 64-bit integers as strings; either name form and
//! either number form are read). The bearer token is the job's `ACTIONS_RUNTIME_TOKEN`.
//!
//! - `CreateCacheEntry {key, version}`: `{ok, signed_upload_url}` (a block blob URL,
//!   [`crate::blob`]); `ok: false` when the key is saved already;
//! - `FinalizeCacheEntryUpload {key, version, size_bytes}`: `{ok, entry_id}`; refused when
//!   the blob is not `size_bytes` long or another save of the key committed first;
//! - `GetCacheEntryDownloadURL {key, restore_keys, version}`: `{ok, signed_download_url,
//!   matched_key}`, `ok: false` on a miss.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::cache_store::StoreError;
use crate::server::Services;
use crate::token::Claims;

/// A twirp error (`{code, msg}` with the code's HTTP status).
pub fn twirp_error(status: StatusCode, code: &str, msg: &str) -> Response {
    (status, Json(json!({"code": code, "msg": msg}))).into_response()
}

/// A twirp error not yet answered.
#[derive(Debug)]
pub struct TwirpError {
    pub status: StatusCode,
    pub code: &'static str,
    pub msg: String,
}

impl IntoResponse for TwirpError {
    fn into_response(self) -> Response {
        twirp_error(self.status, self.code, &self.msg)
    }
}

/// The claims of the request's bearer token.
pub fn bearer(services: &Services, headers: &HeaderMap) -> Result<Claims, TwirpError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or_else(|| TwirpError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthenticated",
            msg: crate::token::TokenError::Missing.to_string(),
        })?;
    services.key.verify(token).map_err(|e| TwirpError {
        status: StatusCode::UNAUTHORIZED,
        code: "unauthenticated",
        msg: e.to_string(),
    })
}

/// A 64-bit integer as protobuf's JSON writes it (a string) or as a number.
pub fn int64(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// Field `proto` (or its camelCase JSON name) of `body`.
pub fn field<'a>(body: &'a Value, proto: &str) -> &'a Value {
    let camel: String = {
        let mut out = String::new();
        let mut upper = false;
        for c in proto.chars() {
            if c == '_' {
                upper = true;
            } else if upper {
                out.extend(c.to_uppercase());
                upper = false;
            } else {
                out.push(c);
            }
        }
        out
    };
    match body.get(proto) {
        Some(v) => v,
        None => body.get(camel).unwrap_or(&Value::Null),
    }
}

/// String field `proto` of `body` (empty when absent).
pub fn text(body: &Value, proto: &str) -> String {
    field(body, proto).as_str().unwrap_or_default().to_string()
}

/// A twirp call's bearer claims and JSON body; the error is the answer to give, always
/// JSON: the client retries five times on a body it cannot parse.
pub fn twirp_request(
    services: &Services,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Claims, Value), TwirpError> {
    let claims = bearer(services, headers)?;
    let body = serde_json::from_slice::<Value>(body).map_err(|_| TwirpError {
        status: StatusCode::BAD_REQUEST,
        code: "malformed",
        msg: "the request is not JSON".to_string(),
    })?;
    Ok((claims, body))
}

/// `POST /twirp/github.actions.results.api.v1.CacheService/{method}`.
pub async fn call(
    State(services): State<Services>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (claims, body) = match twirp_request(&services, &headers, &body) {
        Ok(request) => request,
        Err(answer) => return answer.into_response(),
    };
    let owner = format!("{}:{}", claims.run, claims.job);
    let (key, version) = (text(&body, "key"), text(&body, "version"));
    let store = &services.cache;
    // `cache-mode:` as GitHub's cache service enforces it.
    let refused = match method.as_str() {
        "CreateCacheEntry" | "FinalizeCacheEntryUpload" if !claims.may_save() => {
            Some(claims.refusal("save"))
        }
        "GetCacheEntryDownloadURL" if !claims.may_restore() => Some(claims.refusal("restore")),
        _ => None,
    };
    if let Some(message) = refused {
        return twirp_error(StatusCode::FORBIDDEN, "permission_denied", &message);
    }
    match method.as_str() {
        "CreateCacheEntry" => match store.reserve(&claims.repo, &key, &version, &owner) {
            Ok(id) => Json(json!({
                "ok": true,
                "signed_upload_url": crate::blob::signed_url(&services, "cache", id, "w"),
            }))
            .into_response(),
            Err(e @ StoreError::Exists { .. }) => {
                Json(json!({"ok": false, "message": e.to_string()})).into_response()
            }
            Err(e) => twirp_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                &e.to_string(),
            ),
        },
        "FinalizeCacheEntryUpload" => {
            let Some(id) = store.upload_of(&claims.repo, &key, &version, &owner) else {
                return twirp_error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    &format!("no upload of cache key {key} is in progress"),
                );
            };
            let size = int64(field(&body, "size_bytes")).unwrap_or(0);
            let cache = services.cache.clone();
            match tokio::task::spawn_blocking(move || cache.commit(id, size)).await {
                Ok(Ok(entry)) => {
                    Json(json!({"ok": true, "entry_id": entry.id.to_string()})).into_response()
                }
                Ok(Err(e @ (StoreError::Exists { .. } | StoreError::Corrupt(_)))) => {
                    Json(json!({"ok": false, "message": e.to_string()})).into_response()
                }
                Ok(Err(e)) => twirp_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    &e.to_string(),
                ),
                Err(e) => twirp_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    &e.to_string(),
                ),
            }
        }
        "GetCacheEntryDownloadURL" => {
            let mut keys = vec![key];
            if let Some(restore) = field(&body, "restore_keys").as_array() {
                keys.extend(
                    restore
                        .iter()
                        .filter_map(|k| k.as_str().map(str::to_string)),
                );
            }
            match store.lookup(&claims.repo, &keys, &version) {
                Some(entry) => Json(json!({
                    "ok": true,
                    "signed_download_url": crate::blob::signed_url(&services, "cache", entry.id, "r"),
                    "matched_key": entry.key,
                }))
                .into_response(),
                None => Json(json!({"ok": false, "signed_download_url": "", "matched_key": ""}))
                    .into_response(),
            }
        }
        other => twirp_error(
            StatusCode::NOT_FOUND,
            "bad_route",
            &format!("CacheService has no method {other}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_in_either_name_and_number_form() {
        let body = json!({"size_bytes": "42", "restoreKeys": ["a"], "entryId": 7});
        assert_eq!(int64(field(&body, "size_bytes")), Some(42));
        assert_eq!(field(&body, "restore_keys"), &json!(["a"]));
        assert_eq!(int64(field(&body, "entry_id")), Some(7));
        assert_eq!(field(&body, "missing"), &Value::Null);
    }
}
