//! Image builds inside `exec`: the built-in build actions (`docker/build-push-action`,
//! `hybrid-runner/build`, served by the runner, never fetched) and the `docker`/`nerdctl`
//! shim of `run:` steps. Both lower to a `BuildRequest` (the `actions` crate) and run it
//! through the one [`ImageBuilder`] of the exec run, created at the first build so a
//! workflow without builds needs no builder.
//!
//! - [`builtin`]: a `uses:` build step: inputs -> request -> build -> step outputs.
//! - [`shim`]: the per-job shim folder on `PATH` and the Unix socket it talks to.
//! - [`protocol`]: the shim's request and reply lines.
//! - [`images`]: what the shim built and tagged (for `docker tag` + `docker push`).
//! - [`outputs`]: step outputs per `OutputsStyle`.

pub mod action_image;
pub mod builtin;
pub mod images;
pub mod outputs;
pub mod protocol;
pub mod shim;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::deploy_step::DeployCluster;
use hr_cluster::run_ids::{DEFAULT_RUNNER_ID, unique_task_id};
use hr_cluster::{ClusterError, TaskIds};
use hr_image::avoidance::build_avoiding;
use hr_image::kaniko::KanikoConfig;
use hr_image::registry::{DockerCredentials, RegistryClient, RegistryError};
use hr_image::select::{SelectOptions, select_builder};
use hr_image::{BuildError, BuildJob, BuildLog, BuildOutcome, BuilderChoice, ImageBuilder};

/// The longest a build may take when its step sets no `timeout-minutes` (GitHub's job limit).
pub const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(360 * 60);

/// `exec`'s build flags.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    /// `--builder`.
    pub builder: BuilderChoice,
    /// `--kubeconfig` [default: `KUBECONFIG`, `~/.kube/config`, in-cluster].
    pub kubeconfig: Option<PathBuf>,
    /// `--kube-context` [default: the kubeconfig's current context].
    pub kube_context: Option<String>,
    /// `--runner-id`: the runner id the build namespaces are labelled with.
    pub runner_id: String,
    /// `--namespace-prefix`: the prefix of the build namespaces' names.
    pub namespace_prefix: String,
    /// `--insecure-registry HOST:PORT`.
    pub insecure_registries: Vec<String>,
    /// `--skip-tls-verify-registry HOST:PORT`: HTTPS without verifying the certificate
    /// (Kaniko builds only).
    pub skip_tls_verify_registries: Vec<String>,
    /// `docker`/`nerdctl` on the steps' `PATH` go to the runner (off with `--no-docker-shim`).
    pub docker_shim: bool,
    /// Where the images of Docker actions built from a `Dockerfile` are pushed
    /// (`--action-image-repo`, the daemon's `kubernetes.cache_repo`); without it such
    /// actions are refused.
    pub action_image_repo: Option<String>,
}

impl Default for BuildSettings {
    fn default() -> Self {
        let kaniko = KanikoConfig::default();
        BuildSettings {
            builder: BuilderChoice::Auto,
            kubeconfig: None,
            kube_context: None,
            runner_id: DEFAULT_RUNNER_ID.to_string(),
            namespace_prefix: kaniko.namespace_prefix,
            insecure_registries: Vec::new(),
            skip_tls_verify_registries: Vec::new(),
            docker_shim: true,
            action_image_repo: None,
        }
    }
}

/// The builder, registry client and cluster connection of deploy steps of one exec run,
/// each made on first use and shared by every job.
#[derive(Debug, Default)]
pub struct BuildService {
    pub settings: BuildSettings,
    /// The builder, or why none could be made (every build of the run reports it).
    builder: OnceCell<Result<Arc<ImageBuilder>, Arc<BuildError>>>,
    registry: OnceCell<Result<Arc<RegistryClient>, Arc<RegistryError>>>,
    /// The cluster `hybrid-runner/deploy` steps talk to, or why there is none.
    deploy_cluster: OnceCell<Result<Arc<DeployCluster>, Arc<ClusterError>>>,
    /// The folder of the `docker`/`nerdctl` executables, written at the first job.
    shim_dir: std::sync::OnceLock<Result<PathBuf, Arc<shim::ShimError>>>,
    /// The task id of every build of this run, unique per exec invocation.
    task: std::sync::OnceLock<String>,
    /// How many builds this run has started: each gets its own namespace.
    builds_started: AtomicUsize,
}

impl BuildService {
    pub fn new(settings: BuildSettings) -> BuildService {
        BuildService {
            settings,
            builder: OnceCell::new(),
            registry: OnceCell::new(),
            deploy_cluster: OnceCell::new(),
            shim_dir: std::sync::OnceLock::new(),
            task: std::sync::OnceLock::new(),
            builds_started: AtomicUsize::new(0),
        }
    }

    /// Whose build the next build of job `job` (a job or matrix leg) is: the run's task id
    /// (`exec-<suffix>`, unique per invocation, so two exec runs never share a namespace)
    /// and the job id with the run's build number (`build-3`), so concurrent legs of a
    /// matrix and consecutive builds of one job never share one either.
    pub fn task_ids(&self, job: &str) -> TaskIds {
        let task = self.task.get_or_init(|| unique_task_id("exec")).clone();
        let number = self.builds_started.fetch_add(1, Ordering::Relaxed) + 1;
        TaskIds {
            task,
            job: format!("{job}-{number}"),
            started_at: std::time::SystemTime::now(),
        }
    }

