//! The GitHub runner's listener, as actions/runner's `Runner.Listener` runs it on the V2
//! flow: a broker session, long polls for messages, and for each job request: acknowledge,
//! `acquirejob`, the first renewal, the job through the engine ([`crate::run_job`]) with
//! its events shipped ([`crate::report`]) while the lock is renewed, and `completejob`.
//! One job at a time (a registration is one runner, as on GitHub); polls go on while it
//! runs, as `Busy`, so a `JobCancellation` reaches it. `--once` (and every ephemeral or JIT
//! runner) ends after its job.
//!
//! A job in flight is recorded in a file beside the runner's (when there is one): a runner
//! killed mid-job finds the record when it starts again and reports that job failed.
//! `stop` (the first SIGTERM) takes no more jobs and lets the running one finish; `hard`
//! (the second) cancels it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::broker::{
    BrokerClient, BrokerError, BrokerMessage, JobRequest, RunnerIdentity, RunnerStatus, Session,
};
use crate::files::{OAuthCredentials, RunnerSettings};
use crate::in_flight;
use crate::job::JobMessage;
use crate::job_lock::{JobLock, LockTimings};
use crate::key::RunnerKey;
use crate::live_console::LiveConsole;
use crate::oauth::TokenSource;
use crate::report::Reporter;
use crate::results::{JobIds, ResultsClient};
use crate::run_job::{JobSettings, run_job};
use crate::run_service::RunService;
use hr_engine::events::EventSink;

/// How long a cancelled job's `always()` steps may take before they are stopped too
/// (actions/runner's default job cancel timeout).
pub const CANCEL_GRACE: Duration = Duration::from_secs(300);

/// The runner's identity: its settings, credentials and key (from its files or a JIT
/// config).
#[derive(Debug, Clone)]
pub struct GitHubRunner {
    pub settings: RunnerSettings,
    pub credentials: OAuthCredentials,
    pub key: RunnerKey,
}

/// How the listener runs.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// End after one job.
    pub once: bool,
    /// The actions/runner version reported to the broker.
    pub version: String,
    pub job: JobSettings,
    /// Where the job in flight is recorded (`None`: not recorded, as for a JIT runner).
    pub in_flight: Option<PathBuf>,
    pub lock: LockTimings,
    /// How long to wait between session attempts while another session holds the runner.
    pub session_retry: Duration,
    /// The longest wait between failed polls.
    pub max_backoff: Duration,
}

/// How the listener ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonExit {
    /// A stop signal, with no job left running.
    Stopped,
    /// Its one job is done.
    Once,
}

/// Why the listener cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("the runner has no broker URL (serverUrlV2) in its settings: register it again")]
    NoBroker,
    #[error("{0}")]
    Broker(#[from] BrokerError),
}

