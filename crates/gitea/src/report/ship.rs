//! The state of one task's reporter ([`Shipper`]) and what changes it: events become
//! spooled rows queued for sending, job outputs wait for their acknowledgement, UpdateLog
//! answers move the acknowledged index (or bring lost rows back from the spool),
//! UpdateTask answers acknowledge outputs and may carry the server's final result, which
//! fires `server_cancel`. When calls go out is [`super::cadence`]'s business; the final
//! report is [`super::close`]'s.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use super::counters::ReportCounters;
use super::outbox::{AckOutcome, Batch, Outbox};
use super::rows::{Row, TaskLog, timestamp};
use super::spool::{SavedState, Spool};
use super::{ReportError, ReportSettings};
use crate::RpcError;
use crate::error::Code;
use crate::proto::runner::v1::{
    Result as TaskResult, TaskState, UpdateLogRequest, UpdateTaskRequest, UpdateTaskResponse,
};
use hr_engine::events::Event;

/// The most rows one UpdateLog call carries.
pub const MAX_CALL_ROWS: usize = 1000;
/// About the most content bytes one UpdateLog call carries (well under the 1 MiB request
/// body limit of a default nginx in front of Gitea).
pub const MAX_CALL_BYTES: usize = 512 << 10;
/// Output keys longer than this, or values longer than [`MAX_OUTPUT_VALUE`], are dropped
/// by the server without a word; the reporter drops them with a log row.
pub(crate) const MAX_OUTPUT_KEY: usize = 255;
pub(crate) const MAX_OUTPUT_VALUE: usize = 1 << 20;
/// "Step count unknown" in [`Shipper::step_count`].
pub(crate) const UNKNOWN_STEPS: usize = usize::MAX;

/// A retry delay: 100 ms, doubled after each failure up to 5 s; reset by a success.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    delay: Duration,
    pub(super) until: Option<Instant>,
}

impl Backoff {
    pub(crate) const FIRST: Duration = Duration::from_millis(100);
    pub(crate) const MAX: Duration = Duration::from_secs(5);

    pub(crate) fn ready(&self, now: Instant) -> bool {
        self.until.is_none_or(|until| now >= until)
    }

    /// Notes a failure; returns the delay before the next try.
    pub(crate) fn fail(&mut self, now: Instant) -> Duration {
        self.fail_within(now, Backoff::FIRST, Some(Backoff::MAX))
    }

    /// [`Self::fail`] from `first`, doubling up to `max` (`None`: no cap).
    pub(crate) fn fail_within(
        &mut self,
        now: Instant,
        first: Duration,
        max: Option<Duration>,
    ) -> Duration {
        let next = if self.delay.is_zero() {
            first
        } else {
            self.delay.saturating_mul(2)
        };
        self.delay = max.map_or(next, |max| next.min(max));
        self.until = Some(now + self.delay);
        self.delay
    }

    pub(crate) fn succeed(&mut self) {
        self.delay = Duration::ZERO;
        self.until = None;
    }
}

/// Everything the reporter of one task holds; owned by the shipping loop, then by the
/// final report (or by [`super::recover`] for a task a stopped daemon left).
#[derive(Debug)]
pub(crate) struct Shipper {
    pub(crate) client: crate::RunnerClient,
    pub(crate) task_id: i64,
    pub(crate) settings: ReportSettings,
    pub(crate) counters: ReportCounters,
    pub(crate) spool: Spool,
    pub(crate) log: TaskLog,
    pub(crate) outbox: Outbox,
    pub(crate) started_at: SystemTime,
    /// Outputs the server has not acknowledged, and the keys it has.
    pub(crate) outputs: BTreeMap<String, String>,
    pub(crate) sent_outputs: BTreeSet<String>,
    pub(crate) result: Option<TaskResult>,
    pub(crate) server_result: Option<TaskResult>,
    pub(crate) server_cancel: CancellationToken,
    /// Set by the task's owner when it knows the job's main step count.
    pub(crate) step_count: Arc<AtomicUsize>,
    /// The server refused rows because it archived the log.
    pub(crate) log_closed: bool,
    /// This task's rows sent for the first time and again.
    pub(crate) rows_sent: u64,
    /// Each main step's summary, from the job's `Summary` event.
    pub(crate) summaries: Vec<(usize, String)>,
    pub(crate) rows_resent: u64,
    pub(super) flush_through: i64,
    pub(super) state_due: bool,
    pub(super) last_state_call: Option<Instant>,
    pub(super) log_retry: Backoff,
    pub(super) task_retry: Backoff,
    spool_warned: bool,
}

