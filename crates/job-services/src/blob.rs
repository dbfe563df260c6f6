//! Signed URLs a client uploads to and downloads from, in the shape of Azure Blob
//! Storage's REST API, which the toolkit's clients speak to a signed URL through
//! `@azure/storage-blob`'s `BlockBlobClient` (and plain HTTP GETs for downloads):
//!
//! - `PUT` without `comp` (`x-ms-blob-type: BlockBlob`): the whole blob in one body;
//! - `PUT ?comp=block&blockid=ID`: one block, kept aside;
//! - `PUT ?comp=blocklist` with `<BlockList><Latest>ID</Latest>…</BlockList>`: the blob
//!   is the listed blocks in order;
//! - `GET` (with or without `Range: bytes=a-b`): the data, `206` for a range.
//!
//! Each answers as Azure does (`201 Created` for the three writes), with the headers the
//! SDK reads. A URL is `/<account>/<container>/<id>` (path style, as Azure's SDK expects
//! of an IP host) with `se` (expiry, seconds since the epoch), `sp` (`w` or `r`) and `sig`,
//! the runner's signature of all of them; nothing else authorizes it.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};

use crate::cache_store::StoreError;
use crate::server::Services;

/// The path's first segment (Azure's account name).
pub const ACCOUNT: &str = "blob";
/// How much a body write moves at once.
const WRITE_BUFFER: usize = 1 << 20;
/// How much a download sends at once: node's HTTP client (the toolkit's) read 137 MB in
/// 600 ms from 1 MiB chunks and in 350 to 450 ms from 64 or 128 KiB ones, as fast as from
/// Python's http.server (bench/cache/throughput.sh's data).
const READ_CHUNK: usize = 64 << 10;
/// How long a signed URL is good for.
pub const URL_LIFETIME_SECS: u64 = 6 * 3600;

/// The URL of upload or entry `id` of `container` (`cache`, `artifact`; `sp`: `w` to
/// write, `r` to read).
pub fn signed_url(services: &Services, container: &str, id: u64, sp: &str) -> String {
    let se = crate::token::now_secs() + URL_LIFETIME_SECS;
    let sig = services
        .key
        .sign_text(&format!("{container}/{id}:{sp}:{se}"));
    format!(
        "{}/{ACCOUNT}/{container}/{id}?se={se}&sp={sp}&sig={sig}",
        services.base_url.trim_end_matches('/')
    )
}

#[derive(Debug, Deserialize)]
pub struct BlobQuery {
    se: Option<u64>,
    sp: Option<String>,
    sig: Option<String>,
    comp: Option<String>,
    blockid: Option<String>,
}

/// An error as Azure Blob Storage answers one (an XML body and `x-ms-error-code`).
#[derive(Debug)]
struct AzureError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for AzureError {
    fn into_response(self) -> Response {
        azure_error(self.status, self.code, &self.message)
    }
}

fn azure_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{}</Message></Error>",
        message
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    );
    let mut response = (status, body).into_response();
    set_azure_headers(response.headers_mut());
    if let Ok(v) = HeaderValue::from_str(code) {
        response.headers_mut().insert("x-ms-error-code", v);
    }
    response
}

fn set_azure_headers(headers: &mut HeaderMap) {
    headers.insert("x-ms-version", HeaderValue::from_static("2024-11-04"));
    let id = format!("{:016x}", rand_u64());
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert("x-ms-request-id", v);
    }
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

fn created(etag: &str) -> Response {
    let mut response = StatusCode::CREATED.into_response();
    let headers = response.headers_mut();
    set_azure_headers(headers);
    if let Ok(v) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(
        "x-ms-request-server-encrypted",
        HeaderValue::from_static("false"),
    );
    response
}

/// Checks the URL's signature for `sp`; `Err` is the answer to give.
fn authorize(
    services: &Services,
    container: &str,
    id: u64,
    query: &BlobQuery,
    sp: &str,
) -> Result<(), AzureError> {
    let forbidden = |message: &str| AzureError {
        status: StatusCode::FORBIDDEN,
        code: "AuthenticationFailed",
        message: message.to_string(),
    };
    let (Some(se), Some(given), Some(sig)) = (query.se, query.sp.as_deref(), query.sig.as_deref())
    else {
        return Err(forbidden("the URL is not signed by this runner"));
    };
    if given != sp
        || !services
            .key
            .verify_text(&format!("{container}/{id}:{given}:{se}"), sig)
    {
        return Err(forbidden("the URL's signature does not verify"));
    }
    if se <= crate::token::now_secs() {
        return Err(forbidden("the signed URL expired"));
    }
    Ok(())
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::NoUpload { .. } => {
            azure_error(StatusCode::NOT_FOUND, "BlobNotFound", &e.to_string())
        }
        StoreError::TooLarge { .. } => azure_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestBodyTooLarge",
            &e.to_string(),
        ),
        StoreError::Corrupt(_) => {
            azure_error(StatusCode::BAD_REQUEST, "InvalidBlockList", &e.to_string())
        }
        _ => azure_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            &e.to_string(),
        ),
    }
}

