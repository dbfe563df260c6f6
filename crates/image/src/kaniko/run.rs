//! One build on the cluster, start to end: reap this runner's expired namespaces (once per
//! process), pack the context, render the manifests, create the namespace, hold its build
//! lease while the build runs, create its objects,
//! load a large context (PVC mode: the loader pod over attach), one Job per variant, follow
//! every Job in parallel (stdin mode: sending each its context over attach), and delete the
//! namespace on every path (success, failure, timeout, cancel, error, also mid-upload; a
//! guard covers drops and panics).

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
use super::builder::KanikoBuilder;
use super::conditions::KANIKO_CONTAINER;
use super::manifests::{BuildManifests, ContextObjects, build_manifests_packed};
use super::spec::{PackedFile, build_spec, cache_dropped, config_for, pack_context};
use super::upload::{load_context_volume, watch_with_stdin};
use super::watch::VariantWatch;
use crate::{BuildError, BuildJob, BuildLog, BuildOutcome, BuiltImage};
use hr_cluster::leases::{RENEW_EVERY, hold_build_lease};
use hr_cluster::namespaces::{NamespaceGuard, reap_expired};

/// Where the time of a build went, measured on the runner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildTimings {
    /// The build namespace.
    pub namespace: String,
    /// Bytes of the packed context (tar.gz).
    pub context_bytes: u64,
    /// From the start of the build to the context packed.
    pub packed: Duration,
    /// From the start of the build to the context loaded into its volume (PVC mode only).
    pub context_loaded: Option<Duration>,
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
            prepared = self.prepare(job, log) => prepared?,
            _ = cancel.cancelled() => return Err(BuildError::Cancelled),
            _ = tokio::time::sleep_until(deadline) => return Err(BuildError::TimedOut(job.timeout)),
        };
        let mut timings = BuildTimings {
            namespace: prepared.manifests.namespace.name_any(),
            context_bytes: prepared.packed.size,
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
            result = self.run_in_namespace(&prepared, job, log, started, &owned) => result,
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
        let ran = result?;
        timings.jobs_created = ran.jobs_created;
        timings.context_loaded = ran.context_loaded;
        let digests = ran.digests;
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
    /// Says in `log` when the layer cache had to be turned off for this build.
    async fn prepare(&self, job: &BuildJob, log: &BuildLog) -> Result<Prepared, BuildError> {
        let spec = build_spec(job)?;
        let reap = REAPED.get_or_init(|| async {
            match reap_expired(&self.client, &self.config.runner_id, SystemTime::now()).await {
                Ok(deleted) if !deleted.is_empty() => {
                    tracing::info!(?deleted, "reaped expired build namespaces");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reaping expired build namespaces failed"),
            }
        });
        let (_, packed) = tokio::join!(reap, pack_context(&spec));
        let packed = packed?;
        if let Some(note) = cache_dropped(&self.config, job) {
            log.line(None, note);
        }
        let config = config_for(&self.config, job);
        let mut manifests = build_manifests_packed(&spec, &config, &job.task, &packed)?;
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
        Ok(Prepared { manifests, packed })
    }

    /// Creates the namespace, then holds its build lease (see [`hr_cluster::leases`]) while
    /// the rest runs.
    async fn run_in_namespace(
        &self,
        prepared: &Prepared,
        job: &BuildJob,
        log: &BuildLog,
        started: Instant,
        owned: &AtomicBool,
    ) -> Result<Ran, BuildError> {
        let m = &prepared.manifests;
        create_namespace(&self.client, &self.config, m, log, owned).await?;
        let lease = hold_build_lease(
            self.client.clone(),
            m.namespace.name_any(),
            self.config.runner_id.clone(),
            RENEW_EVERY,
        );
        tokio::select! {
            ran = self.run_leased(prepared, job, log, started) => ran,
            never = lease => match never {},
        }
    }

    /// Creates the objects, loads a large context, creates and follows the Jobs.
    async fn run_leased(
        &self,
        prepared: &Prepared,
        job: &BuildJob,
        log: &BuildLog,
        started: Instant,
    ) -> Result<Ran, BuildError> {
        let m = &prepared.manifests;
        let namespace = m.namespace.name_any();
        create_supporting_objects(&self.client, m).await?;
        let mut context_loaded = None;
        if let ContextObjects::Pvc { pvc, loader } = &m.context {
            load_context_volume(
                &self.client,
                &namespace,
                loader,
                &pvc.name_any(),
                &prepared.packed,
                self.config.unschedulable_timeout,
                log,
            )
            .await?;
            context_loaded = Some(started.elapsed());
        }
        create_jobs(&self.client, m).await?;
        let jobs_created = started.elapsed();
        tracing::debug!(
            namespace = %namespace,
            latency_ms = jobs_created.as_millis() as u64,
            "kaniko jobs created"
        );
        let stdin = matches!(m.context, ContextObjects::Stdin);
        let watches = m.jobs.iter().map(|(variant, j)| {
            let watch = VariantWatch {
                client: self.client.clone(),
                namespace: namespace.clone(),
                job_name: j.name_any(),
                variant: *variant,
                push: job.request.push,
                unschedulable_timeout: self.config.unschedulable_timeout,
            }
            .run(log.clone());
            let namespace = namespace.clone();
            let job_name = j.name_any();
            async move {
                if stdin {
                    watch_with_stdin(
                        watch,
                        &self.client,
                        &namespace,
                        &job_name,
                        KANIKO_CONTAINER,
                        &prepared.packed,
                    )
                    .await
                } else {
                    watch.await
                }
            }
        });
        let digests = try_join_all(watches).await?;
        Ok(Ran {
            digests,
            jobs_created,
            context_loaded,
        })
    }
}

/// What a build in its namespace produced: the digests in variant order, and when (from
/// the start) every Job was created and the context loaded.
struct Ran {
    digests: Vec<String>,
    jobs_created: Duration,
    context_loaded: Option<Duration>,
}

#[derive(Debug)]
struct Prepared {
    manifests: BuildManifests,
    /// The packed context, streamed from its file over attach in PVC and stdin modes; the
    /// file goes when the build's `Prepared` does.
    packed: PackedFile,
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
