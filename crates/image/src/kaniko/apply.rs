//! Creating a build's objects on the cluster, in dependency order: the namespace; then its
//! LimitRange, ResourceQuota, registry Secret and context ConfigMap together; then one Job
//! per variant together. Transient errors are retried; a namespace left by an earlier run
//! of the same task is waited out first.

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use futures::future::try_join_all;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::config::KanikoConfig;
use super::manifests::{BuildManifests, ContextObjects};
use crate::{BuildError, BuildLog};
use hr_cluster::namespaces::{expires_at, is_runner_namespace};
use hr_cluster::{describe, retry, status_code};

/// Annotation with an id unique to one build, telling a namespace this build created (whose
/// creation answer was lost and retried) from one an earlier build left.
pub(super) const BUILD_ID_ANNOTATION: &str = "hybrid-runner/build-id";

/// A new build id: time, process and a counter, hashed short.
pub(super) fn new_build_id() -> String {
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seed = format!(
        "{nanos}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let digest = Sha256::digest(seed.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// How long a namespace of the same name, left terminating by an earlier build of the same
/// task and job, may take to go away.
const STALE_NAMESPACE_WAIT: Duration = Duration::from_secs(180);

/// Creates the namespace of `m`. A namespace of the same name that this runner left
/// terminating is waited out; an expired one is deleted first; an active one that has not
/// expired belongs to a build still running, and is an error.
pub(super) async fn create_namespace(
    client: &Client,
    config: &KanikoConfig,
    m: &BuildManifests,
    log: &BuildLog,
    owned: &AtomicBool,
) -> Result<(), BuildError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let name = m.namespace.name_any();
    let started = Instant::now();
    let mut announced = false;
    loop {
        // From here the namespace may be this build's, even if the answer is lost.
        owned.store(true, Ordering::SeqCst);
        let post = PostParams::default();
        let e = match retry(|| api.create(&post, &m.namespace)).await {
            Ok(_) => return Ok(()),
            Err(e) if status_code(&e) == Some(409) => e,
            Err(e) => return Err(failure(&format!("create the namespace {name}"), &e)),
        };
        let existing = match retry(|| api.get_opt(&name)).await {
            Ok(Some(ns)) => ns,
            // Gone in between: create again.
            Ok(None) => continue,
            Err(e) => return Err(failure(&format!("read the namespace {name}"), &e)),
        };
        let build_id = |ns: &Namespace| ns.annotations().get(BUILD_ID_ANNOTATION).cloned();
        if build_id(&existing).is_some() && build_id(&existing) == build_id(&m.namespace) {
            // This build's own namespace: an earlier try landed but its answer was lost.
            return Ok(());
        }
        // Someone else's: never this build's to delete.
        owned.store(false, Ordering::SeqCst);
        if !is_runner_namespace(&existing, &config.runner_id) {
            return Err(BuildError::Unavailable {
                builder: "kaniko",
                message: format!(
                    "the namespace {name} already exists and is not a build namespace of runner {} ({}); choose another namespace_prefix",
                    config.runner_id,
                    describe(&e)
                ),
            });
        }
        let terminating = existing.metadata.deletion_timestamp.is_some()
            || existing.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
        if !terminating {
            // Active: another build of the same task and job, unless it has expired (then
            // a crashed build left it and it is deleted here, as the reaper would).
            match expires_at(&existing) {
                Some(at) if at <= SystemTime::now() => {}
                _ => {
                    return Err(BuildError::Unavailable {
                        builder: "kaniko",
                        message: format!(
                            "the namespace {name} is in use by another build of the same task and job; wait for it to finish, or delete it with `hybrid-runner cleanup --all --runner-id {}`",
                            config.runner_id
                        ),
                    });
                }
            }
            let background = DeleteParams::background();
            match retry(|| api.delete(&name, &background)).await {
                Ok(_) => {}
                Err(e) if matches!(status_code(&e), Some(404 | 409)) => {}
                Err(e) => return Err(failure(&format!("delete the expired namespace {name}"), &e)),
            }
        }
        if started.elapsed() > STALE_NAMESPACE_WAIT {
            return Err(BuildError::Unavailable {
                builder: "kaniko",
                message: format!(
                    "the namespace {name} of an earlier build is still terminating after {}s; check `kubectl get namespace {name} -o yaml` for what blocks its deletion",
                    STALE_NAMESPACE_WAIT.as_secs()
                ),
            });
        }
        if !announced {
            log.line(
                None,
                format!("waiting for the namespace {name} of an earlier build to be deleted"),
            );
            announced = true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Creates the LimitRange, ResourceQuota, registry Secret and context objects of `m`
/// (inside its namespace, concurrently).
pub(super) async fn create_supporting_objects(
    client: &Client,
    m: &BuildManifests,
) -> Result<(), BuildError> {
    let ns = m.namespace.name_any();
    let mut creations = Vec::new();
    if let Some(lr) = &m.limit_range {
        creations.push(Box::pin(create(client, &ns, lr.clone()))
            as std::pin::Pin<Box<dyn Future<Output = _> + Send + '_>>);
    }
    if let Some(q) = &m.quota {
        creations.push(Box::pin(create(client, &ns, q.clone())));
    }
    if let Some(s) = &m.registry_secret {
        creations.push(Box::pin(create(client, &ns, s.clone())));
    }
    match &m.context {
        ContextObjects::ConfigMap(cm) => {
            creations.push(Box::pin(create(client, &ns, (**cm).clone())));
        }
        ContextObjects::Pvc { pvc, .. } => {
            creations.push(Box::pin(create(client, &ns, (**pvc).clone())));
        }
        ContextObjects::Stdin => {}
    }
    try_join_all(creations).await.map(|_| ())
}

/// Creates every Job of `m`, concurrently.
pub(super) async fn create_jobs(client: &Client, m: &BuildManifests) -> Result<(), BuildError> {
    let ns = m.namespace.name_any();
    try_join_all(
        m.jobs
            .iter()
            .map(|(_, job)| create(client, &ns, job.clone())),
    )
    .await
    .map(|_| ())
}

/// Deletes the Jobs of `m` (background propagation, so their pods go too); errors are
/// ignored because the namespace deletion that follows removes them anyway.
pub(super) async fn delete_jobs(client: &Client, m: &BuildManifests) {
    let api: Api<Job> = Api::namespaced(client.clone(), &m.namespace.name_any());
    let deletions = m.jobs.iter().map(|(_, job)| {
        let api = api.clone();
        let name = job.name_any();
        async move {
            let background = DeleteParams::background();
            if let Err(e) = retry(|| api.delete(&name, &background)).await {
                tracing::debug!(job = %name, error = %e, "deleting a cancelled Job failed");
            }
        }
    });
    futures::future::join_all(deletions).await;
}

/// Creates `obj` in namespace `ns`. A 409 counts as created: the namespace is fresh, so
/// the object can only come from an earlier try of this very call whose answer was lost.
async fn create<K>(client: &Client, ns: &str, obj: K) -> Result<(), BuildError>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let post = PostParams::default();
    match retry(|| api.create(&post, &obj)).await {
        Ok(_) => Ok(()),
        Err(e) if status_code(&e) == Some(409) => Ok(()),
        Err(e) => Err(failure(
            &format!(
                "create the {} {} in namespace {ns}",
                K::kind(&Default::default()),
                obj.name_any()
            ),
            &e,
        )),
    }
}

/// A failed API call as a build error with a remedy.
fn failure(action: &str, e: &kube::Error) -> BuildError {
    let remedy = match status_code(e) {
        Some(401 | 403) => {
            "; the runner's credentials lack a permission: run `hybrid-runner check` to see which"
        }
        Some(code) if code >= 500 => "; the API server kept failing, try again later",
        None => "; check that the cluster is reachable (`hybrid-runner check`)",
        _ => "",
    };
    BuildError::Unavailable {
        builder: "kaniko",
        message: format!("cannot {action}: {}{remedy}", describe(e)),
    }
}