/// Writes `body` into `path` from `offset`, at most `limit` bytes in all, in writes of
/// up to [`WRITE_BUFFER`] (each file operation is a hop to tokio's blocking pool); returns
/// the bytes written and an ETag.
pub async fn write_body(
    body: Body,
    path: &std::path::Path,
    offset: u64,
    limit: u64,
) -> Result<(u64, String), StoreError> {
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .await?;
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut stream = body.into_data_stream();
    let mut written = 0u64;
    let mut buffer: Vec<u8> = Vec::with_capacity(WRITE_BUFFER);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
        written += chunk.len() as u64;
        if offset + written > limit {
            return Err(StoreError::TooLarge { limit });
        }
        buffer.extend_from_slice(&chunk);
        if buffer.len() >= WRITE_BUFFER {
            file.write_all(&buffer).await?;
            buffer.clear();
        }
    }
    file.write_all(&buffer).await?;
    file.flush().await?;
    Ok((written, format!("0x{:016X}", rand_u64())))
}

/// `PUT /<account>/<container>/<id>`: a whole blob, a block, or a block list.
pub async fn put(
    State(services): State<Services>,
    Path((container, id)): Path<(String, u64)>,
    Query(query): Query<BlobQuery>,
    body: Body,
) -> Response {
    if let Err(answer) = authorize(&services, &container, id, &query, "w") {
        return answer.into_response();
    }
    let (store, limit): (&dyn Uploads, u64) = match (container.as_str(), &services.artifacts) {
        ("cache", _) => (services.cache.uploads(), services.cache_limit),
        ("artifact", Some(artifacts)) => (artifacts.uploads(), u64::MAX),
        _ => {
            return azure_error(
                StatusCode::NOT_FOUND,
                "ContainerNotFound",
                "no such container",
            );
        }
    };
    match query.comp.as_deref() {
        None => {
            if !store.has(id) {
                return store_error(StoreError::NoUpload { id });
            }
            let part = store.part_path(id);
            if let Err(e) = tokio::fs::File::create(&part).await {
                return store_error(e.into());
            }
            match write_body(body, &part, 0, limit).await {
                Ok((n, etag)) => match store.wrote(id, 0, n) {
                    Ok(()) => created(&etag),
                    Err(e) => store_error(e),
                },
                Err(e) => store_error(e),
            }
        }
        Some("block") => {
            let Some(block) = query.blockid.as_deref() else {
                return azure_error(
                    StatusCode::BAD_REQUEST,
                    "MissingRequiredQueryParameter",
                    "blockid",
                );
            };
            if !store.has(id) {
                return store_error(StoreError::NoUpload { id });
            }
            let path = match store.block_path(id, block) {
                Ok(p) => p,
                Err(e) => return store_error(e.into()),
            };
            let _ = tokio::fs::remove_file(&path).await;
            match write_body(body, &path, 0, limit).await {
                Ok((_, etag)) => created(&etag),
                Err(e) => store_error(e),
            }
        }
        Some("blocklist") => {
            let mut text = Vec::new();
            let mut stream = body.into_data_stream();
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(c) if text.len() + c.len() <= 16 << 20 => text.extend_from_slice(&c),
                    _ => {
                        return azure_error(
                            StatusCode::BAD_REQUEST,
                            "InvalidXmlDocument",
                            "the block list is too long or broken",
                        );
                    }
                }
            }
            let order = block_list(&String::from_utf8_lossy(&text));
            match store.commit_blocks(id, &order) {
                Ok(_) => created(&format!("{:016x}", rand_u64())),
                Err(e) => store_error(e),
            }
        }
        Some(other) => azure_error(
            StatusCode::BAD_REQUEST,
            "UnsupportedQueryParameter",
            &format!("comp={other} is not served"),
        ),
    }
}

/// What a signed upload URL writes into: the uploads of the cache or of the artifacts.
trait Uploads: Send + Sync {
    fn has(&self, id: u64) -> bool;
    fn part_path(&self, id: u64) -> std::path::PathBuf;
    fn block_path(&self, id: u64, block: &str) -> std::io::Result<std::path::PathBuf>;
    fn wrote(&self, id: u64, start: u64, end: u64) -> Result<(), StoreError>;
    fn commit_blocks(&self, id: u64, order: &[String]) -> Result<u64, StoreError>;
}

impl<M: Clone + Send> Uploads for crate::uploads::UploadArea<M> {
    fn has(&self, id: u64) -> bool {
        self.has(id)
    }
    fn part_path(&self, id: u64) -> std::path::PathBuf {
        self.part_path(id)
    }
    fn block_path(&self, id: u64, block: &str) -> std::io::Result<std::path::PathBuf> {
        self.block_path(id, block)
    }
    fn wrote(&self, id: u64, start: u64, end: u64) -> Result<(), StoreError> {
        self.wrote(id, start, end)
    }
    fn commit_blocks(&self, id: u64, order: &[String]) -> Result<u64, StoreError> {
        self.commit_blocks(id, order)
    }
}

