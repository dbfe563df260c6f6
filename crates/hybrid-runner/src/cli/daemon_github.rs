//! `hybrid-runner daemon` for a GitHub runner: with the runner file a `register --github`
//! wrote (`.runner`, `.credentials`, `.credentials_rsaparams`), or with a JIT config
//! (`--jitconfig ENCODED`, or `ACTIONS_RUNNER_INPUT_JITCONFIG` as ARC gives its runner
//! pods: nothing is written, and the runner ends after its one job). Exit 0 after a stop
//! signal or the one job; 1 when GitHub refuses the runner.
//!
//! Labels (their placement: `name:host`, `name:kubernetes://image`) come from `--labels`,
//! else `runner.labels`, else the runner file's `labels`, else `self-hosted:host`: GitHub
//! only sends a runner the jobs its labels match, and the job message names none of them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use super::UsageError;
use super::register_github::credential_files;
use hr_engine::image_steps::BuildSettings;
use hr_engine::labels::{Label, LabelKind};
use hr_gitea::config::Config;
use hr_gitea::daemon::Shutdown;
use hr_gitea::registration::RegistrationLock;
use hr_github::daemon::{DaemonExit, DaemonOptions, GitHubRunner};
use hr_github::job_lock::LockTimings;
use hr_github::registration::DEFAULT_RUNNER_VERSION;
use hr_github::run_job::JobSettings;
use hr_github::{JitConfig, OAuthCredentials, RunnerKey, RunnerSettings};
use tokio_util::sync::CancellationToken;

/// The variable ARC hands its runner pods the JIT config in.
pub const JITCONFIG_ENV: &str = "ACTIONS_RUNNER_INPUT_JITCONFIG";

/// The variable that overrides the actions/runner version reported to the broker.
pub const VERSION_ENV: &str = "HYBRID_RUNNER_GITHUB_RUNNER_VERSION";

/// A GitHub runner ready to listen, and where its job-in-flight record goes.
pub struct Prepared {
    pub runner: GitHubRunner,
    pub file_labels: Vec<String>,
    pub in_flight: Option<PathBuf>,
    pub once: bool,
    /// The runner file's `workFolder`, absolute (relative to the runner file's folder,
    /// as actions/runner takes it relative to its root); `None`: `host.workdir_parent`.
    pub work_folder: Option<PathBuf>,
    /// The runner file's lock, held while the daemon runs (a second daemon on the same
    /// registration would fight for its broker session).
    pub lock: Option<RegistrationLock>,
}

/// The runner of a JIT config.
pub fn from_jitconfig(encoded: &str) -> Result<Prepared, UsageError> {
    let jit = JitConfig::decode(encoded.trim())
        .map_err(|e| UsageError(format!("the JIT config cannot be read: {e}")))?;
    Ok(Prepared {
        runner: GitHubRunner {
            settings: jit.settings,
            credentials: jit.credentials,
            key: jit.key,
        },
        file_labels: Vec::new(),
        in_flight: None,
        once: true,
        work_folder: None,
        lock: None,
    })
}

/// The runner of `runner_file` when it is a GitHub runner's file (`None`: it is not, or
/// it does not exist).
pub fn from_files(runner_file: &Path) -> Result<Option<Prepared>, UsageError> {
    let Ok(text) = std::fs::read_to_string(runner_file) else {
        return Ok(None);
    };
    let Ok(settings) = RunnerSettings::parse(&text) else {
        return Ok(None);
    };
    let lock = RegistrationLock::acquire(runner_file).map_err(|e| UsageError(e.to_string()))?;
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|e| {
            UsageError(format!(
                "{} is a GitHub runner's file, but {} cannot be read ({e}); register again",
                runner_file.display(),
                path.display()
            ))
        })
    };
    let (credentials_file, key_file) = credential_files(runner_file);
    let credentials = OAuthCredentials::parse(&read(&credentials_file)?)
        .map_err(|e| UsageError(format!("{}: {e}", credentials_file.display())))?;
    let key_text = read(&key_file)?;
    let key = serde_json::from_str(key_text.trim_start_matches('\u{feff}'))
        .map_err(|e| e.to_string())
        .and_then(|doc| RunnerKey::from_rsa_parameters(&doc).map_err(|e| e.to_string()))
        .map_err(|e| UsageError(format!("{}: {e}", key_file.display())))?;
    let doc: serde_json::Value =
        serde_json::from_str(text.trim_start_matches('\u{feff}')).unwrap_or_default();
    let file_labels = doc["labels"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let once = settings.ephemeral;
    let folder = runner_file.parent().unwrap_or(Path::new("."));
    let work_folder = settings
        .work_folder
        .as_deref()
        .filter(|w| !w.is_empty())
        .map(|w| std::path::absolute(folder.join(w)))
        .transpose()
        .map_err(|e| UsageError(format!("the runner's work folder cannot be resolved: {e}")))?;
    Ok(Some(Prepared {
        runner: GitHubRunner {
            settings,
            credentials,
            key,
        },
        file_labels,
        in_flight: Some(runner_file.with_file_name(".runner-job")),
        once,
        work_folder,
        lock: Some(lock),
    }))
}

