//! Zero leaks: the build namespace is deleted on every path. [`NamespaceGuard`] deletes it
//! explicitly (with retries) at the end of a build and, when a build is dropped or panics
//! before that, from its `Drop`. The reaper deletes this runner's namespaces whose expiry
//! has passed (left by a crash or a lost deletion).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ListParams};
use kube::{Client, Config};

use crate::connect::{ClusterError, retry, status_code};
use crate::names::{label_value, namespace_name};
use crate::templates::{TemplateError, render};
use crate::time::{parse_rfc3339, rfc3339};

/// Label holding the runner id (as a label value) on every build namespace.
pub const RUNNER_ID_LABEL: &str = "hybrid-runner/runner-id";
/// Annotation with the RFC 3339 time after which the reaper may delete the namespace.
pub const EXPIRES_AT_ANNOTATION: &str = "hybrid-runner/expires-at";

/// How long a deletion from `Drop` may block a thread while the process is panicking.
const PANIC_CLEANUP_BUDGET: Duration = Duration::from_secs(15);

/// Deletes namespace `name` with background propagation, retrying transient errors.
/// Returns whether this call started the deletion (`false` when it was already gone or
/// already terminating).
pub async fn delete_namespace(client: &Client, name: &str) -> Result<bool, ClusterError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let background = DeleteParams::background();
    match retry(|| api.delete(name, &background)).await {
        Ok(_) => Ok(true),
        // 404: gone already; 409: the namespace is already terminating.
        Err(e) if matches!(status_code(&e), Some(404 | 409)) => Ok(false),
        Err(source) => Err(ClusterError::Api {
            action: format!(
                "cannot delete the build namespace {name}; delete it with `kubectl delete namespace {name}` or let `hybrid-runner cleanup` reap it once it expires"
            ),
            cause: source,
        }),
    }
}

/// Owns a build namespace until it is deleted. Call [`NamespaceGuard::delete`] on every
/// normal path; if the guard is dropped armed (the build future was dropped, or a panic
/// unwound through it) `Drop` starts the deletion itself: on the current runtime when
/// there is one, else (and while panicking, when the runtime may be going away) on a
/// thread of its own with a fresh client, for at most a few seconds.
pub struct NamespaceGuard {
    client: Client,
    kube_config: Config,
    name: String,
    armed: bool,
    /// Cleared while the namespace of that name is known to be someone else's (another
    /// build's), so the guard never deletes what it did not create.
    owned: Arc<AtomicBool>,
}

impl std::fmt::Debug for NamespaceGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamespaceGuard")
            .field("name", &self.name)
            .field("armed", &self.armed)
            .field("owned", &self.owned.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

impl NamespaceGuard {
    pub fn new(client: Client, kube_config: Config, name: impl Into<String>) -> NamespaceGuard {
        NamespaceGuard {
            client,
            kube_config,
            name: name.into(),
            armed: true,
            owned: Arc::new(AtomicBool::new(true)),
        }
    }

    /// The flag saying whether the namespace is (or may be) this build's: true from the
    /// start; whoever creates the namespace clears it while a namespace of that name is
    /// known to belong to another build, and sets it again before creating.
    pub fn owned_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.owned)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Deletes the namespace now (background propagation, retries on 5xx) and disarms the
    /// guard.
    pub async fn delete(mut self) -> Result<bool, ClusterError> {
        self.armed = false;
        if !self.owned.load(Ordering::SeqCst) {
            return Ok(false);
        }
        delete_namespace(&self.client, &self.name).await
    }
}

impl Drop for NamespaceGuard {
    fn drop(&mut self) {
        if !self.armed || !self.owned.load(Ordering::SeqCst) {
            return;
        }
        let name = std::mem::take(&mut self.name);
        let handle = tokio::runtime::Handle::try_current();
        match handle {
            Ok(handle) if !std::thread::panicking() => {
                let client = self.client.clone();
                handle.spawn(async move {
                    if let Err(e) = delete_namespace(&client, &name).await {
                        tracing::warn!(namespace = %name, error = %e, "cleanup after a dropped build failed");
                    }
                });
            }
            _ => delete_on_own_thread(self.kube_config.clone(), name),
        }
    }
}

/// Deletes `name` from a thread with its own runtime and client (the caller's runtime may
/// be shutting down), waiting at most [`PANIC_CLEANUP_BUDGET`].
fn delete_on_own_thread(kube_config: Config, name: String) {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("namespace-cleanup".to_string())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let result = match runtime {
                Ok(runtime) => runtime.block_on(async {
                    let client = Client::try_from(kube_config).map_err(|e| e.to_string())?;
                    delete_namespace(&client, &name)
                        .await
                        .map_err(|e| e.to_string())
                }),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = result {
                tracing::warn!(namespace = %name, error = %e, "cleanup after a panic failed");
            }
            let _ = done_tx.send(());
        });
    if spawned.is_ok() {
        let _ = done_rx.recv_timeout(PANIC_CLEANUP_BUDGET);
    }
}

