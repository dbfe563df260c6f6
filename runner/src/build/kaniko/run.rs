//! One build on the cluster, start to end: reap this runner's expired namespaces (once per
//! process), pack the context, render the manifests, create the namespace and its objects,
//! one Job per variant, follow every Job in parallel, and delete the namespace on every
//! path (success, failure, timeout, cancel, error; a guard covers drops and panics).

use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use futures::future::try_join_all;
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use tokio::sync::OnceCell;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::apply::{
    BUILD_ID_ANNOTATION, create_jobs, create_namespace, create_supporting_objects, delete_jobs,
    new_build_id,
};
use super::cleanup::{NamespaceGuard, reap_expired};
use super::cluster::KanikoBuilder;
use super::conditions::KANIKO_CONTAINER;
use super::manifests::{BuildManifests, ContextObjects, build_manifests};
use super::spec::{build_spec, config_for, pack_context};
use super::watch::VariantWatch;
use crate::build::{BuildError, BuildJob, BuildLog, BuildOutcome, BuiltImage};

/// Where the time of a build went, measured on the runner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildTimings {
    /// The build namespace.
    pub namespace: String,
    /// Bytes of the packed context (tar.gz).
    pub context_bytes: u64,
    /// From the start of the build to the context packed.
    pub packed: Duration,
    /// From the start of the build to every Job created (the runner-side latency).
    pub jobs_created: Duration,
    /// From the start of the build to every Job finished.
    pub finished: Duration,
}

/// The reaper runs once per process, at the first build.
static REAPED: OnceCell<()> = OnceCell::const_new();

impl KanikoBuilder {
    /// Runs one build; see [`KanikoBuilder::build_timed`].
    pub async fn build(
        &self,
        job: &BuildJob,
        log: &BuildLog,
        cancel: &CancellationToken,
    ) -> Result<BuildOutcome, BuildError> {
        self.build_timed(job, log, cancel).await.map(|(o, _)| o)
    }

    /// Runs one build and reports where its time went. Every variant is a Kaniko Job in
    /// the build's own namespace; the Jobs run in parallel and the first failure ends the
    /// build. `job.timeout` (from the start) and `cancel` delete the Jobs and end the build
    /// with [`BuildError::TimedOut`] / [`BuildError::Cancelled`]. The namespace is deleted
    /// before this returns, whatever the result.
    pub async fn build_timed(
        &self,
        job: &BuildJob,
        log: &BuildLog,
        cancel: &CancellationToken,
    ) -> Result<(BuildOutcome, BuildTimings), BuildError> {
        let started = Instant::now();
        let deadline = started + job.timeout;
        let prepared = tokio::select! {
            prepared = self.prepare(job) => prepared?,
            _ = cancel.cancelled() => return Err(BuildError::Cancelled),
            _ = tokio::time::sleep_until(deadline) => return Err(BuildError::TimedOut(job.timeout)),
        };
        let mut timings = BuildTimings {
            namespace: prepared.manifests.namespace.name_any(),
            context_bytes: prepared.context_bytes,
            packed: started.elapsed(),
            ..Default::default()
        };
        let guard = NamespaceGuard::new(
            self.client.clone(),
            (*self.kube_config).clone(),
            timings.namespace.clone(),
        );
        let owned = guard.owned_flag();
        let result = tokio::select! {
            result = self.run_in_namespace(&prepared.manifests, job, log, started, &owned) => result,
            _ = cancel.cancelled() => Err(BuildError::Cancelled),
            _ = tokio::time::sleep_until(deadline) => Err(BuildError::TimedOut(job.timeout)),
        };
        // The Jobs first (so the pods stop at once), unless the namespace is another build's.
        if matches!(result, Err(BuildError::Cancelled | BuildError::TimedOut(_)))
            && owned.load(std::sync::atomic::Ordering::SeqCst)
        {
            delete_jobs(&self.client, &prepared.manifests).await;
        }
        if let Err(e) = guard.delete().await {
            log.line(None, format!("warning: {e}"));
        }
        let (digests, jobs_created) = result?;
        timings.jobs_created = jobs_created;
        timings.finished = started.elapsed();
        let images = job
            .request
            .variants
            .iter()
            .zip(digests)
            .map(|(v, digest)| BuiltImage {
                variant: v.variant,
                digest,
                tags: v.tags.clone(),
            })
            .collect();
        Ok((BuildOutcome { images }, timings))
    }

