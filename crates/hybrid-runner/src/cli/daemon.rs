//! `hybrid-runner daemon [-c FILE] [--once] [--labels LIST] [--jitconfig ENCODED]`: runs
//! the runner registered in the runner file: a GitHub runner's (or a JIT config's) through
//! [`daemon_github`], a pool of GitHub runners with `--github URL` ([`daemon_pool`]), else
//! the Gitea/Forgejo runner until a signal (exit 0 after draining), until its one
//! task is done (`--once`, ephemeral registrations; exit 0), or until the server refuses
//! its credentials (exit 1). Usage and configuration errors (no runner file, a bad label
//! or config) exit 2. Diagnostics go to stderr at `log.level`.
//!
//! The async runtime is multi-threaded with 8 MiB thread stacks: the job engine's
//! expression evaluation and workflow loading recurse deeply.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::{UsageError, daemon_github, daemon_pool, dotenv};
use hr_engine::image_steps::BuildSettings;
use hr_engine::pod::PodSettings;
use hr_gitea::config::{self, Config};
use hr_gitea::daemon::diagnostics::{StderrLog, chain};
use hr_gitea::daemon::work::{TaskWork, figures};
use hr_gitea::daemon::{self, DaemonExit, DaemonFlags, Ready, Shutdown};
use hr_gitea::report::{ReportCounters, ReportSettings};
use hr_gitea::task::TaskSettings;

/// The stack of every runtime thread.
const THREAD_STACK: usize = 8 << 20;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The config file (defaults, then this file, then HYBRID_RUNNER_* variables)
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run one task, report it, and exit
    #[arg(long)]
    pub once: bool,
    /// Labels, comma-separated (name:host, name:kubernetes, ...); they replace those of
    /// runner.labels and of the runner file, which is rewritten to match
    #[arg(long, value_name = "LIST")]
    pub labels: Option<String>,
    /// Run as the GitHub JIT runner of this encoded config (from generate-jitconfig):
    /// nothing is written, and the runner ends after its one job
    /// [env: ACTIONS_RUNNER_INPUT_JITCONFIG]
    #[arg(long, value_name = "ENCODED", conflicts_with = "github")]
    pub jitconfig: Option<String>,
    #[command(flatten)]
    pub pool: daemon_pool::PoolArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = config::load(args.config.as_deref()).map_err(|e| UsageError(e.to_string()))?;
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    let config = loaded.config;
    StderrLog::new(config.log.level).install();
    let labels = match &args.labels {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        None => config.runner.labels.clone(),
    };
    let flags = DaemonFlags {
        once: args.once,
        labels,
    };
    let envs = job_env(&config)?;
    if let Some(url) = &args.pool.github {
        return daemon_pool::run(&config, &args.pool, url, &flags.labels, envs);
    }
    let jitconfig = args.jitconfig.clone().or_else(|| {
        std::env::var(daemon_github::JITCONFIG_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty())
    });
    let github = match &jitconfig {
        Some(encoded) => Some(daemon_github::from_jitconfig(encoded)?),
        None => daemon_github::from_files(&config.runner.file)?,
    };
    if let Some(prepared) = github {
        return daemon_github::run(&config, prepared, flags.once, &flags.labels, envs);
    }
    let runtime = runtime()?;
    let exit = runtime.block_on(serve(&config, &flags, envs));
    // Left-over blocking work (a step's pipe reader) must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(5));
    match exit {
        Ok(DaemonExit::Stopped) => {
            tracing::info!("stopped");
            Ok(ExitCode::SUCCESS)
        }
        Ok(DaemonExit::Once) => Ok(ExitCode::SUCCESS),
        Ok(DaemonExit::Unauthenticated { instance, error }) => {
            tracing::debug!(error = %error, "the server's answer");
            eprintln!("error: {}", daemon::unauthenticated_message(&instance));
            Ok(ExitCode::FAILURE)
        }
        Err(e) if e.is_usage() => Err(UsageError(chain(&e)).into()),
        Err(e) => Err(e.into()),
    }
}

