//! The cache's first protocol: the REST API under `ACTIONS_CACHE_URL`
//! (`_apis/artifactcache/...`) that `@actions/cache` speaks when
//! `ACTIONS_CACHE_SERVICE_V2` is not set, as act_runner's and act's cache servers serve it.
//!
//! - `GET cache?keys=K1,K2&version=V`: `200` with `cacheKey`, `scope`, `creationTime` and
//!   `archiveLocation` (a signed URL, [`crate::blob`]), or `204` on a miss;
//! - `POST caches` `{key, version, cacheSize}`: `201 {cacheId}`, or `409` when the key
//!   is saved already, `400` past the size limit;
//! - `PATCH caches/ID` with `Content-Range: bytes A-B/*`: a chunk at its offset;
//! - `POST caches/ID` `{size}`: commit, refused when the chunks do not cover the size.
//!
//! The job's token is part of `ACTIONS_CACHE_URL`'s path (`/_cache/<token>/`): on Gitea the
//! bearer token the client sends is the server's, which this runner cannot verify.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::cache_store::StoreError;
use crate::server::Services;
use crate::token::Claims;

/// The path prefix of `ACTIONS_CACHE_URL` (then the token).
pub const PREFIX: &str = "_cache";

fn error(status: StatusCode, message: String) -> Response {
    (
        status,
        Json(json!({"message": message, "typeKey": "ArtifactCacheException"})),
    )
        .into_response()
}

/// A refused token, answered `401` with its reason.
#[derive(Debug)]
struct Unauthorized(String);

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        error(StatusCode::UNAUTHORIZED, self.0)
    }
}

fn claims(services: &Services, token: &str) -> Result<Claims, Unauthorized> {
    services
        .key
        .verify(token)
        .map_err(|e| Unauthorized(e.to_string()))
}

fn store_error(e: StoreError) -> Response {
    let status = match &e {
        StoreError::Exists { .. } => StatusCode::CONFLICT,
        StoreError::NoUpload { .. } => StatusCode::NOT_FOUND,
        StoreError::TooLarge { .. } | StoreError::Corrupt(_) => StatusCode::BAD_REQUEST,
        StoreError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e.to_string())
}

#[derive(Debug, Deserialize)]
pub struct LookupQuery {
    keys: String,
    version: String,
}

/// `GET cache?keys=&version=`.
pub async fn lookup(
    State(services): State<Services>,
    Path(token): Path<String>,
    Query(query): Query<LookupQuery>,
) -> Response {
    let claims = match claims(&services, &token) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    if !claims.may_restore() {
        return error(StatusCode::FORBIDDEN, claims.refusal("restore"));
    }
    let keys: Vec<String> = query
        .keys
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect();
    match services.cache.lookup(&claims.repo, &keys, &query.version) {
        Some(entry) => Json(json!({
            "cacheKey": entry.key,
            "scope": format!("refs/heads/{}", claims.repo),
            "creationTime": crate::time::rfc3339_millis(entry.created),
            "archiveLocation": crate::blob::signed_url(&services, "cache", entry.id, "r"),
        }))
        .into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReserveBody {
    key: String,
    version: String,
    cache_size: Option<u64>,
}

/// `POST caches`.
pub async fn reserve(
    State(services): State<Services>,
    Path(token): Path<String>,
    Json(body): Json<ReserveBody>,
) -> Response {
    let claims = match claims(&services, &token) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    if !claims.may_save() {
        return error(StatusCode::FORBIDDEN, claims.refusal("save"));
    }
    if let Some(size) = body.cache_size
        && size > services.cache_limit
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "Cache size of ~{} MB ({size} B) is over the {} B limit of this runner's cache (cache.max_size)",
                size / (1024 * 1024),
                services.cache_limit
            ),
        );
    }
    let owner = format!("{}:{}", claims.run, claims.job);
    match services
        .cache
        .reserve(&claims.repo, &body.key, &body.version, &owner)
    {
        Ok(id) => (StatusCode::CREATED, Json(json!({"cacheId": id}))).into_response(),
        Err(e) => store_error(e),
    }
}

/// `PATCH caches/ID` with a `Content-Range`.
pub async fn upload(
    State(services): State<Services>,
    Path((token, id)): Path<(String, u64)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let claims = match claims(&services, &token) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    if !services.cache.has_upload(&claims.repo, id) {
        return store_error(StoreError::NoUpload { id });
    }
    let Some((start, end)) = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(content_range)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "a chunk needs `Content-Range: bytes START-END/*`".into(),
        );
    };
    let part = services.cache.part_path(id);
    match crate::blob::write_body(body, &part, start, services.cache_limit).await {
        Ok((n, _)) if n == end + 1 - start => match services.cache.wrote(id, start, end + 1) {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => store_error(e),
        },
        Ok((n, _)) => error(
            StatusCode::BAD_REQUEST,
            format!(
                "the chunk's Content-Range says {} bytes, its body has {n}",
                end + 1 - start
            ),
        ),
        Err(e) => store_error(e),
    }
}

/// `bytes START-END/*` (END inclusive).
fn content_range(value: &str) -> Option<(u64, u64)> {
    let range = value.trim().strip_prefix("bytes")?.trim();
    let (range, _total) = range.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}

#[derive(Debug, Deserialize)]
pub struct CommitBody {
    size: u64,
}

/// `POST caches/ID` `{size}`.
pub async fn commit(
    State(services): State<Services>,
    Path((token, id)): Path<(String, u64)>,
    Json(body): Json<CommitBody>,
) -> Response {
    let claims = match claims(&services, &token) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    if !services.cache.has_upload(&claims.repo, id) {
        return store_error(StoreError::NoUpload { id });
    }
    let cache = services.cache.clone();
    match tokio::task::spawn_blocking(move || cache.commit(id, body.size)).await {
        Ok(Ok(_)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e)) => store_error(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_read_as_the_toolkit_writes_them() {
        assert_eq!(content_range("bytes 0-1023/*"), Some((0, 1023)));
        assert_eq!(
            content_range("bytes 33554432-67108863/*"),
            Some((33554432, 67108863))
        );
        assert_eq!(content_range("bytes 5-4/*"), None);
        assert_eq!(content_range("items 0-1/*"), None);
    }
}