/// The block ids of a `<BlockList>` body in order (`Latest`, `Committed` and
/// `Uncommitted` alike: a new blob has only the blocks just staged).
pub fn block_list(xml: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find('>') else { break };
        let tag = &rest[..close];
        rest = &rest[close + 1..];
        if matches!(tag, "Latest" | "Committed" | "Uncommitted") {
            let Some(end) = rest.find("</") else { break };
            ids.push(rest[..end].trim().to_string());
            rest = &rest[end..];
        }
    }
    ids
}

/// `GET /<account>/<container>/<id>`: a cache entry's or an artifact's data, whole or a
/// `Range`. A whole read is hashed on the way and its last chunk withheld (the client sees
/// a download short of its length) when the data no longer matches what was saved; a
/// cache entry is then removed.
pub async fn get(
    State(services): State<Services>,
    Path((container, id)): Path<(String, u64)>,
    Query(query): Query<BlobQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(answer) = authorize(&services, &container, id, &query, "r") {
        return answer.into_response();
    }
    let found = match (container.as_str(), &services.artifacts) {
        ("cache", _) => services.cache.entry_any(id).map(|e| {
            (
                services.cache.data_of(id),
                e.size,
                e.sha256,
                "application/octet-stream".to_string(),
            )
        }),
        ("artifact", Some(artifacts)) => artifacts.get(id).map(|a| {
            let content_type = if a.mime.is_empty() {
                "application/zip".to_string()
            } else {
                a.mime.clone()
            };
            let sha = a.digest.trim_start_matches("sha256:").to_string();
            (artifacts.data_of(&a), a.size, sha, content_type)
        }),
        _ => None,
    };
    let Some((path, size, expected, content_type)) = found else {
        return azure_error(StatusCode::NOT_FOUND, "BlobNotFound", "no such blob");
    };
    let is_cache = container == "cache";
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => return store_error(e.into()),
    };
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| parse_range(r, size));
    let (start, end, status) = match range {
        Some((s, e)) => (s, e, StatusCode::PARTIAL_CONTENT),
        None => (0, size, StatusCode::OK),
    };
    if start > 0 && file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        return azure_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "seek");
    }
    let whole = status == StatusCode::OK;
    let cache = services.cache.clone();
    let state = (file, end - start, Sha256::new());
    let stream = futures_util::stream::unfold(Some(state), move |state| {
        let expected = expected.clone();
        let cache = cache.clone();
        async move {
            let (mut file, left, mut hasher) = state?;
            if left == 0 {
                return None;
            }
            let mut buf = vec![0u8; READ_CHUNK.min(left as usize)];
            match file.read(&mut buf).await {
                Ok(0) => Some((
                    Err(std::io::Error::other("the data is shorter than saved")),
                    None,
                )),
                Ok(n) => {
                    buf.truncate(n);
                    hasher.update(&buf);
                    let left = left - n as u64;
                    // The last chunk goes only when the whole matches what was saved.
                    if left == 0
                        && whole
                        && crate::cache_store::hex(&hasher.clone().finalize()) != expected
                    {
                        tracing::warn!(id, "blob {id} failed its integrity check");
                        if is_cache {
                            cache.remove(id);
                        }
                        return Some((Err(std::io::Error::other("the data is corrupt")), None));
                    }
                    Some((Ok(axum::body::Bytes::from(buf)), Some((file, left, hasher))))
                }
                Err(e) => Some((Err(e), None)),
            }
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    let h = response.headers_mut();
    set_azure_headers(h);
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&(end - start).to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) =
            HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end.saturating_sub(1)))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    h.insert("x-ms-blob-type", HeaderValue::from_static("BlockBlob"));
    response
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` within `size`: `[start, end)`.
fn parse_range(value: &str, size: u64) -> Option<(u64, u64)> {
    let spec = value.strip_prefix("bytes=")?.split(',').next()?.trim();
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (size.saturating_sub(n), size)
        }
        (a, "") => (a.parse().ok()?, size),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.saturating_add(1).min(size),
        ),
    };
    (start < end).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_lists_and_ranges_read_as_azure_writes_them() {
        let xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<BlockList><Latest>AAAA</Latest><Latest>AAAB</Latest><Uncommitted>AAAC</Uncommitted></BlockList>";
        assert_eq!(block_list(xml), ["AAAA", "AAAB", "AAAC"]);
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 10)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 100)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 100)));
        assert_eq!(parse_range("bytes=95-200", 100), Some((95, 100)));
        assert_eq!(parse_range("bytes=100-", 100), None);
    }
}
