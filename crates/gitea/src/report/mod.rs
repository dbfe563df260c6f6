//! Shipping one Gitea task's log and state: every row the engine produced reaches the
//! server exactly once and in order, even across outages and daemon restarts.
//!
//! [`TaskReporter::start`] spawns the shipping loop ([`cadence`], over the state in
//! [`ship`]): the engine's events become log rows and step states ([`rows`]), every row
//! is appended to the task's spool folder ([`spool`]) before it is sent, and UpdateLog
//! calls follow Gitea's ack algorithm ([`outbox`]); UpdateTask carries the step states,
//! the outputs and a heartbeat, and its answer tells when the server ended the task
//! ([`TaskReporter::server_cancel`]).
//! [`TaskReporter::finish`] sends the final log (`no_more`) and then the final state
//! ([`close`]); [`recover`] finishes the tasks a killed daemon left in the spool.
//! [`ReportCounters`] are what the daemon's `/metrics` prints.

mod cadence;
mod close;
mod counters;
mod error;
mod outbox;
mod rows;
mod ship;
mod spool;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::RunnerClient;
use crate::proto::runner::v1::{Result as TaskResult, Task};
use hr_engine::events::{EventReceiver, Outcome};

pub use close::{DAEMON_STOPPED_ROW, FINAL_BUDGET_FACTOR, FINAL_MIN_ATTEMPTS};
pub use counters::{LATENCY_BUCKETS_MS, LatencySnapshot, ReportCounters};
pub use error::ReportError;
pub use ship::{MAX_CALL_BYTES, MAX_CALL_ROWS};

use ship::Shipper;
use spool::Spool;

/// How a reporter ships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSettings {
    /// Where task folders (`task-<id>/`) are spooled.
    pub spool_dir: PathBuf,
    /// Flush the log once this many rows are buffered (act_runner: 100).
    pub batch_rows: usize,
    /// Flush the log once the oldest buffered row is this old.
    pub max_latency: Duration,
    /// Send the task state at least this often, changed or not (Gitea reaps a task
    /// without UpdateTask for 10 minutes as a zombie).
    pub heartbeat: Duration,
    /// The deadline of each attempt of a final call.
    pub close_timeout: Duration,
    /// Attempts every final call gets whatever its errors (at least 1).
    pub final_attempts: u32,
    /// The wait after a final call's first failure, doubled after each further one up to
    /// `final_max_delay` (`None`: no cap but the retry budget).
    pub final_first_delay: Duration,
    pub final_max_delay: Option<Duration>,
}

impl ReportSettings {
    /// The defaults (100 rows, 1 s, 5 s heartbeat, 10 s per final attempt) spooling under
    /// `spool_dir`.
    pub fn new(spool_dir: PathBuf) -> ReportSettings {
        ReportSettings {
            spool_dir,
            batch_rows: 100,
            max_latency: Duration::from_secs(1),
            heartbeat: Duration::from_secs(5),
            close_timeout: Duration::from_secs(10),
            final_attempts: FINAL_MIN_ATTEMPTS,
            final_first_delay: ship::Backoff::FIRST,
            final_max_delay: Some(ship::Backoff::MAX),
        }
    }
}

/// What the server finally holds of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalReport {
    pub task_id: i64,
    /// Rows in the task log (the sentinel and runner rows included).
    pub rows: i64,
    /// Rows of this task sent for the first time, and sent again.
    pub rows_sent: u64,
    pub rows_resent: u64,
    /// The result reported: the job's, or the server's when it ended the task.
    pub result: TaskResult,
    /// The result the server holds after the final report.
    pub server_result: TaskResult,
    /// False when the server had archived the log before every row reached it.
    pub log_archived: bool,
    /// Output keys the server never acknowledged (empty normally).
    pub unacknowledged_outputs: Vec<String>,
}

/// What [`recover`] did with one spool folder.
#[derive(Debug)]
pub struct RecoveredTask {
    pub task_id: i64,
    pub report: Result<FinalReport, ReportError>,
    /// The folder is gone: the task was finished, or the server said it is not this
    /// runner's. A kept folder is tried again at the next daemon start.
    pub folder_removed: bool,
}

/// The reporter of one task; see the module docs.
#[derive(Debug)]
pub struct TaskReporter {
    task_id: i64,
    summary: Option<crate::summary::SummaryUpload>,
    server_cancel: CancellationToken,
    step_count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    finish: oneshot::Sender<()>,
    shipping: JoinHandle<Option<Shipper>>,
}

impl TaskReporter {
    /// Spawns the shipping loop (a tokio task, so this must run inside a runtime); it
    /// reads the engine's events until the channel closes. Creates the task's spool
    /// folder first.
    pub fn start(
        client: RunnerClient,
        task_id: i64,
        settings: ReportSettings,
        events: EventReceiver,
        counters: ReportCounters,
    ) -> Result<TaskReporter, ReportError> {
        let spool = Spool::create(&settings.spool_dir, task_id)?;
        let mut shipper = Shipper::new(client, task_id, settings, counters, spool);
        let state = shipper.saved_state();
        shipper.spool.save(&state)?;
        let server_cancel = shipper.server_cancel.clone();
        let step_count = shipper.step_count.clone();
        let (finish, finish_signal) = oneshot::channel();
        let shipping = tokio::spawn(cadence::run(shipper, events, finish_signal));
        Ok(TaskReporter {
            task_id,
            summary: None,
            server_cancel,
            step_count,
            finish,
            shipping,
        })
    }

