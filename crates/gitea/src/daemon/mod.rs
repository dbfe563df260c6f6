//! `hybrid-runner daemon`: the long-running Gitea/Forgejo runner. It owns start-up (the
//! runner file under its lock, labels, `Declare`, clearing what a killed predecessor left:
//! [`startup`]), the one poll loop with its capacity, `tasks_version` cache, backoff and
//! draining shutdown ([`poller`], [`backoff`]), signals, and the `/metrics`, `/healthz`,
//! `/readyz` endpoints ([`metrics`], [`http`]). What one task does (the job engine and the
//! reporter) is handed in by the caller, so the loop is tested with a fake task.
//!
//! Exit paths: a signal drains (`runner.shutdown_timeout`, then cancel, final reports
//! still sent) and ends [`DaemonExit::Stopped`]; `--once` and ephemeral registrations end
//! [`DaemonExit::Once`] after one task; a refused token ends
//! [`DaemonExit::Unauthenticated`] once running tasks are done.

pub mod backoff;
pub mod diagnostics;
pub mod http;
pub mod metrics;
pub mod poller;
pub mod server_kind;
pub mod startup;
pub mod work;

use std::future::Future;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use metrics::{DaemonMetrics, ReportFigures};
pub use poller::{PollEnd, PollSettings, Shutdown, TaskControl, poll};
pub use startup::{Identity, StartError};

use crate::config::Config;
use crate::proto::runner::v1::{Result as TaskResult, Task};
use crate::{ClientOptions, RpcError, RunnerClient};

/// The daemon's command-line choices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DaemonFlags {
    /// `--once`: one task, then exit.
    pub once: bool,
    /// `--labels`, else `runner.labels`; empty = the runner file's.
    pub labels: Vec<String>,
}

/// How the daemon ended.
#[derive(Debug)]
pub enum DaemonExit {
    /// Stopped by a signal, running tasks drained.
    Stopped,
    /// The one task of `--once` or of an ephemeral runner is done.
    Once,
    /// The server no longer accepts this runner's credentials.
    Unauthenticated { instance: String, error: RpcError },
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("cannot set up the client of {instance}")]
    Client {
        instance: String,
        #[source]
        source: RpcError,
    },
    #[error(transparent)]
    Metrics(#[from] http::HttpError),
    /// The cache server (`cache:`) did not start.
    #[error(transparent)]
    Cache(#[from] job_services::StartError),
}

impl DaemonError {
    /// Usage and configuration errors (exit 2).
    pub fn is_usage(&self) -> bool {
        match self {
            DaemonError::Start(e) => e.is_usage(),
            DaemonError::Client { .. } => true,
            DaemonError::Metrics(_) => false,
            DaemonError::Cache(_) => true,
        }
    }
}

/// What the task work is built from once the runner is declared.
#[derive(Debug)]
pub struct Ready {
    /// A client proving the runner's credentials.
    pub client: RunnerClient,
    pub identity: Identity,
    /// The server's `X-Gitea-Actions-Capabilities`, empty when it sent none.
    pub server_capabilities: Vec<String>,
    /// Gitea or Forgejo, by the server's version ([`server_kind`]).
    pub dialect: workflows::model::Dialect,
    pub metrics: Arc<DaemonMetrics>,
}

/// Runs the daemon until it ends: start-up, `Declare`, then the poll loop with the task
/// work `make_work` builds from [`Ready`] (it may do async start-up of its own, such as
/// finishing the reports of a killed predecessor). `report` reads the reporter's counters
/// for `/metrics`.
pub async fn run<M, MF, F, Fut, R>(
    config: &Config,
    flags: &DaemonFlags,
    shutdown: &Shutdown,
    report: R,
    make_work: M,
) -> Result<DaemonExit, DaemonError>
where
    M: FnOnce(Arc<Ready>) -> MF,
    MF: Future<Output = F>,
    F: FnMut(Task, TaskControl) -> Fut,
    Fut: Future<Output = TaskResult> + Send + 'static,
    R: Fn() -> ReportFigures + Send + Sync + 'static,
{
    let runner = &config.runner;
    let identity = startup::load_identity(&runner.file, &flags.labels)?;
    // Step scripts and command files a killed predecessor left in the temp folder.
    for folder in hr_engine::scratch::remove_abandoned() {
        tracing::info!(folder = %folder.display(), "removed a scratch folder a stopped run left");
    }
    let instance = identity.registration.address.clone();
    let client = RunnerClient::new(
        &instance,
        ClientOptions {
            insecure: runner.insecure,
            fetch_timeout: runner.fetch_timeout,
            ..ClientOptions::default()
        },
    )
    .map_err(|source| DaemonError::Client {
        instance: instance.clone(),
        source,
    })?
    .with_credentials(identity.registration.credentials());
    let metrics = Arc::new(DaemonMetrics::new(
        runner.capacity,
        config.metrics.readiness_grace,
    ));
    {
        let metrics = Arc::clone(&metrics);
        let stop = shutdown.stop.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            metrics.set_shutting_down();
        });
    }
    let server_stop = CancellationToken::new();
    let _stop_server = server_stop.clone().drop_guard();
    if config.metrics.enabled {
        let server = http::MetricsServer::bind(config.metrics.addr).await?;
        if let Some(addr) = server.local_addr() {
            tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
        }
        tokio::spawn(server.serve(
            Arc::clone(&metrics),
            hr_image::metrics::process(),
            report,
            server_stop.clone(),
        ));
    }
    startup::stop_previous_processes(&identity.runner_file).await;
    let kube = &config.kubernetes;
    match kube.kaniko(&identity.registration.name) {
        Ok(kaniko) => {
            tokio::spawn(startup::reap_build_namespaces_periodically(
                kube.kubeconfig.clone(),
                kube.context.clone(),
                kaniko,
                startup::REAP_INTERVAL,
                shutdown.stop.clone(),
            ));
        }
        Err(e) => {
            tracing::warn!(error = %diagnostics::chain(&e), "expired build namespaces are not reaped")
        }
    }

    let declared = match startup::declare(
        &client,
        &instance,
        &identity.labels,
        runner.fetch_interval,
        runner.fetch_interval_max,
        &shutdown.stop,
    )
    .await
    {
        Ok(declared) => declared,
        Err(StartError::Stopped) => return Ok(DaemonExit::Stopped),
        Err(StartError::Unauthenticated { instance, source }) => {
            return Ok(DaemonExit::Unauthenticated {
                instance,
                error: source,
            });
        }
        Err(e) => return Err(e.into()),
    };
    metrics.set_declared();
    let once = flags.once || identity.registration.ephemeral;
    tracing::info!(
        runner = %identity.registration.name,
        instance = %instance,
        labels = ?hr_engine::labels::names(&identity.labels),
        capacity = runner.capacity,
        once,
        "declared; polling for tasks"
    );
    let settings = PollSettings::from_config(runner, once);
    let dialect = server_kind::server_dialect(&client, &instance).await;
    let ready = Arc::new(Ready {
        client: client.clone(),
        identity,
        server_capabilities: declared.server_capabilities,
        dialect,
        metrics: Arc::clone(&metrics),
    });
    let work = make_work(Arc::clone(&ready)).await;
    let end = poll(&client, &settings, shutdown, &metrics, work).await;
    metrics.set_shutting_down();
    Ok(match end {
        PollEnd::Stopped => DaemonExit::Stopped,
        PollEnd::Once => DaemonExit::Once,
        PollEnd::Unauthenticated(error) => DaemonExit::Unauthenticated { instance, error },
    })
}