/// Which of this runner's namespaces to reap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReapScope {
    /// Those whose expiry annotation is at or before this time.
    ExpiredAt(SystemTime),
    /// All of them, whatever their expiry (`cleanup --all`).
    All,
}

/// The label selector of this runner's build namespaces.
pub fn runner_selector(runner_id: &str) -> String {
    format!(
        "{}={},{RUNNER_ID_LABEL}={}",
        MANAGED_BY.0,
        MANAGED_BY.1,
        label_value(runner_id)
    )
}

/// Whether `ns` is a build namespace of the runner `runner_id` (checked on the
/// object itself, so a server that ignored the label selector cannot widen the set).
pub fn is_runner_namespace(ns: &Namespace, runner_id: &str) -> bool {
    let labels = ns.metadata.labels.as_ref();
    let label = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
    label(MANAGED_BY.0) == Some(MANAGED_BY.1)
        && label(RUNNER_ID_LABEL) == Some(label_value(runner_id).as_str())
}

/// When `ns` expires, from its annotation (`None` when missing or unreadable).
pub fn expires_at(ns: &Namespace) -> Option<SystemTime> {
    let annotations: Option<&BTreeMap<String, String>> = ns.metadata.annotations.as_ref();
    annotations
        .and_then(|a| a.get(EXPIRES_AT_ANNOTATION))
        .and_then(|v| parse_rfc3339(v))
}

/// The names in `namespaces` to reap under `scope`: this runner's, not already being
/// deleted, and (for [`ReapScope::ExpiredAt`]) with an expiry annotation that has passed.
/// A namespace without a readable expiry is never reaped by expiry.
pub fn select_reapable(namespaces: &[Namespace], runner_id: &str, scope: ReapScope) -> Vec<String> {
    namespaces
        .iter()
        .filter(|ns| is_runner_namespace(ns, runner_id))
        .filter(|ns| ns.metadata.deletion_timestamp.is_none())
        .filter(|ns| match scope {
            ReapScope::All => true,
            ReapScope::ExpiredAt(now) => expires_at(ns).is_some_and(|at| at <= now),
        })
        .filter_map(|ns| ns.metadata.name.clone())
        .collect()
}

/// This runner's build namespaces, as the API server lists them.
pub async fn runner_namespaces(
    client: &Client,
    runner_id: &str,
) -> Result<Vec<Namespace>, ClusterError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let params = ListParams::default().labels(&runner_selector(runner_id));
    let list = retry(|| api.list(&params))
        .await
        .map_err(|source| ClusterError::Api {
            action: "cannot list the build namespaces".to_string(),
            cause: source,
        })?;
    Ok(list
        .items
        .into_iter()
        .filter(|ns| is_runner_namespace(ns, runner_id))
        .collect())
}

/// The namespaces [`reap`] would delete.
pub async fn reapable_namespaces(
    client: &Client,
    runner_id: &str,
    scope: ReapScope,
) -> Result<Vec<String>, ClusterError> {
    let namespaces = runner_namespaces(client, runner_id).await?;
    Ok(select_reapable(&namespaces, runner_id, scope))
}

/// Deletes this runner's namespaces selected by `scope`; returns the names whose deletion
/// this call started. Every selected namespace is tried; the first error is returned after.
pub async fn reap(
    client: &Client,
    runner_id: &str,
    scope: ReapScope,
) -> Result<Vec<String>, ClusterError> {
    let mut deleted = Vec::new();
    let mut first_error = None;
    for name in reapable_namespaces(client, runner_id, scope).await? {
        match delete_namespace(client, &name).await {
            Ok(true) => deleted.push(name),
            Ok(false) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(deleted),
    }
}

/// Deletes this runner's namespaces whose expiry has passed at `now`.
pub async fn reap_expired(
    client: &Client,
    runner_id: &str,
    now: SystemTime,
) -> Result<Vec<String>, ClusterError> {
    reap(client, runner_id, ReapScope::ExpiredAt(now)).await
}

/// The label every object the runner creates carries.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "hybrid-runner");

/// The built-in template of a task namespace (`namespace.yaml` in a `template_dir`
/// replaces it).
pub const NAMESPACE_TEMPLATE: &str = include_str!("../templates/namespace.yaml");

/// Who a namespace belongs to: the task and job it is named after, and when the task
/// started (the namespace's expiry counts from there).
#[derive(Debug, Clone)]
pub struct TaskIds {
    pub task: String,
    pub job: String,
    pub started_at: SystemTime,
}

/// The runner and task a namespace is named and labelled after.
#[derive(Debug, Clone, Copy)]
pub struct NamespaceOwner<'a> {
    pub prefix: &'a str,
    pub runner_id: &'a str,
    pub task: &'a str,
    pub job: &'a str,
}