impl Shipper {
    pub(crate) fn new(
        client: crate::RunnerClient,
        task_id: i64,
        settings: ReportSettings,
        counters: ReportCounters,
        spool: Spool,
    ) -> Shipper {
        Shipper {
            client,
            task_id,
            settings,
            counters,
            spool,
            log: TaskLog::default(),
            outbox: Outbox::new(0),
            started_at: SystemTime::now(),
            outputs: BTreeMap::new(),
            sent_outputs: BTreeSet::new(),
            result: None,
            server_result: None,
            server_cancel: CancellationToken::new(),
            step_count: Arc::new(AtomicUsize::new(UNKNOWN_STEPS)),
            log_closed: false,
            rows_sent: 0,
            summaries: Vec::new(),
            rows_resent: 0,
            flush_through: 0,
            state_due: true,
            last_state_call: None,
            log_retry: Backoff::default(),
            task_retry: Backoff::default(),
            spool_warned: false,
        }
    }

    /// The state as saved in the spool.
    pub(crate) fn saved_state(&mut self) -> SavedState {
        self.sync_step_count();
        SavedState {
            task_id: self.task_id,
            acked: self.outbox.acked(),
            started_at: self.started_at,
            log: self.log.clone(),
            outputs: self.outputs.clone(),
            sent_outputs: self.sent_outputs.clone(),
            result: self.result.map(|r| r as i32),
            server_result: self.server_result.map(|r| r as i32),
        }
    }

    /// Saves the state; a failing disk is reported once and does not stop the reporting.
    pub(crate) fn save_state(&mut self) {
        let state = self.saved_state();
        let saved = self.spool.save(&state);
        self.spool_result(saved);
    }

    fn spool_result(&mut self, result: Result<(), ReportError>) {
        if let Err(e) = result
            && !self.spool_warned
        {
            self.spool_warned = true;
            tracing::warn!(task = self.task_id, error = %e, "the task spool failed; rows are kept in memory only");
        }
    }

    fn sync_step_count(&mut self) {
        let count = self.step_count.load(Ordering::Relaxed);
        if count != UNKNOWN_STEPS {
            self.log.step_count = Some(count);
        }
    }

    /// Rows the log produced: spooled, then queued for sending (in memory while the
    /// outbox's window has room). When the spool fails, the rows waiting in it are taken
    /// back into memory and the new ones stay there.
    pub(crate) fn take_rows(&mut self, rows: Vec<Row>, now: Instant) {
        let appended = self.spool.append(&rows);
        let spooled = appended.is_ok();
        self.spool_result(appended);
        if !spooled {
            self.refill(true);
        }
        for row in rows {
            if spooled {
                self.outbox.push_spooled(row, now);
            } else {
                self.outbox.push(row, now);
            }
        }
    }

    /// Reads rows waiting in the spool back into the outbox's memory window (with `all`,
    /// every one). A row that cannot be read back is sent as a placeholder saying so, so
    /// the rows after it keep their indexes.
    pub(crate) fn refill(&mut self, all: bool) {
        while let Some((from, rows, bytes)) = self.outbox.wanted_from_disk(all) {
            let now = Instant::now();
            let error = match self.spool.read_rows(from, rows.min(MAX_CALL_ROWS), bytes) {
                Ok(read) if !read.is_empty() => {
                    self.outbox.refilled(read, now);
                    continue;
                }
                Ok(_) => "the spool file ends before them".to_string(),
                Err(error) => error.to_string(),
            };
            let missing = rows.min(MAX_CALL_ROWS);
            tracing::error!(task = self.task_id, from, missing, error = %error, "log rows cannot be read back from the spool; the server's log gets a placeholder for each");
            let placeholder = Row {
                time: SystemTime::now(),
                content: format!(
                    "(this log row was lost: the runner could not read it back from its spool: {error})"
                ),
            };
            self.outbox.refilled(vec![placeholder; missing], now);
        }
    }

