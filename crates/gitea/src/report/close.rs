//! The end of a task's report, for a job that finished ([`super::TaskReporter::finish`])
//! and for one a stopped daemon left in the spool ([`super::recover`]):
//!
//! 1. the last rows: "Cancelled by the server" when the server ended the task, dropped
//!    oversized outputs, "the daemon stopped" for a recovered task;
//! 2. every unacknowledged row, the call carrying the last one with `no_more`, retried until
//!    the server acknowledged all of them. When the server may hold every row already (a
//!    call whose answer was lost, or nothing left to send), an empty sentinel row goes
//!    first: a call the server finds nothing new in is answered before `no_more` is looked
//!    at, so the log would never be archived (act_runner PR #952);
//! 3. only then the final UpdateTask (result, `stopped_at`, every step final, outputs),
//!    retried until every output is in `sent_outputs` (go-gitea/gitea#36632: an ephemeral
//!    runner is deleted by it, so no log may follow it; a retry refused as unauthenticated
//!    after an attempt whose answer was lost is that deletion, and counts as delivered);
//! 4. the spool folder is removed.
//!
//! Retries: each attempt has its own deadline (`close_timeout`); transient failures are
//! retried (100 ms doubling to 5 s) until at least 3 attempts were made and
//! [`FINAL_BUDGET_FACTOR`] × `close_timeout` has passed (3 minutes by default), refusals
//! after 3 attempts. A report that still fails keeps its spool folder, so the next
//! daemon start ([`super::recover`]) finishes it.

use std::time::{Duration, Instant, SystemTime};

use super::error::ReportError;
use super::outbox::Outbox;
use super::ship::{Backoff, MAX_CALL_BYTES, MAX_CALL_ROWS, Shipper, outcome_unknown};
use super::spool::{Opened, SavedState, Spool};
use super::{FinalReport, RecoveredTask, ReportCounters, ReportSettings};
use crate::proto::runner::v1::Result as TaskResult;
use crate::{RpcError, RunnerClient};

/// The final calls retry transient failures for this many `close_timeout`s.
pub const FINAL_BUDGET_FACTOR: u32 = 18;
/// Attempts every final call gets, whatever its errors, by default
/// ([`ReportSettings::final_attempts`], `runner.report_retry.max_retries`).
pub const FINAL_MIN_ATTEMPTS: u32 = 3;

/// The runner row a recovered task ends with.
pub const DAEMON_STOPPED_ROW: &str = "The runner daemon stopped while this task was running (killed or restarted); the task is marked failed";

/// Retry bookkeeping of one final call.
struct Attempts {
    started: Instant,
    budget: Duration,
    count: u32,
    /// Attempts made whatever the errors (`ReportSettings::final_attempts`).
    min: u32,
    first_delay: Duration,
    max_delay: Option<Duration>,
    backoff: Backoff,
}

impl Attempts {
    fn new(settings: &ReportSettings) -> Attempts {
        Attempts {
            started: Instant::now(),
            budget: settings.close_timeout * FINAL_BUDGET_FACTOR,
            count: 0,
            min: settings.final_attempts.max(1),
            first_delay: settings.final_first_delay,
            max_delay: settings.final_max_delay,
            backoff: Backoff::default(),
        }
    }

    /// The wait before the next attempt after a failure.
    fn failed(&mut self) -> Duration {
        self.backoff
            .fail_within(Instant::now(), self.first_delay, self.max_delay)
    }

    /// After a failure: waits before the next attempt, or says to give up.
    async fn retry(&mut self, error: &RpcError) -> bool {
        let permanent = !error.is_transient() || not_ours(error);
        let exhausted =
            self.count >= self.min && (permanent || self.started.elapsed() >= self.budget);
        if exhausted {
            return false;
        }
        let delay = self.failed();
        tokio::time::sleep(delay).await;
        true
    }
}

/// The server says the task is not this runner's (re-registered runner) or gone (its run
/// was deleted): nothing can ever finish it. Gitea's and Forgejo's texts, both under
/// `codes.Internal` (often flattened to `unknown`): `invalid runner for task`
/// (`UpdateTaskByState`), and `util.ErrNotExist`'s `resource does not exist` (UpdateTask:
/// `update task: resource does not exist`; UpdateLog: `get task: task with id N: resource
/// does not exist`). A proxy's "404 Not Found" is not among them: that is an outage.
fn not_ours(error: &RpcError) -> bool {
    let text = error.to_string();
    text.contains("invalid runner for task") || text.contains("resource does not exist")
}

/// One call under the final deadline; a deadline that passes reads as a timeout.
async fn within<T>(
    limit: Duration,
    method: &'static str,
    call: impl std::future::Future<Output = Result<T, RpcError>>,
) -> Result<T, RpcError> {
    tokio::time::timeout(limit, call)
        .await
        .unwrap_or(Err(RpcError::Timeout {
            method,
            timeout: limit,
        }))
}