/// The namespace of one task's job (an image build's or a job pod's): its name, and the
/// object rendered from `namespace.yaml` (the user's copy in `dir`, else the built-in
/// one) with the runner's labels and the expiry annotation the reaper reads.
pub fn task_namespace(
    dir: Option<&std::path::Path>,
    owner: NamespaceOwner<'_>,
    expires: SystemTime,
) -> Result<(String, Namespace), TemplateError> {
    let ns = namespace_name(owner.prefix, owner.runner_id, owner.task, owner.job);
    let runner_label = label_value(owner.runner_id);
    let task_label = label_value(owner.task);
    let expires_at = rfc3339(expires);
    let mut namespace: Namespace = render(
        "namespace.yaml",
        NAMESPACE_TEMPLATE,
        dir,
        "Namespace",
        &[
            ("namespace", &ns),
            ("runner_label", &runner_label),
            ("task_label", &task_label),
            ("runner_id", owner.runner_id),
            ("task_id", owner.task),
            ("job_id", owner.job),
            ("expires_at", &expires_at),
        ],
    )?;
    namespace.metadata.name = Some(ns.clone());
    let labels = namespace.metadata.labels.get_or_insert_with(BTreeMap::new);
    for (key, value) in [
        MANAGED_BY,
        ("hybrid-runner/runner-id", runner_label.as_str()),
        ("hybrid-runner/task-id", task_label.as_str()),
        ("pod-security.kubernetes.io/enforce", "baseline"),
    ] {
        labels.insert(key.to_string(), value.to_string());
    }
    namespace
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(EXPIRES_AT_ANNOTATION.to_string(), expires_at);
    Ok((ns, namespace))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use std::time::UNIX_EPOCH;

    fn ns(name: &str, runner: &str, expires: Option<&str>, terminating: bool) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                labels: Some(BTreeMap::from([
                    (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
                    (RUNNER_ID_LABEL.to_string(), runner.to_string()),
                ])),
                annotations: expires
                    .map(|e| BTreeMap::from([(EXPIRES_AT_ANNOTATION.to_string(), e.to_string())])),
                deletion_timestamp: terminating.then(|| Time(Default::default())),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn reaper_selects_only_this_runners_expired_namespaces() {
        let config = "r1";
        let mut foreign = ns("unmanaged", "r1", Some("2020-01-01T00:00:00Z"), false);
        foreign
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .remove(MANAGED_BY.0);
        let all = vec![
            ns("expired", "r1", Some("2026-01-01T00:00:00Z"), false),
            ns("exactly-now", "r1", Some("2026-06-01T00:00:00Z"), false),
            ns("fresh", "r1", Some("2027-01-01T00:00:00Z"), false),
            ns("other-runner", "r2", Some("2020-01-01T00:00:00Z"), false),
            ns("no-expiry", "r1", None, false),
            ns("bad-expiry", "r1", Some("tomorrow"), false),
            ns("terminating", "r1", Some("2020-01-01T00:00:00Z"), true),
            foreign,
        ];
        let now = parse_rfc3339("2026-06-01T00:00:00Z").unwrap();
        assert_eq!(
            select_reapable(&all, config, ReapScope::ExpiredAt(now)),
            vec!["expired", "exactly-now"]
        );
        assert_eq!(
            select_reapable(&all, config, ReapScope::All),
            vec!["expired", "exactly-now", "fresh", "no-expiry", "bad-expiry"]
        );
        assert!(select_reapable(&all, config, ReapScope::ExpiredAt(UNIX_EPOCH)).is_empty());
    }

    #[test]
    fn selector_uses_the_label_form_of_the_runner_id() {
        let config = "my runner/1";
        let selector = runner_selector(config);
        assert!(
            selector.starts_with(
                "app.kubernetes.io/managed-by=hybrid-runner,hybrid-runner/runner-id=my-runner-1-"
            ),
            "{selector}"
        );
        let namespace = ns("x", &label_value("my runner/1"), None, false);
        assert!(is_runner_namespace(&namespace, config));
    }
}