    /// One event of the engine.
    pub(crate) fn on_event(&mut self, event: Event) {
        let now = Instant::now();
        if let Event::Summary { steps, .. } = &event {
            self.summaries = steps.clone();
        }
        let applied = self.log.apply(event, SystemTime::now());
        self.take_rows(applied.rows, now);
        if let Some(outputs) = applied.job_outputs {
            self.add_outputs(outputs);
            self.state_due = true;
        }
        if applied.boundary {
            self.flush_through = self.outbox.total();
            self.state_due = true;
            self.save_state();
        }
    }

    /// Adds job outputs to send (the first value of a key wins); oversized ones are
    /// dropped with a runner row saying so.
    pub(crate) fn add_outputs(&mut self, outputs: Vec<(String, String)>) {
        let mut notes = Vec::new();
        for (key, value) in outputs {
            if key.len() > MAX_OUTPUT_KEY || value.len() > MAX_OUTPUT_VALUE {
                let shown: String = key.chars().take(64).collect();
                notes.push(format!(
                    "The job output {shown:?} was dropped: Gitea stores keys of at most {MAX_OUTPUT_KEY} bytes and values of at most 1 MiB (this one: key {} bytes, value {} bytes)",
                    key.len(),
                    value.len()
                ));
                continue;
            }
            if !self.sent_outputs.contains(&key) {
                self.outputs.entry(key).or_insert(value);
            }
        }
        let now = SystemTime::now();
        for note in notes {
            let rows = self.log.runner_row(&note, now);
            self.take_rows(rows, Instant::now());
        }
        self.save_state();
    }

    /// The UpdateTask request for the current state.
    pub(crate) fn task_request(
        &mut self,
        result: TaskResult,
        stopped_at: Option<SystemTime>,
    ) -> UpdateTaskRequest {
        self.sync_step_count();
        UpdateTaskRequest {
            state: Some(TaskState {
                id: self.task_id,
                result: result as i32,
                started_at: Some(timestamp(self.started_at)),
                stopped_at: stopped_at.map(timestamp),
                steps: self.log.step_states(),
            }),
            outputs: self.outputs.clone(),
        }
    }

    /// The UpdateLog request carrying `batch`, noting the rows as sent.
    pub(crate) fn log_request(&mut self, batch: &Batch, no_more: bool) -> UpdateLogRequest {
        let synced = self.spool.sync();
        self.spool_result(synced);
        let (first, again) = self.outbox.record_sent(batch);
        self.rows_sent += first;
        self.rows_resent += again;
        self.counters.add_sent(first, again);
        UpdateLogRequest {
            task_id: self.task_id,
            index: batch.index,
            rows: batch.rows.iter().map(Row::to_proto).collect(),
            no_more,
        }
    }

    /// Applies an UpdateLog answer; false when it acknowledged nothing new.
    pub(crate) fn apply_ack(&mut self, batch: &Batch, ack: i64) -> bool {
        let now = Instant::now();
        let progressed = match self.outbox.on_ack(batch, ack) {
            AckOutcome::Advanced { acked, clamped } => {
                if clamped {
                    tracing::warn!(
                        task = self.task_id,
                        ack,
                        sent_to = batch.end(),
                        "the server acknowledged rows it was not sent; taking what was sent"
                    );
                }
                for received in &acked {
                    self.counters
                        .record_latency(now.saturating_duration_since(*received));
                }
                self.refill(false);
                !acked.is_empty() || batch.rows.is_empty()
            }
            AckOutcome::Lost { from, had } => {
                tracing::warn!(
                    task = self.task_id,
                    from,
                    had,
                    "the server lost log rows it had acknowledged; sending them again"
                );
                let lost = usize::try_from(had - from).unwrap_or(0);
                if !self.spool.is_broken() {
                    // Every row is in the spool: read them all back from there in order.
                    self.outbox.spill_back(from);
                    self.refill(false);
                } else {
                    match self.spool.read_rows(from, lost, usize::MAX) {
                        Ok(rows) if rows.len() == lost => {
                            self.outbox.rewind(from, rows, now);
                        }
                        Ok(_) | Err(_) => {
                            tracing::error!(
                                task = self.task_id,
                                from,
                                had,
                                "the lost rows are not in the spool; the server's log will have a gap"
                            );
                        }
                    }
                }
                true
            }
        };
        self.save_state();
        progressed
    }

