//! The poll loop: one loop per daemon that calls FetchTask only while one of
//! `runner.capacity` slots is free, runs each task in its own tokio task holding its slot
//! until the task's final report is done, and drains on the way out.
//!
//! - `tasks_version`: the last version the server answered is sent back (the server skips
//!   its database look-up when nothing changed); after a task it is reset to 0, and 0 is
//!   also sent at least every [`PollSettings::version_refresh`] (go-gitea/gitea#33492: an
//!   idle runner is otherwise never offered jobs queued before it polled).
//! - Cadence: after a task, the next FetchTask goes out as soon as a slot is free (more
//!   jobs may be queued; waiting `fetch_interval` per task would take 40 s to fill 20 slots
//!   at the 2 s default); after an empty answer or an error, [`super::backoff`] from
//!   `fetch_interval` up to `fetch_interval_max`. A FetchTask deadline counts as an empty
//!   answer.
//! - Unauthenticated: no more polls; running tasks finish and report; [`PollEnd::Unauthenticated`].
//! - Shutdown ([`Shutdown::stop`]): no new FetchTask (one in flight is let finish, so a task
//!   the server already assigned is not dropped); running tasks get
//!   `shutdown_timeout`, then their `cancel` token fires and their final reports are still
//!   awaited. [`Shutdown::hard`] is passed to every task as its `hard_cancel`.
//! - `once` (`--once`, ephemeral runners): one task is fetched, run and reported, then
//!   [`PollEnd::Once`].
//!
//! What a task does is the caller's: a closure taking the task and its [`TaskControl`],
//! so the loop is tested with a fake handler against the fake Gitea.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::backoff;
use super::diagnostics::chain;
use super::metrics::DaemonMetrics;
use crate::config::RunnerConfig;
use crate::proto::runner::v1::{FetchTaskRequest, Result as TaskResult, Task};
use crate::{RpcError, RunnerClient};

/// How often `tasks_version = 0` is sent at the latest.
pub const VERSION_REFRESH: Duration = Duration::from_secs(60);

/// How often a streak of FetchTask errors is logged at warn (the rest at debug).
const WARN_EVERY: Duration = Duration::from_secs(60);

/// How the loop polls and drains.
#[derive(Debug, Clone, PartialEq)]
pub struct PollSettings {
    pub capacity: usize,
    pub fetch_interval: Duration,
    pub fetch_interval_max: Duration,
    pub version_refresh: Duration,
    pub shutdown_timeout: Duration,
    /// Fetch exactly one task, run it, and end.
    pub once: bool,
}

impl PollSettings {
    pub fn from_config(runner: &RunnerConfig, once: bool) -> PollSettings {
        PollSettings {
            capacity: runner.capacity.max(1),
            fetch_interval: runner.fetch_interval,
            fetch_interval_max: runner.fetch_interval_max,
            version_refresh: VERSION_REFRESH,
            shutdown_timeout: runner.shutdown_timeout,
            once,
        }
    }
}

/// The daemon's two stop signals.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Stop fetching, drain (first SIGTERM/SIGINT).
    pub stop: CancellationToken,
    /// Stop everything now, `always()` and post steps too (the second signal).
    pub hard: CancellationToken,
}

/// What a running task is told.
#[derive(Debug, Clone)]
pub struct TaskControl {
    /// The daemon is stopping and the grace has passed: cancel the task (`always()` and
    /// post steps still run), then report.
    pub cancel: CancellationToken,
    /// Stop those too.
    pub hard_cancel: CancellationToken,
}

/// Why the loop ended (after every task it started has finished).
#[derive(Debug)]
pub enum PollEnd {
    /// A shutdown signal.
    Stopped,
    /// `once`: the one task ran.
    Once,
    /// The server refused the runner's credentials.
    Unauthenticated(RpcError),
}

/// The metric label of a task's result.
pub fn result_label(result: TaskResult) -> &'static str {
    match result {
        TaskResult::Success => "success",
        TaskResult::Failure => "failure",
        TaskResult::Cancelled => "cancelled",
        TaskResult::Skipped => "skipped",
        TaskResult::Unspecified => "unknown",
    }
}