/// Listens until `stop` (no job running), or after one job with `once`.
pub async fn run(
    http: reqwest::Client,
    runner: GitHubRunner,
    options: DaemonOptions,
    stop: CancellationToken,
    hard: CancellationToken,
) -> Result<DaemonExit, DaemonError> {
    let broker_url = runner
        .settings
        .server_url_v2
        .clone()
        .filter(|u| !u.is_empty())
        .ok_or(DaemonError::NoBroker)?;
    let tokens = Arc::new(TokenSource::new(
        http.clone(),
        runner.credentials.clone(),
        runner.key.clone(),
    ));
    let identity = RunnerIdentity {
        agent_id: runner.settings.agent_id,
        agent_name: runner.settings.agent_name.clone(),
        version: options.version.clone(),
        disable_update: true,
    };
    let mut broker = BrokerClient::new(http.clone(), &broker_url, tokens.clone(), identity.clone());
    let run_service = RunService::new(http.clone());
    in_flight::recover(&run_service, options.in_flight.as_deref(), options.lock).await;
    let Some(mut session) = open_session(&broker, &options, &stop).await? else {
        return Ok(DaemonExit::Stopped);
    };
    tracing::info!(runner = %runner.settings.agent_name, broker = %broker.base(), "listening for jobs");
    let mut running: Option<Running> = None;
    let mut backoff = Duration::ZERO;
    let exit = loop {
        if let Some(job) = &running
            && job.handle.is_finished()
        {
            running = None;
            if options.once {
                break DaemonExit::Once;
            }
        }
        if stop.is_cancelled() && running.is_none() {
            break DaemonExit::Stopped;
        }
        let status = if running.is_some() {
            RunnerStatus::Busy
        } else {
            RunnerStatus::Online
        };
        let message = tokio::select! {
            () = stop.cancelled(), if running.is_none() => break DaemonExit::Stopped,
            () = finished(&mut running) => continue,
            m = broker.get_message(&session, status) => m,
        };
        let message = match message {
            Ok(Some(m)) => {
                backoff = Duration::ZERO;
                m
            }
            Ok(None) => {
                backoff = Duration::ZERO;
                continue;
            }
            Err(BrokerError::SessionInvalid(why)) => {
                tracing::warn!(reason = %why, "the broker ended the session; opening a new one");
                match open_session(&broker, &options, &stop).await? {
                    Some(s) => session = s,
                    None => break DaemonExit::Stopped,
                }
                continue;
            }
            Err(e) if e.is_transient() => {
                backoff = (backoff * 2).clamp(Duration::from_secs(1), options.max_backoff);
                tracing::warn!(error = %e, retry_in = ?backoff, "polling the broker failed");
                tokio::select! {
                    () = stop.cancelled(), if running.is_none() => break DaemonExit::Stopped,
                    () = tokio::time::sleep(backoff) => {}
                }
                continue;
            }
            Err(e) => {
                let _ = broker.delete_session().await;
                return Err(e.into());
            }
        };
        match message {
            BrokerMessage::JobRequest(request) => {
                if running.is_some() || stop.is_cancelled() {
                    tracing::warn!(request = %request.runner_request_id, "a job was offered while this runner is busy or stopping; not taking it");
                    continue;
                }
                if request.should_acknowledge
                    && let Err(e) = broker
                        .acknowledge(&session, &request.runner_request_id, RunnerStatus::Busy)
                        .await
                {
                    tracing::warn!(error = %e, "acknowledging the job failed; taking it anyway");
                }
                running = Some(Running::start(
                    http.clone(),
                    tokens.clone(),
                    run_service.clone(),
                    request,
                    &options,
                    &hard,
                ));
            }
            BrokerMessage::Cancel { job_id } => match &running {
                Some(job) if job.is(&job_id) => {
                    tracing::info!(job = %job_id, "the job was cancelled on GitHub");
                    job.cancel();
                }
                _ => {
                    tracing::info!(job = %job_id, "a cancellation for a job this runner does not run")
                }
            },
            BrokerMessage::ForceTokenRefresh => tokens.invalidate().await,
            BrokerMessage::Migration { broker_base_url } => {
                tracing::info!(broker = %broker_base_url, "the broker moved");
                broker = BrokerClient::new(
                    http.clone(),
                    &broker_base_url,
                    tokens.clone(),
                    identity.clone(),
                );
            }
            BrokerMessage::Other { message_type } => {
                tracing::info!(message_type = %message_type, "a message this runner does not act on")
            }
        }
    };
    if let Err(e) = broker.delete_session().await {
        tracing::warn!(error = %e, "closing the broker session failed");
    }
    Ok(exit)
}

/// Waits for the running job to end; never, when none runs.
async fn finished(running: &mut Option<Running>) {
    match running {
        Some(job) => {
            let _ = (&mut job.handle).await;
        }
        None => std::future::pending().await,
    }
}