    /// Applies an UpdateTask answer: acknowledged outputs, and the server's result.
    pub(crate) fn apply_task_answer(&mut self, answer: &UpdateTaskResponse) -> TaskResult {
        for key in &answer.sent_outputs {
            self.outputs.remove(key);
            self.sent_outputs.insert(key.clone());
        }
        let result = answer
            .state
            .as_ref()
            .and_then(|s| TaskResult::try_from(s.result).ok())
            .unwrap_or(TaskResult::Unspecified);
        if result != TaskResult::Unspecified && self.server_result.is_none() {
            tracing::info!(
                task = self.task_id,
                result = result.as_str_name(),
                "the server ended the task"
            );
            self.server_result = Some(result);
            self.server_cancel.cancel();
        }
        self.save_state();
        result
    }

    /// Notes a failed UpdateLog; true when the server archived the log (no rows can be
    /// added any more).
    pub(crate) fn log_failed(&mut self, batch: &Batch, error: &RpcError, no_more: bool) -> bool {
        self.counters.add_error();
        if log_archived(error) {
            tracing::warn!(
                task = self.task_id,
                unsent = self.outbox.unacked(),
                "the server archived the task log; the rows it has not stored are dropped"
            );
            self.log_closed = true;
            return true;
        }
        if !no_more && outcome_unknown(error) {
            self.outbox.record_unknown(batch);
        }
        tracing::debug!(task = self.task_id, error = %error, "UpdateLog failed; sending again from the acknowledged row");
        false
    }
}

/// The server refused rows because the log is archived (Gitea: `AlreadyExists`, possibly
/// flattened to `unknown`).
pub(crate) fn log_archived(error: &RpcError) -> bool {
    match error {
        RpcError::Server { code, message, .. } => {
            *code == Code::AlreadyExists
                || message.contains("AlreadyExists")
                || message.contains("has been archived")
        }
        _ => false,
    }
}

/// The call may have taken effect without the reporter learning its answer.
pub(crate) fn outcome_unknown(error: &RpcError) -> bool {
    matches!(
        error,
        RpcError::Send { .. }
            | RpcError::Timeout { .. }
            | RpcError::Decode { .. }
            | RpcError::Gzip { .. }
            | RpcError::TooLarge { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_five_seconds_and_resets() {
        let mut b = Backoff::default();
        let now = Instant::now();
        assert!(b.ready(now));
        let delays: Vec<u128> = (0..8).map(|_| b.fail(now).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert!(!b.ready(now));
        assert!(b.ready(now + Duration::from_secs(5)));
        b.succeed();
        assert!(b.ready(now));
        assert_eq!(b.fail(now), Duration::from_millis(100));
    }

    #[test]
    fn a_backoff_within_bounds_doubles_from_its_first_delay_to_its_cap() {
        let mut b = Backoff::default();
        let now = Instant::now();
        let ms = Duration::from_millis;
        let capped: Vec<u128> = (0..4)
            .map(|_| b.fail_within(now, ms(30), Some(ms(100))).as_millis())
            .collect();
        assert_eq!(capped, [30, 60, 100, 100]);
        let mut b = Backoff::default();
        let free: Vec<u128> = (0..4)
            .map(|_| b.fail_within(now, ms(30), None).as_millis())
            .collect();
        assert_eq!(free, [30, 60, 120, 240]);
    }

    #[test]
    fn archived_logs_and_unknown_outcomes_are_told_apart() {
        let server = |code, message: &str| RpcError::Server {
            method: "UpdateLog",
            status: 500,
            code,
            message: message.into(),
        };
        assert!(log_archived(&server(
            Code::Unknown,
            "rpc error: code = AlreadyExists desc = log file has been archived"
        )));
        assert!(log_archived(&server(Code::AlreadyExists, "archived")));
        assert!(!log_archived(&server(Code::Internal, "db")));
        assert!(!outcome_unknown(&server(Code::Unknown, "500")));
        assert!(outcome_unknown(&RpcError::Timeout {
            method: "UpdateLog",
            timeout: Duration::from_secs(1)
        }));
    }
}