/// Runs the poll loop until a shutdown, Unauthenticated, or (with `once`) one task; returns
/// after every started task finished. `run_task` is called once per fetched task, on the
/// loop, and its future is spawned; its result is counted in `metrics`.
pub async fn poll<F, Fut>(
    client: &RunnerClient,
    settings: &PollSettings,
    shutdown: &Shutdown,
    metrics: &Arc<DaemonMetrics>,
    mut run_task: F,
) -> PollEnd
where
    F: FnMut(Task, TaskControl) -> Fut,
    Fut: Future<Output = TaskResult> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(settings.capacity.max(1)));
    let cancel_jobs = CancellationToken::new();
    let mut running: JoinSet<()> = JoinSet::new();
    let mut version: i64 = 0;
    let mut last_forced: Option<Instant> = None;
    let mut failures: u32 = 0;
    let mut errors = ErrorLog::default();
    // Kept until a FetchTask is answered, so the retry of a call whose answer was lost
    // asks for the task that call may have been given (see `RunnerClient::fetch_task`).
    let mut request_key = crate::client::new_request_key();

    let end = loop {
        reap_finished(&mut running);
        let permit = tokio::select! {
            biased;
            _ = shutdown.stop.cancelled() => break PollEnd::Stopped,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(p) => p,
                // The semaphore is never closed.
                Err(_) => break PollEnd::Stopped,
            },
        };
        let forced = last_forced.is_none_or(|t| t.elapsed() >= settings.version_refresh);
        let sent = if forced { 0 } else { version };
        if sent == 0 {
            last_forced = Some(Instant::now());
        }
        let request = FetchTaskRequest {
            tasks_version: sent,
        };
        // A call in flight is let finish on `stop` (the server may be assigning a task).
        let answer = tokio::select! {
            answer = client.fetch_task(&request, &request_key) => answer,
            _ = shutdown.hard.cancelled() => break PollEnd::Stopped,
        };
        match answer {
            Ok(response) => {
                request_key = crate::client::new_request_key();
                metrics.poll_answered();
                errors.recovered();
                version = response.tasks_version;
                match response.task {
                    Some(task) => {
                        version = 0;
                        failures = 0;
                        tracing::info!(task = task.id, "task received");
                        let control = TaskControl {
                            cancel: cancel_jobs.child_token(),
                            hard_cancel: shutdown.hard.clone(),
                        };
                        let guard = RunningTask::start(Arc::clone(metrics), task.id, permit);
                        let work = run_task(task, control);
                        running.spawn(async move {
                            let result = work.await;
                            guard.finish(result);
                        });
                        if settings.once {
                            break PollEnd::Once;
                        }
                        // Other jobs may be waiting: ask again as soon as a slot is free.
                        continue;
                    }
                    None => {
                        drop(permit);
                        failures = failures.saturating_add(1);
                    }
                }
            }
            Err(e) if e.is_unauthenticated() => {
                metrics.poll_failed(true);
                break PollEnd::Unauthenticated(e);
            }
            Err(e @ RpcError::Timeout { .. }) => {
                drop(permit);
                metrics.poll_failed(false);
                tracing::debug!(error = %e, "FetchTask deadline passed; counted as an empty answer");
                failures = failures.saturating_add(1);
            }
            Err(e) => {
                drop(permit);
                metrics.poll_failed(true);
                errors.failed(&e);
                failures = failures.saturating_add(1);
            }
        }
        let pause = backoff::pause(
            settings.fetch_interval,
            settings.fetch_interval_max,
            failures,
        );
        tokio::select! {
            _ = shutdown.stop.cancelled() => break PollEnd::Stopped,
            _ = tokio::time::sleep(pause) => {}
        }
    };
    if !running.is_empty() {
        tracing::info!(
            tasks = running.len(),
            "no more tasks fetched; waiting for the running ones"
        );
    }
    drain(
        &mut running,
        shutdown,
        settings.shutdown_timeout,
        &cancel_jobs,
    )
    .await;
    end
}

/// Waits for every task: without limit until `shutdown.stop` fires, then at most `grace`
/// more, then cancels them and waits for their final reports.
async fn drain(
    running: &mut JoinSet<()>,
    shutdown: &Shutdown,
    grace: Duration,
    cancel_jobs: &CancellationToken,
) {
    loop {
        tokio::select! {
            joined = running.join_next() => match joined {
                Some(result) => log_join(result),
                None => return,
            },
            _ = shutdown.stop.cancelled() => break,
        }
    }
    if running.is_empty() {
        return;
    }
    tracing::info!(
        tasks = running.len(),
        grace = ?grace,
        "stopping: waiting runner.shutdown_timeout for the running tasks"
    );
    let deadline = tokio::time::sleep(grace);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            joined = running.join_next() => match joined {
                Some(result) => log_join(result),
                None => return,
            },
            _ = &mut deadline => break,
        }
    }
    tracing::warn!(
        tasks = running.len(),
        "runner.shutdown_timeout passed: cancelling the running tasks; their final reports are still sent"
    );
    cancel_jobs.cancel();
    while let Some(result) = running.join_next().await {
        log_join(result);
    }
}

fn reap_finished(running: &mut JoinSet<()>) {
    while let Some(result) = running.try_join_next() {
        log_join(result);
    }
}

fn log_join(result: Result<(), tokio::task::JoinError>) {
    if let Err(e) = result {
        tracing::error!(error = %e, "a task's work panicked or was aborted");
    }
}

/// One task in flight: holds its capacity slot and counts it in the metrics until it
/// ends, even by a panic (then counted as `error`).
struct RunningTask {
    metrics: Arc<DaemonMetrics>,
    task: i64,
    started: Instant,
    result: Option<&'static str>,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl RunningTask {
    fn start(
        metrics: Arc<DaemonMetrics>,
        task: i64,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) -> RunningTask {
        metrics.task_started();
        RunningTask {
            metrics,
            task,
            started: Instant::now(),
            result: None,
            _slot: slot,
        }
    }

    fn finish(mut self, result: TaskResult) {
        self.result = Some(result_label(result));
    }
}

impl Drop for RunningTask {
    fn drop(&mut self) {
        let result = self.result.unwrap_or("error");
        self.metrics.task_finished(result);
        tracing::info!(
            task = self.task,
            result,
            seconds = self.started.elapsed().as_secs_f64(),
            "task finished"
        );
    }
}

/// Logs a streak of FetchTask errors: the first at warn, then at most one warn per
/// [`WARN_EVERY`], the others at debug; the recovery at info.
#[derive(Debug, Default)]
struct ErrorLog {
    streak: u32,
    last_warn: Option<Instant>,
}

impl ErrorLog {
    fn failed(&mut self, error: &RpcError) {
        self.streak += 1;
        if self.last_warn.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            self.last_warn = Some(Instant::now());
            tracing::warn!(error = %chain(error), failures = self.streak, "cannot fetch tasks; retrying");
        } else {
            tracing::debug!(error = %chain(error), failures = self.streak, "cannot fetch tasks; retrying");
        }
    }

    fn recovered(&mut self) {
        if self.streak > 0 {
            tracing::info!(failures = self.streak, "fetching tasks works again");
        }
        self.streak = 0;
        self.last_warn = None;
    }
}