    /// Everything before the first API call that creates something: the reaper (once per
    /// process, alongside the packing), the spec, the packed context and the manifests.
    async fn prepare(&self, job: &BuildJob) -> Result<Prepared, BuildError> {
        let spec = build_spec(job)?;
        let reap = REAPED.get_or_init(|| async {
            match reap_expired(&self.client, &self.config, SystemTime::now()).await {
                Ok(deleted) if !deleted.is_empty() => {
                    tracing::info!(?deleted, "reaped expired build namespaces");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reaping expired build namespaces failed"),
            }
        });
        let (_, packed) = tokio::join!(reap, pack_context(&spec));
        let packed = packed?;
        let config = config_for(&self.config, job);
        let mut manifests =
            build_manifests(&spec, &config, &job.task, &packed.targz, &packed.sha256)?;
        match &manifests.context {
            ContextObjects::ConfigMap(_) => {}
            ContextObjects::Pvc { .. } | ContextObjects::Stdin => {
                return Err(BuildError::Unavailable {
                    builder: "kaniko",
                    message: format!(
                        "the build context of {} is {} bytes packed, too large for a ConfigMap, and loading larger contexts (context_mode pvc or stdin) is not supported by this runner yet; shrink the context with a .dockerignore",
                        spec.context_dir.display(),
                        packed.targz.len()
                    ),
                });
            }
        }
        manifests
            .namespace
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(BUILD_ID_ANNOTATION.to_string(), new_build_id());
        if !job.request.push {
            for (_, j) in &mut manifests.jobs {
                add_no_push(j);
            }
        }
        Ok(Prepared {
            context_bytes: packed.targz.len() as u64,
            manifests,
        })
    }

    /// Creates the objects and follows the Jobs; the digests in variant order and the time
    /// from `started` to every Job created.
    async fn run_in_namespace(
        &self,
        m: &BuildManifests,
        job: &BuildJob,
        log: &BuildLog,
        started: Instant,
        owned: &AtomicBool,
    ) -> Result<(Vec<String>, Duration), BuildError> {
        create_namespace(&self.client, &self.config, m, log, owned).await?;
        create_supporting_objects(&self.client, m).await?;
        create_jobs(&self.client, m).await?;
        let jobs_created = started.elapsed();
        tracing::debug!(
            namespace = %m.namespace.name_any(),
            latency_ms = jobs_created.as_millis() as u64,
            "kaniko jobs created"
        );
        let watches = m.jobs.iter().map(|(variant, j)| {
            VariantWatch {
                client: self.client.clone(),
                namespace: m.namespace.name_any(),
                job_name: j.name_any(),
                variant: *variant,
                push: job.request.push,
                unschedulable_timeout: self.config.unschedulable_timeout,
            }
            .run(log.clone())
        });
        let digests = try_join_all(watches).await?;
        Ok((digests, jobs_created))
    }
}

#[derive(Debug)]
struct Prepared {
    manifests: BuildManifests,
    context_bytes: u64,
}

/// Builds without pushing (the request said `push: false`); Kaniko then needs no
/// destination credentials and reports no digest.
fn add_no_push(job: &mut Job) {
    let containers = job
        .spec
        .as_mut()
        .and_then(|s| s.template.spec.as_mut())
        .map(|p| p.containers.iter_mut());
    for c in containers.into_iter().flatten() {
        if c.name == KANIKO_CONTAINER {
            let args = c.args.get_or_insert_with(Vec::new);
            if !args.iter().any(|a| a == "--no-push") {
                args.push("--no-push".to_string());
            }
        }
    }
}
