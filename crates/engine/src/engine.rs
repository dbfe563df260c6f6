//! Run-wide settings and services every job shares: where events go, the action cache,
//! the runner's own environment, stop grace periods, scratch folders.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::contexts::RunInfo;
use super::events::{EventSink, JobKey};
use crate::hash_files::WorkspaceHasher;
use hr_process::host::StopPolicy;

/// Variables a job gets from the runner's own services (the cache server), one set per job
/// so that each carries a token of its own.
pub trait JobServicesEnv: Send + Sync + std::fmt::Debug {
    /// The variables of the job `job` (its id and display name in the run) and the
    /// values among them to mask. `cache_mode` is the job's effective `cache-mode:` when
    /// something limits it, for its token to carry.
    fn job_env(&self, job: &JobKey, cache_mode: Option<&str>) -> JobServicesVars;
}

/// What [`JobServicesEnv::job_env`] gives a job.
#[derive(Debug, Clone, Default)]
pub struct JobServicesVars {
    pub env: Vec<(String, String)>,
    pub masks: Vec<String>,
}

#[derive(Debug)]
pub struct Engine {
    pub run: RunInfo,
    pub sink: EventSink,
    pub cache: actions::ActionCache,
    pub stop: StopPolicy,
    /// `ACTIONS_STEP_DEBUG` / `RUNNER_DEBUG`: show `::debug::` lines.
    pub debug: bool,
    /// Report `::debug::` lines without step debugging (no `RUNNER_DEBUG`, `runner.debug`
    /// unset): `exec -v`, as act's verbose mode logs them.
    pub debug_lines: bool,
    /// The runner process's environment, captured once; steps inherit it, as they do on
    /// a GitHub self-hosted runner.
    pub host_env: Vec<(String, String)>,
    /// `--env` / `--env-file` values: the lowest level of the `env` context.
    pub cli_env: Vec<(String, String)>,
    /// The second Ctrl-C: stops even the `always()` and `post` steps that run after a cancel.
    pub hard_cancel: tokio_util::sync::CancellationToken,
    /// `-n`: evaluate steps, run no process.
    pub dry_run: bool,
    /// The run's image builder (made at the first build) and build flags.
    pub builds: Arc<crate::image_steps::BuildService>,
    /// `runner.name` and `RUNNER_NAME`.
    pub runner_name: String,
    /// What `actions/checkout` does.
    pub checkout: CheckoutMode,
    /// The runner's own cap on a job's run time (`runner.timeout`), on top of the job's
    /// `timeout-minutes`; whichever is shorter stops the job, which then fails.
    pub job_time_limit: Option<Duration>,
    /// Values masked in every job's lines besides its secrets (a task's tokens).
    pub masks: Vec<String>,
    /// How job pods are started (a cluster is configured); see [`crate::job_pod`].
    pub pods: Option<Arc<crate::job_pod::PodLauncher>>,
    /// Without [`Self::pods`]: how to give the runner a cluster, as the error of a job
    /// that needs one says.
    pub cluster_remedy: String,
    /// Open the toolkit's GHES gate in repository JavaScript actions (Gitea and Forgejo
    /// jobs, [`crate::toolkit_gate`]).
    pub open_ghes_gate: bool,
    /// The runner's services' variables for each job (under every `env` level).
    pub job_services: Option<Arc<dyn JobServicesEnv>>,
    job_serial: AtomicUsize,
}

/// How the runner serves `actions/checkout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckoutMode {
    /// `exec`: the workspace already is the repository; nothing is fetched.
    #[default]
    InPlace,
    /// A job from a server: the workspace starts empty, so the repository is fetched with
    /// git from `github.server_url` at `github.sha` (see [`super::checkout`]).
    Fetch,
}

impl Engine {
    pub fn new(
        run: RunInfo,
        sink: EventSink,
        cache: actions::ActionCache,
        stop: StopPolicy,
        cli_env: Vec<(String, String)>,
        hard_cancel: tokio_util::sync::CancellationToken,
    ) -> Self {
        let host_env: Vec<(String, String)> = std::env::vars().collect();
        let debug = host_env.iter().chain(cli_env.iter()).any(|(k, v)| {
            (k == "ACTIONS_STEP_DEBUG" || k == "RUNNER_DEBUG") && (v == "true" || v == "1")
        });
        Engine {
            run,
            sink,
            cache,
            stop,
            debug,
            debug_lines: false,
            host_env,
            cli_env,
            hard_cancel,
            dry_run: false,
            builds: Arc::default(),
            runner_name: "hybrid-runner".to_string(),
            checkout: CheckoutMode::InPlace,
            job_time_limit: None,
            masks: Vec::new(),
            pods: None,
            cluster_remedy:
                "run `hybrid-runner exec` with --kubeconfig FILE (or --container-backend kubernetes)"
                    .to_string(),
            open_ghes_gate: false,
            job_services: None,
            job_serial: AtomicUsize::new(0),
        }
    }

    /// A fresh scratch folder for one job run (`RUNNER_TEMP`).
    pub fn job_temp(&self, key: &JobKey) -> PathBuf {
        let n = self.job_serial.fetch_add(1, Ordering::Relaxed);
        let slug: String = key
            .id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        self.run.temp_root.join(format!("job-{n}-{slug}"))
    }

    pub fn tool_cache(&self) -> PathBuf {
        self.run.temp_root.join("tool-cache")
    }

    pub fn hasher(&self) -> WorkspaceHasher {
        WorkspaceHasher::new(&self.run.workspace)
    }

    /// The host's `PATH`.
    pub fn host_path(&self) -> String {
        self.host_env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".to_string())
    }
}