impl Shipper {
    /// Step 1: the job's result (or the server's, when it ended the task), its outputs,
    /// every step final, saved.
    pub(crate) fn conclude(&mut self, job: TaskResult, outputs: Vec<(String, String)>) {
        let now = SystemTime::now();
        let mut result = job;
        // Rows from here on are the runner's, not the last step's.
        self.log.running = None;
        if let Some(server) = self.server_result {
            let text = if server == TaskResult::Cancelled {
                "Cancelled by the server".to_string()
            } else {
                format!("Ended by the server ({})", server.as_str_name())
            };
            let rows = self.log.runner_row(&text, now);
            self.take_rows(rows, Instant::now());
            result = server;
        }
        self.add_outputs(outputs);
        self.log.finalize(result, now);
        self.result = Some(result);
        self.save_state();
    }

    /// Steps 2 to 4.
    pub(crate) async fn deliver(mut self) -> Result<FinalReport, (ReportError, Shipper)> {
        if let Err(e) = self.final_log().await {
            self.save_state();
            return Err((e, self));
        }
        let server_result = match self.final_task().await {
            Ok(result) => result,
            Err(e) => {
                self.save_state();
                return Err((e, self));
            }
        };
        let report = FinalReport {
            task_id: self.task_id,
            rows: self.outbox.total(),
            rows_sent: self.rows_sent,
            rows_resent: self.rows_resent,
            result: self.result.unwrap_or(TaskResult::Failure),
            server_result,
            log_archived: !self.log_closed,
            unacknowledged_outputs: self.outputs.keys().cloned().collect(),
        };
        let removed = self.spool.remove();
        if let Err(e) = removed {
            tracing::warn!(task = report.task_id, error = %e, "the spool folder of a finished task could not be removed");
        }
        Ok(report)
    }

    async fn final_log(&mut self) -> Result<(), ReportError> {
        let mut attempts = Attempts::new(&self.settings);
        loop {
            if self.log_closed {
                return Ok(());
            }
            let mut total = self.outbox.total();
            if self.outbox.server_may_hold() >= total {
                let sentinel = self.log.sentinel_row(SystemTime::now());
                self.take_rows(vec![sentinel], Instant::now());
                total += 1;
            }
            let batch = self.outbox.batch(MAX_CALL_ROWS, MAX_CALL_BYTES);
            let no_more = batch.end() == total;
            let request = self.log_request(&batch, no_more);
            attempts.count += 1;
            let limit = self.settings.close_timeout;
            let answer = within(limit, "UpdateLog", self.client.update_log(&request)).await;
            match answer {
                Ok(answer) => {
                    let progressed = self.apply_ack(&batch, answer.ack_index);
                    if no_more && self.outbox.acked() >= total {
                        return Ok(());
                    }
                    if progressed {
                        attempts.backoff.succeed();
                    } else {
                        tokio::time::sleep(attempts.failed()).await;
                    }
                }
                Err(error) => {
                    if self.log_failed(&batch, &error, no_more) {
                        return Ok(());
                    }
                    if !attempts.retry(&error).await {
                        return Err(ReportError::FinalLog {
                            task_id: self.task_id,
                            attempts: attempts.count,
                            source: error,
                        });
                    }
                }
            }
        }
    }

    /// The final UpdateTask; the result the server holds.
    async fn final_task(&mut self) -> Result<TaskResult, ReportError> {
        let result = self.result.unwrap_or(TaskResult::Failure);
        let stopped_at = SystemTime::now();
        let mut attempts = Attempts::new(&self.settings);
        // An attempt whose answer was lost may have made the task final.
        let mut maybe_landed = false;
        loop {
            let request = self.task_request(result, Some(stopped_at));
            attempts.count += 1;
            let limit = self.settings.close_timeout;
            let error = match within(limit, "UpdateTask", self.client.update_task(&request)).await {
                Ok(answer) => {
                    let held = self.apply_task_answer(&answer);
                    if held != TaskResult::Unspecified && self.outputs.is_empty() {
                        return Ok(held);
                    }
                    let pending: Vec<&String> = self.outputs.keys().collect();
                    tracing::debug!(
                        task = self.task_id,
                        ?pending,
                        held = held.as_str_name(),
                        "final state not fully acknowledged yet"
                    );
                    if held != TaskResult::Unspecified
                        && attempts.count >= attempts.min
                        && attempts.started.elapsed() >= attempts.budget
                    {
                        tracing::warn!(
                            task = self.task_id,
                            ?pending,
                            "the server did not acknowledge every output; giving them up"
                        );
                        return Ok(held);
                    }
                    RpcError::Server {
                        method: "UpdateTask",
                        status: 200,
                        code: crate::Code::Unavailable,
                        message: "the final state was not fully acknowledged".into(),
                    }
                }
                Err(error) => {
                    self.counters.add_error();
                    if maybe_landed && error.is_unauthenticated() {
                        // Gitea deletes an ephemeral runner with its task's final
                        // state: the lost answer was a success.
                        tracing::info!(
                            task = self.task_id,
                            "the runner is gone after a final state whose answer was lost; taking it as delivered (ephemeral runner)"
                        );
                        return Ok(result);
                    }
                    maybe_landed |= outcome_unknown(&error);
                    error
                }
            };
            if !attempts.retry(&error).await {
                return Err(ReportError::FinalState {
                    task_id: self.task_id,
                    attempts: attempts.count,
                    source: error,
                });
            }
        }
    }