/// Opens a session, waiting while another one holds the runner (a restarted runner's
/// old session, until the broker drops it); `None` when stopped meanwhile.
async fn open_session(
    broker: &BrokerClient,
    options: &DaemonOptions,
    stop: &CancellationToken,
) -> Result<Option<Session>, BrokerError> {
    let owner = format!(
        "{} (PID: {})",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "hybrid-runner".into()),
        std::process::id()
    );
    loop {
        match broker.create_session(&owner).await {
            Ok(session) => return Ok(Some(session)),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, retry_in = ?options.session_retry, "cannot open a broker session yet");
                tokio::select! {
                    () = stop.cancelled() => return Ok(None),
                    () = tokio::time::sleep(options.session_retry) => {}
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// The job in flight.
#[derive(Debug)]
struct Running {
    handle: tokio::task::JoinHandle<()>,
    job_id: Arc<Mutex<Option<String>>>,
    cancel: CancellationToken,
}

impl Running {
    fn start(
        http: reqwest::Client,
        tokens: Arc<TokenSource>,
        run: RunService,
        request: JobRequest,
        options: &DaemonOptions,
        hard: &CancellationToken,
    ) -> Running {
        let job_id = Arc::new(Mutex::new(None));
        let cancel = CancellationToken::new();
        let hard = hard.child_token();
        let ctx = JobContext {
            http,
            tokens,
            run,
            options: options.clone(),
            job_id: job_id.clone(),
        };
        let c = cancel.clone();
        let handle = tokio::spawn(async move { ctx.run_one(request, c, hard).await });
        Running {
            handle,
            job_id,
            cancel,
        }
    }

    fn is(&self, job_id: &str) -> bool {
        match &*self.job_id.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(id) => id.eq_ignore_ascii_case(job_id),
            None => true,
        }
    }

    fn cancel(&self) {
        self.cancel.cancel();
    }
}

/// What one job's task works with.
struct JobContext {
    http: reqwest::Client,
    tokens: Arc<TokenSource>,
    run: RunService,
    options: DaemonOptions,
    /// Set once the job message is read, for cancellations to find the job.
    job_id: Arc<Mutex<Option<String>>>,
}

impl JobContext {
    async fn run_one(
        self,
        request: JobRequest,
        cancel: CancellationToken,
        hard: CancellationToken,
    ) {
        let JobContext {
            http,
            tokens,
            run,
            options,
            job_id,
        } = self;
        let message = match run.acquire(&tokens, &request).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, request = %request.runner_request_id, "acquiring the job failed; it is left to another runner");
                return;
            }
        };
        let job = match JobMessage::parse(&message) {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(error = %e, "the job message cannot be read; the job is not run");
                return;
            }
        };
        *job_id.lock().unwrap_or_else(|p| p.into_inner()) = Some(job.job_id.clone());
        let lock = JobLock {
            run: run.clone(),
            base: job.connection.url.clone(),
            job_token: job.connection.access_token.clone(),
            plan_id: job.plan_id.clone(),
            job_id: job.job_id.clone(),
            timings: options.lock,
        };
        let record = in_flight::InFlight {
            base: lock.base.clone(),
            job_token: lock.job_token.clone(),
            plan_id: lock.plan_id.clone(),
            job_id: lock.job_id.clone(),
            billing_owner_id: request.billing_owner_id.clone(),
        };
        in_flight::write(options.in_flight.as_deref(), &record);
        let locked_until = match lock.first_renewal().await {
            Ok(until) => until,
            Err(e) => {
                tracing::error!(error = %e, "the job could not be renewed before its first step; it is not run");
                in_flight::remove(options.in_flight.as_deref());
                return;
            }
        };
        tracing::info!(job = %job.job_display_name, request = job.request_id, "running a job");
        let done = CancellationToken::new();
        let keeper = {
            let (lock, done, lost) = (lock.clone(), done.clone(), cancel.clone());
            tokio::spawn(async move { lock.keep(locked_until, done, lost).await })
        };
        let grace = {
            let (cancel, hard) = (cancel.clone(), hard.clone());
            tokio::spawn(async move {
                cancel.cancelled().await;
                tokio::time::sleep(CANCEL_GRACE).await;
                hard.cancel();
            })
        };
        let results = job
            .variable("system.github.results_endpoint")
            .filter(|u| !u.is_empty())
            .map(|url| {
                let ids = JobIds {
                    workflow_run_backend_id: job.plan_id.clone(),
                    workflow_job_run_backend_id: job.job_id.clone(),
                };
                ResultsClient::new(http.clone(), url, &job.connection.access_token, ids)
            });
        let (sink, events) = EventSink::channel();
        let console = live_console(&job, results.is_some()).await;
        let reporter = Reporter::new(&job, results, console);
        let (outcome, report) = tokio::join!(
            run_job(&http, &job, &options.job, sink, cancel.clone(), hard),
            reporter.run(events)
        );
        done.cancel();
        grace.abort();
        if let Ok(Some(e)) = keeper.await {
            tracing::warn!(error = %e, "the job's lock was lost; its steps were stopped");
        }
        let end = report.complete_job(&job, request.billing_owner_id.clone());
        match lock.complete(&end).await {
            Ok(true) => tracing::info!(result = outcome.result.as_str(), "job completed"),
            Ok(false) => tracing::warn!("the service had already ended the job"),
            Err(e) => tracing::error!(error = %e, "the job's completion could not be reported"),
        }
        in_flight::remove(options.in_flight.as_deref());
    }
}

/// The job's live console feed, when it offers one (with a results service, as
/// actions/runner uses it) and it can be reached within 30 s.
async fn live_console(job: &JobMessage, has_results: bool) -> Option<LiveConsole> {
    let url = job
        .connection
        .data
        .get("FeedStreamUrl")
        .and_then(serde_json::Value::as_str)
        .filter(|u| has_results && !u.is_empty())?;
    let connect = LiveConsole::connect(url, &job.connection.access_token);
    match tokio::time::timeout(Duration::from_secs(30), connect).await {
        Ok(Ok(console)) => Some(console),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "no live console for this job; its log still goes to the results service");
            None
        }
        Err(_) => {
            tracing::warn!(
                url,
                "the live console did not answer in 30 s; its log still goes to the results service"
            );
            None
        }
    }
}