    /// The task's id.
    pub fn task_id(&self) -> i64 {
        self.task_id
    }

    /// Cancelled when an UpdateTaskResponse carries a final result (the server ended the
    /// task: cancelled from the UI, or reaped).
    pub fn server_cancel(&self) -> CancellationToken {
        self.server_cancel.clone()
    }

    /// Uploads the job's step summaries with `upload` before the final report (a Gitea
    /// that announced `job-summary`, [`crate::summary`]).
    pub fn set_summary_upload(&mut self, upload: Option<crate::summary::SummaryUpload>) {
        self.summary = upload;
    }

    /// Tells the reporter how many main steps the job has (see [`main_step_count`]): step
    /// states of later indexes (action `pre`/`post` steps) are then not sent, and steps
    /// that never ran are reported Cancelled (Skipped when the job succeeded or was skipped) at the end. Without it every
    /// step the engine reported is sent and the server ignores ids it does not know.
    pub fn set_step_count(&self, count: usize) {
        self.step_count.store(count, Ordering::Relaxed);
    }

    /// After the engine finished and dropped its sink: takes the events still queued,
    /// flushes everything, sends the final UpdateLog (`no_more`, a sentinel row if needed)
    /// THEN the final UpdateTask (`result`, `outputs`), retried (see [`close`]); then
    /// deletes the spool folder. Returns what the server finally said. On an error the
    /// spool folder is kept for [`recover`].
    pub async fn finish(
        self,
        result: Outcome,
        outputs: Vec<(String, String)>,
    ) -> Result<FinalReport, ReportError> {
        let task_id = self.task_id;
        // The loop ends on this signal; if it already ended, the join below says how.
        let _ = self.finish.send(());
        let mut shipper = match self.shipping.await {
            Ok(Some(shipper)) => shipper,
            Ok(None) | Err(_) => return Err(ReportError::Stopped { task_id }),
        };
        // Summaries go before the final log and result, as Gitea's runner sends them; a
        // problem becomes a runner row.
        if let Some(upload) = &self.summary
            && !shipper.summaries.is_empty()
        {
            let problems = upload.send(shipper.client.http(), &shipper.summaries).await;
            for line in problems {
                shipper.on_event(hr_engine::events::Event::Log {
                    job: hr_engine::events::JobKey {
                        id: String::new(),
                        name: String::new(),
                    },
                    step: None,
                    kind: hr_engine::events::LogKind::Runner,
                    line,
                });
            }
        }
        shipper.conclude(rows::task_result(result), outputs);
        shipper.deliver().await.map_err(|(error, _)| error)
    }
}

/// At daemon start: finishes every task a killed daemon left in `spool_dir` (sends the
/// rows the server has not acknowledged, a runner row saying the daemon stopped mid-task
/// ([`DAEMON_STOPPED_ROW`]), `no_more`, then a final UpdateTask FAILURE with the saved
/// steps, unfinished ones Cancelled) and removes their folders. A task whose job had
/// ended (the daemon died during its final report) gets its own result. A task the server
/// already ended is just removed. Folders it could not finish stay for the next start.
/// Folders of tasks a live reporter ships (of this process or another sharing the spool
/// dir) are locked and skipped, so it may run while new tasks start.
pub async fn recover(
    client: &RunnerClient,
    settings: &ReportSettings,
    counters: &ReportCounters,
) -> Vec<RecoveredTask> {
    let folders = match Spool::task_folders(&settings.spool_dir) {
        Ok(folders) => folders,
        Err(error) => {
            tracing::warn!(error = %error, "the spool folder cannot be read; no task is recovered");
            return Vec::new();
        }
    };
    let mut recovered = Vec::new();
    for (task_id, dir) in folders {
        if let Some(task) = close::recover_folder(client, settings, counters, task_id, &dir).await {
            recovered.push(task);
        }
    }
    recovered
}

/// The number of main steps of the single job in a task's `workflow_payload`, for
/// [`TaskReporter::set_step_count`]; `None` when the payload cannot be read.
pub fn main_step_count(task: &Task) -> Option<usize> {
    let payload = std::str::from_utf8(task.workflow_payload.as_deref()?).ok()?;
    let doc: serde_json::Value = serde_saphyr::from_str(payload).ok()?;
    let jobs = doc.get("jobs")?.as_object()?;
    if jobs.len() != 1 {
        return None;
    }
    let (_, job) = jobs.iter().next()?;
    Some(job.get("steps")?.as_array()?.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_step_count_reads_the_single_job() {
        let task = |payload: &str| Task {
            workflow_payload: Some(payload.as_bytes().to_vec()),
            ..Task::default()
        };
        let two = "on: push\njobs:\n  build:\n    runs-on: x\n    steps:\n      - run: a\n      - uses: actions/checkout@v4\n";
        assert_eq!(main_step_count(&task(two)), Some(2));
        assert_eq!(main_step_count(&task("jobs: [")), None);
        assert_eq!(main_step_count(&Task::default()), None);
    }
}