/// Runs the listener until a signal, or its one job.
pub fn run(
    config: &Config,
    prepared: Prepared,
    once: bool,
    labels: &[String],
    envs: Vec<(String, String)>,
) -> anyhow::Result<ExitCode> {
    let texts: Vec<String> = if !labels.is_empty() {
        labels.to_vec()
    } else if !prepared.file_labels.is_empty() {
        prepared.file_labels.clone()
    } else {
        vec!["self-hosted:host".to_string()]
    };
    let labels = Label::parse_all(&texts).map_err(|e| UsageError(e.to_string()))?;
    // Held until the daemon ends.
    let _lock = &prepared.lock;
    let work_folder = prepared.work_folder.clone();
    let name = prepared.runner.settings.agent_name.clone();
    let mut options = daemon_options(config, &name, labels, envs, work_folder);
    options.once = once || prepared.once;
    options.in_flight = prepared.in_flight.clone();
    serve(config, |http, stop, hard| async move {
        hr_github::daemon::run(http, prepared.runner, options, stop, hard)
            .await
            .map(|exit| match exit {
                DaemonExit::Stopped => "stopped",
                DaemonExit::Once => "its one job is done",
            })
            .map_err(|e| e.to_string())
    })
}

/// How a runner of this config runs jobs (one runner: `once` off, no job record).
pub fn daemon_options(
    config: &Config,
    name: &str,
    labels: Vec<Label>,
    envs: Vec<(String, String)>,
    work_folder: Option<PathBuf>,
) -> DaemonOptions {
    let kube = &config.kubernetes;
    let kubernetes_configured = kube.configured
        || kube.kubeconfig.is_some()
        || kube.context.is_some()
        || labels
            .iter()
            .any(|l| matches!(l.kind, LabelKind::Kubernetes { .. }));
    let job = JobSettings {
        runner_name: name.to_string(),
        labels,
        work_folder: work_folder.unwrap_or_else(|| {
            config
                .host
                .workdir_parent_or_default(&super::daemon::home())
        }),
        action_cache: super::exec::cache_home().join("hybrid-runner/actions"),
        envs,
        builds: BuildSettings {
            kubeconfig: kube.kubeconfig.clone(),
            kube_context: kube.context.clone(),
            runner_id: name.to_string(),
            namespace_prefix: kube.namespace_prefix.clone(),
            insecure_registries: kube.insecure_registries.clone(),
            skip_tls_verify_registries: kube.skip_tls_verify_registries.clone(),
            action_image_repo: kube.cache_repo.clone(),
            ..BuildSettings::default()
        },
        pods: super::daemon::pod_settings(kube),
        kubernetes_configured,
        timeout: config.runner.timeout,
    };
    DaemonOptions {
        once: false,
        version: std::env::var(VERSION_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_RUNNER_VERSION.to_string()),
        job,
        in_flight: None,
        // `runner.report_retry` paces the final call, as it paces a Gitea task's; at
        // least actions/runner's 10 attempts.
        lock: LockTimings {
            complete_attempts: config.runner.report_retry.max_retries.max(10),
            complete_interval: config.runner.report_retry.initial_delay,
            complete_max_interval: config
                .runner
                .report_retry
                .max_delay
                .unwrap_or(Duration::from_secs(60)),
            ..LockTimings::default()
        },
        session_retry: Duration::from_secs(5),
        max_backoff: Duration::from_secs(30),
    }
}

/// Runs `listen` (given the HTTP client and the stop and hard-stop tokens of SIGTERM /
/// SIGINT) on the daemon's runtime: exit 0 with its `Ok` (said at info level), 1 with its
/// error on stderr.
pub fn serve<F, Fut>(config: &Config, listen: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(hr_github::reqwest::Client, CancellationToken, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<&'static str, String>>,
{
    hr_cluster::install_crypto_provider();
    let http =
        hr_github::http_client(config.runner.insecure).context("cannot create an HTTP client")?;
    let runtime = super::daemon::runtime()?;
    let exit = runtime.block_on(async {
        let shutdown = Shutdown::default();
        if let Err(e) = hr_gitea::daemon::listen_for_signals(shutdown.clone()) {
            tracing::warn!(error = %e, "cannot listen for SIGTERM/SIGINT");
        }
        listen(http, shutdown.stop, shutdown.hard).await
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    match exit {
        Ok(how) => {
            tracing::info!("{how}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