    /// A shipper for a task folder a stopped daemon left.
    fn restore(
        client: RunnerClient,
        settings: &ReportSettings,
        counters: &ReportCounters,
        task_id: i64,
        spool: Spool,
        state: Option<SavedState>,
        total: i64,
    ) -> Shipper {
        let mut shipper = Shipper::new(client, task_id, settings.clone(), counters.clone(), spool);
        let state = state.unwrap_or_else(|| shipper.saved_state());
        let acked = state.acked.clamp(0, total);
        let mut outbox = Outbox::restored(acked, total - acked);
        // Calls whose answers died with the daemon may have stored any of these rows.
        outbox.record_all_unknown();
        shipper.outbox = outbox;
        shipper.refill(false);
        // The state is saved at step boundaries and acks, the rows as they come: rows
        // after the last save belong to the step that was running then, if any.
        let saved_rows = state.log.rows.min(total);
        shipper.log = state.log;
        shipper.log.rows = total;
        if let Some(running) = shipper.log.running
            && let Some(record) = shipper.log.steps.get_mut(&running)
            && total > saved_rows
        {
            record.log_index.get_or_insert(saved_rows);
            record.log_end = total;
        }
        shipper.started_at = state.started_at;
        shipper.outputs = state.outputs;
        shipper.sent_outputs = state.sent_outputs;
        shipper.result = state.result.and_then(|r| TaskResult::try_from(r).ok());
        shipper.server_result = state
            .server_result
            .and_then(|r| TaskResult::try_from(r).ok());
        if let Some(count) = shipper.log.step_count {
            shipper
                .step_count
                .store(count, std::sync::atomic::Ordering::Relaxed);
        }
        shipper
    }
}

/// Finishes the task of one spool folder (see [`super::recover`]); `None` for the folder
/// of a task a live reporter is shipping.
pub(crate) async fn recover_folder(
    client: &RunnerClient,
    settings: &ReportSettings,
    counters: &ReportCounters,
    task_id: i64,
    dir: &std::path::Path,
) -> Option<RecoveredTask> {
    let (spool, state, rows) = match Spool::open(dir) {
        Ok(Opened::Free(spool, state, count)) => (*spool, state, count),
        Ok(Opened::Busy) => return None,
        Err(error) => {
            return Some(RecoveredTask {
                task_id,
                report: Err(error),
                folder_removed: false,
            });
        }
    };
    let mut shipper = Shipper::restore(
        client.clone(),
        settings,
        counters,
        task_id,
        spool,
        state,
        rows,
    );
    // A known result means the job had ended and was concluded: the daemon stopped
    // during its final report, which only has to be sent again.
    if shipper.result.is_none() {
        shipper.log.running = None;
        let rows = shipper
            .log
            .runner_row(DAEMON_STOPPED_ROW, SystemTime::now());
        shipper.take_rows(rows, Instant::now());
        shipper.conclude(TaskResult::Failure, Vec::new());
    }
    tracing::info!(
        task = task_id,
        unacked = shipper.outbox.unacked(),
        "finishing a task the last daemon left"
    );
    match shipper.deliver().await {
        Ok(report) => Some(RecoveredTask {
            task_id,
            report: Ok(report),
            folder_removed: true,
        }),
        Err((error, shipper)) => {
            let hopeless = match &error {
                ReportError::FinalLog { source, .. } | ReportError::FinalState { source, .. } => {
                    not_ours(source)
                }
                _ => false,
            };
            let folder_removed = hopeless && shipper.spool.remove().is_ok();
            if folder_removed {
                tracing::warn!(task = task_id, error = %error, "the server does not know this task as this runner's; its spool folder is removed");
            }
            Some(RecoveredTask {
                task_id,
                report: Err(error),
                folder_removed,
            })
        }
    }
}