    /// The run's shim folder under `temp_root`, its executables calling this binary.
    pub fn shim_dir(&self, temp_root: &Path) -> Result<PathBuf, Arc<shim::ShimError>> {
        self.shim_dir
            .get_or_init(|| {
                let runner = std::env::current_exe().map_err(shim::ShimError::CurrentExe)?;
                let dir = temp_root.join("docker-shim");
                shim::write_executables(&dir, &runner)?;
                Ok(dir)
            })
            .clone()
    }

    /// The run's builder, chosen by `--builder` on the first call.
    pub async fn builder(&self) -> Result<Arc<ImageBuilder>, Arc<BuildError>> {
        self.builder
            .get_or_init(|| async {
                create_builder(&self.settings)
                    .await
                    .map(Arc::new)
                    .map_err(Arc::new)
            })
            .await
            .clone()
    }

    /// The run's registry client (the runner's own Docker credentials).
    pub async fn registry(&self) -> Result<Arc<RegistryClient>, Arc<RegistryError>> {
        self.registry
            .get_or_init(|| async {
                DockerCredentials::from_environment()
                    .and_then(|c| RegistryClient::new(&self.settings.insecure_registries, c))
                    .map(Arc::new)
                    .map_err(Arc::new)
            })
            .await
            .clone()
    }

    /// The cluster of `--kubeconfig` / `--kube-context` (the builder's and the job pods'),
    /// for `hybrid-runner/deploy` steps.
    pub async fn deploy_cluster(&self) -> Result<Arc<DeployCluster>, Arc<ClusterError>> {
        self.deploy_cluster
            .get_or_init(|| async {
                crate::deploy_step::connect(&self.settings)
                    .await
                    .map(Arc::new)
                    .map_err(Arc::new)
            })
            .await
            .clone()
    }

    /// Runs `job` to the end on the run's builder. Past `job.timeout` the build is cancelled
    /// (so the builder cleans up) and reported as timed out.
    pub async fn build(
        &self,
        job: &BuildJob,
        log: &BuildLog,
        cancel: &CancellationToken,
    ) -> Result<BuildOutcome, BuildFailure> {
        let builder = self.builder().await.map_err(BuildFailure::Failed)?;
        // Avoidance never fails a build: without a registry client it builds normally.
        let registry = if job.request.skip_unchanged {
            match self.registry().await {
                Ok(registry) => Some(registry),
                Err(e) => {
                    log.line(None, format!("skip-unchanged is off for this build: {e}"));
                    None
                }
            }
        } else {
            None
        };
        let stop = cancel.child_token();
        let build = async {
            match &registry {
                Some(registry) => build_avoiding(&builder, job, log, &stop, registry)
                    .await
                    .map(|avoided| avoided.outcome),
                None => builder.build(job, log, &stop).await,
            }
        };
        tokio::pin!(build);
        let deadline = tokio::time::sleep(job.timeout);
        tokio::pin!(deadline);
        let mut timed_out = false;
        let result = loop {
            tokio::select! {
                result = &mut build => break result,
                _ = &mut deadline, if !timed_out => {
                    timed_out = true;
                    stop.cancel();
                }
            }
        };
        match result {
            Ok(outcome) => Ok(outcome),
            Err(BuildError::Cancelled) if timed_out => Err(BuildFailure::Failed(Arc::new(
                BuildError::TimedOut(job.timeout),
            ))),
            Err(BuildError::Cancelled) => Err(BuildFailure::Cancelled),
            Err(e) => Err(BuildFailure::Failed(Arc::new(e))),
        }
    }
}

/// Why a build step did not produce images.
#[derive(Debug, Clone)]
pub enum BuildFailure {
    /// The step was cancelled (Ctrl-C, the shim went away); the builder cleaned up.
    Cancelled,
    /// The build failed, timed out or no builder could be made (shared: a builder that
    /// could not be made fails every build of the run with the same error).
    Failed(Arc<BuildError>),
}

/// Why a built-in build step (`uses: docker/build-push-action`, `hybrid-runner/build`)
/// failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageStepError {
    /// `with:` cannot be lowered to a build request; the message carries the remedy.
    #[error(transparent)]
    Inputs(#[from] actions::image_build::BuildInputError),
    /// The build failed, timed out or no builder could be made.
    #[error("{uses}: {source}")]
    Failed {
        uses: String,
        #[source]
        source: Arc<BuildError>,
    },
}

/// The builder `--builder` names (`auto`: Kubernetes when a kubeconfig or in-cluster
/// config works, else the first local builder), found with the runner's own environment.
async fn create_builder(settings: &BuildSettings) -> Result<ImageBuilder, BuildError> {
    let kaniko = KanikoConfig {
        runner_id: settings.runner_id.clone(),
        namespace_prefix: settings.namespace_prefix.clone(),
        insecure_registries: settings.insecure_registries.clone(),
        skip_tls_verify_registries: settings.skip_tls_verify_registries.clone(),
        ..KanikoConfig::default()
    };
    let mut options = SelectOptions::from_process(settings.kubeconfig.clone(), kaniko);
    options.kube_context = settings.kube_context.clone();
    select_builder(settings.builder, &options).await
}

/// A build line as the step log shows it: `[docker] STEP 1/2: FROM scratch`.
pub fn log_line(line: &hr_image::BuildLogLine) -> String {
    match line.variant {
        Some(variant) => format!("[{variant}] {}", line.line),
        None => line.line.clone(),
    }
}
