//! Watches: newline-delimited `{"type": ..., "object": ...}` events, starting with
//! synthetic ADDED events (no `resourceVersion`, `"0"`, or `sendInitialEvents=true`, which
//! ends them with the `k8s.io/initial-events-end` BOOKMARK) or replaying the event log after
//! the given `resourceVersion`; objects that start or stop matching a selector arrive as
//! ADDED or DELETED, as the real watch cache sends them. Ends after `timeoutSeconds`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::response::Response;
use serde_json::{Value, json};

use super::Shared;
use super::api::ApiError;
use super::routes::{Call, Target, selector, streaming};
use super::store::EventType;

/// How often an idle watch with `allowWatchBookmarks=true` gets a BOOKMARK.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);
/// The API server's default watch timeout (`--min-request-timeout`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

fn line(kind: &str, object: &Value) -> Bytes {
    let mut s = json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

fn bookmark(kind: &str, api_version: &str, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": kind, "apiVersion": api_version, "metadata": meta}),
    )
}

pub(crate) fn serve(
    shared: &Arc<Shared>,
    target: &Target,
    call: &Call,
) -> Result<Response, ApiError> {
    let matches = selector(call)?;
    let rt = target.rt;
    let namespace = target.namespace.clone();
    let in_scope = move |ns: &str| namespace.as_deref().is_none_or(|n| n == ns);
    let rv_param = call.q("resourceVersion").unwrap_or_default().to_string();
    let initial = call.flag("sendInitialEvents");
    let bookmarks = call.flag("allowWatchBookmarks");
    let timeout = call
        .q("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let since: Option<u64> =
        if initial || rv_param.is_empty() || rv_param == "0" {
            None
        } else {
            Some(rv_param.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid resourceVersion {rv_param:?}"))
            })?)
        };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    if let Some(rv) = since {
        let mut faults = super::lock(&shared.faults);
        if faults.expired_watches > 0 {
            faults.expired_watches -= 1;
            let current = shared.read(|s| s.resource_version());
            let status = ApiError {
                code: 410,
                reason: "Expired",
                message: format!("too old resource version: {rv} ({current})"),
                details: Value::Null,
            };
            let _ = tx.try_send(line("ERROR", &status.status()));
            return Ok(streaming("application/json", rx));
        }
    }
    let mut changes = shared.changes.subscribe();
    // The starting point and the synthetic ADDED events, under one read of the store.
    let (mut cursor, mut first): (u64, Vec<Bytes>) = shared.read(|s| match since {
        Some(rv) => (rv, Vec::new()),
        None => {
            let current = s.resource_version();
            let events = s
                .list(rt.plural, None)
                .iter()
                .filter(|o| in_scope(o["metadata"]["namespace"].as_str().unwrap_or_default()))
                .filter(|o| matches(o))
                .map(|o| line("ADDED", o))
                .collect();
            (current, events)
        }
    });
    if initial {
        first.push(bookmark(rt.kind, &rt.api_version(), cursor, true));
    }
    let shared = Arc::clone(shared);
    let api_version = rt.api_version();
    let kind = rt.kind;
    let plural = rt.plural;
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + timeout;
        for b in first {
            if tx.send(b).await.is_err() {
                return;
            }
        }
        loop {
            let batch: Vec<(u64, Bytes)> = shared.read(|s| {
                let start = s.events.partition_point(|e| e.rv <= cursor);
                s.events[start..]
                    .iter()
                    .filter(|e| e.key.plural == plural && in_scope(&e.key.namespace))
                    .filter_map(|e| {
                        let now = matches(&e.object);
                        let before = e.old.as_ref().is_some_and(&matches);
                        let kind = match (e.kind, now, before) {
                            (EventType::Modified, true, false) => "ADDED",
                            (EventType::Modified, false, true) => "DELETED",
                            (EventType::Modified, false, false) => return None,
                            (_, false, _) => return None,
                            (k, true, _) => k.as_str(),
                        };
                        Some((e.rv, line(kind, &e.object)))
                    })
                    .collect::<Vec<_>>()
                    .into_iter()
                    .chain(std::iter::once((s.resource_version(), Bytes::new())))
                    .collect()
            });
            for (rv, bytes) in batch {
                if !bytes.is_empty() && tx.send(bytes).await.is_err() {
                    return;
                }
                cursor = cursor.max(rv);
            }
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep(BOOKMARK_EVERY), if bookmarks => {
                    if tx.send(bookmark(kind, &api_version, cursor, false)).await.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tx.closed() => return,
            }
        }
    });
    Ok(streaming("application/json", rx))
}