/// The daemon's runtime: multi-threaded, with deep stacks.
pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(THREAD_STACK)
        .thread_name("hybrid-runner-daemon")
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The daemon with the real task work: the engine and the reporter.
async fn serve(
    config: &Config,
    flags: &DaemonFlags,
    envs: Vec<(String, String)>,
) -> Result<DaemonExit, daemon::DaemonError> {
    let shutdown = Shutdown::default();
    if let Err(e) = daemon::listen_for_signals(shutdown.clone()) {
        tracing::warn!(error = %e, "cannot listen for SIGTERM/SIGINT");
    }
    let counters = ReportCounters::default();
    let retry = &config.runner.report_retry;
    let report_settings = ReportSettings {
        final_attempts: retry.max_retries,
        final_first_delay: retry.initial_delay,
        final_max_delay: retry.max_delay,
        ..ReportSettings::new(config.runner.spool_dir_or_default())
    };
    let metrics_counters = counters.clone();
    let cache = cache_access(&config.cache).await?;
    let make_work = |ready: Arc<Ready>| {
        let mut settings = task_settings(config, &ready, envs);
        settings.cache = cache;
        let work = TaskWork::new(ready.client.clone(), settings, report_settings, counters);
        async move {
            work.recover().await;
            move |task, control| work.run(task, control)
        }
    };
    daemon::run(
        config,
        flags,
        &shutdown,
        move || figures(&metrics_counters),
        make_work,
    )
    .await
}

/// The cache jobs reach (`cache:`): the daemon's own server, started here for its life,
/// an external one, or none.
async fn cache_access(
    cache: &config::CacheConfig,
) -> Result<job_services::CacheAccess, daemon::DaemonError> {
    if !cache.enabled {
        return Ok(job_services::CacheAccess::None);
    }
    if let Some(url) = &cache.external_server {
        return Ok(job_services::CacheAccess::External(url.clone()));
    }
    let services = job_services::JobServices::start(job_services::ServicesConfig {
        dir: cache
            .dir
            .clone()
            .unwrap_or_else(|| super::exec::cache_home().join("hybrid-runner/cache")),
        cache_limit: cache.max_size,
        listen: std::net::SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), cache.port),
        advertise_host: Some(cache.host.clone().unwrap_or_else(outbound_host)),
        artifact_dir: None,
    })
    .await?;
    tracing::info!(url = %services.url(), "cache server started");
    Ok(job_services::CacheAccess::Own(Arc::new(services)))
}

/// This machine's address on the route out (no packet is sent), else 127.0.0.1: where
/// act_runner's cache server tells jobs to find it.
fn outbound_host() -> String {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("192.0.2.1:9")?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .map_or_else(|| "127.0.0.1".to_string(), |ip| ip.to_string())
}

/// How tasks run, from the config and the declared registration.
fn task_settings(config: &Config, ready: &Ready, envs: Vec<(String, String)>) -> TaskSettings {
    let registration = &ready.identity.registration;
    let kube = &config.kubernetes;
    TaskSettings {
        instance: registration.address.clone(),
        runner_name: registration.name.clone(),
        labels: ready.identity.labels.clone(),
        capabilities: (!ready.server_capabilities.is_empty())
            .then(|| ready.server_capabilities.join(",")),
        workdir_parent: config.host.workdir_parent_or_default(&home()),
        action_cache: super::exec::cache_home().join("hybrid-runner/actions"),
        envs,
        builds: BuildSettings {
            kubeconfig: kube.kubeconfig.clone(),
            kube_context: kube.context.clone(),
            runner_id: registration.name.clone(),
            namespace_prefix: kube.namespace_prefix.clone(),
            insecure_registries: kube.insecure_registries.clone(),
            skip_tls_verify_registries: kube.skip_tls_verify_registries.clone(),
            action_image_repo: kube.cache_repo.clone(),
            ..BuildSettings::default()
        },
        timeout: config.runner.timeout,
        pods: pod_settings(kube),
        cache: job_services::CacheAccess::None,
        dialect: ready.dialect,
        github_mirror: config.runner.github_mirror.clone(),
        kubernetes_configured: kube.configured
            || kube.kubeconfig.is_some()
            || kube.context.is_some()
            || ready
                .identity
                .labels
                .iter()
                .any(|l| matches!(l.kind, hr_engine::labels::LabelKind::Kubernetes { .. })),
    }
}

/// How `kubernetes` labels' job pods are made.
pub(super) fn pod_settings(kube: &config::KubernetesConfig) -> PodSettings {
    PodSettings {
        image: kube.job_image.clone(),
        forwarder_image: kube.forwarder_image.clone(),
        requests: kube.job_resources.requests.clone(),
        limits: kube.job_resources.limits.clone(),
        expiry: kube.expiry,
        template_dir: kube.template_dir.clone(),
        ..PodSettings::default()
    }
}

/// `runner.env_file` (when it exists) then `runner.envs`, the later winning.
fn job_env(config: &Config) -> Result<Vec<(String, String)>, UsageError> {
    let mut env = Vec::new();
    let file: &Path = &config.runner.env_file;
    if file.is_file() {
        env.extend(dotenv::read("runner.env_file", file)?);
    }
    for (key, value) in &config.runner.envs {
        env.retain(|(k, _)| k != key);
        env.push((key.clone(), value.clone()));
    }
    Ok(env)
}

pub(super) fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}