/// Turns SIGTERM/SIGINT into `shutdown`: the first stops fetching (and makes `/readyz`
/// unready), the second cancels everything at once.
pub fn listen_for_signals(shutdown: Shutdown) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use hr_process::stop_signals::StopSignals;
    let mut signals = StopSignals::new(StopSignals::DAEMON)?;
    Ok(tokio::spawn(async move {
        let first = signals.next().await;
        tracing::info!(
            signal = first.name(),
            "stopping: no new tasks; running tasks drain (a second signal cancels them at once)"
        );
        shutdown.stop.cancel();
        let second = signals.next().await;
        tracing::warn!(
            signal = second.name(),
            "second signal: cancelling every running task now"
        );
        shutdown.hard.cancel();
    }))
}

/// The line printed when the server refused the runner's credentials (exit 1).
pub fn unauthenticated_message(instance: &str) -> String {
    format!(
        "{instance} refused this runner's credentials (it was deleted or re-registered); register again with hybrid-runner register"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_first_signal_stops_fetching_and_the_second_cancels_everything() {
        use nix::sys::signal::{Signal, raise};
        let shutdown = Shutdown::default();
        let listening = listen_for_signals(shutdown.clone()).unwrap();
        raise(Signal::SIGTERM).unwrap();
        tokio::time::timeout(Duration::from_secs(5), shutdown.stop.cancelled())
            .await
            .unwrap();
        assert!(!shutdown.hard.is_cancelled());
        raise(Signal::SIGINT).unwrap();
        tokio::time::timeout(Duration::from_secs(5), shutdown.hard.cancelled())
            .await
            .unwrap();
        listening.await.unwrap();
    }

    #[test]
    fn the_unauthenticated_message_is_the_contracts() {
        assert_eq!(
            unauthenticated_message("https://gitea.example.com"),
            "https://gitea.example.com refused this runner's credentials (it was deleted or re-registered); register again with hybrid-runner register"
        );
    }
}
