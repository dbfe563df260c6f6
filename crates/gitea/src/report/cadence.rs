//! The shipping loop of one task while its job runs: it turns the engine's events into
//! spooled rows, and decides each time anew which calls are due:
//!
//! - `UpdateLog` when rows wait and [`super::ReportSettings::batch_rows`] of them are buffered, or
//!   the oldest is [`super::ReportSettings::max_latency`] old, or a step started or ended since;
//!   it carries every unacknowledged row from the first one (capped per call).
//! - `UpdateTask` (the state with its steps, unacknowledged outputs, no result) at a step
//!   boundary (after that boundary's log flush, unless that flush is failing), when
//!   outputs arrive, and at least every [`super::ReportSettings::heartbeat`]. Once an
//!   answer carries a final result the server ended the task: `server_cancel` fires and
//!   no more UpdateTask goes out before the final one.
//!
//! At most one call of each kind is in flight, so a slow UpdateLog does not hold back the
//! heartbeat. A failed call is retried after a backoff of its own kind (100 ms doubling to
//! 5 s), forever while the task runs; events keep being read and spooled meanwhile.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::outbox::Batch;
use super::ship::{MAX_CALL_BYTES, MAX_CALL_ROWS, Shipper};
use crate::RpcError;
use crate::proto::runner::v1::{Result as TaskResult, UpdateLogResponse, UpdateTaskResponse};
use hr_engine::events::EventReceiver;

/// A call on its way, and its answer.
type InFlight = Pin<Box<dyn Future<Output = Answer> + Send>>;

enum Answer {
    Log {
        batch: Batch,
        result: Result<UpdateLogResponse, RpcError>,
    },
    Task {
        result: Result<UpdateTaskResponse, RpcError>,
    },
}

impl Shipper {
    /// The UpdateLog call to make now, if any, with the rows it carries.
    fn next_log_call(&mut self, now: Instant) -> Option<(InFlight, Batch)> {
        if !(self.log_due(now) && self.log_retry.ready(now)) {
            return None;
        }
        let client = self.client.clone();
        let batch = self.outbox.batch(MAX_CALL_ROWS, MAX_CALL_BYTES);
        let request = self.log_request(&batch, false);
        let carried = batch.clone();
        let call: InFlight = Box::pin(async move {
            let result = client.update_log(&request).await;
            Answer::Log { batch, result }
        });
        Some((call, carried))
    }

    /// The UpdateTask call to make now, if any: an overdue heartbeat, or a changed state
    /// once the flush of its step boundary is done (or failing).
    fn next_task_call(&mut self, now: Instant, log_busy: bool) -> Option<InFlight> {
        if self.server_result.is_some() || !self.task_retry.ready(now) {
            return None;
        }
        let heartbeat_due = self.heartbeat_at(now) <= now;
        if !(heartbeat_due || (self.state_due && !self.boundary_flush_pending(now, log_busy))) {
            return None;
        }
        self.last_state_call = Some(now);
        self.state_due = false;
        let request = self.task_request(TaskResult::Unspecified, None);
        let client = self.client.clone();
        Some(Box::pin(async move {
            Answer::Task {
                result: client.update_task(&request).await,
            }
        }))
    }

    fn heartbeat_at(&self, now: Instant) -> Instant {
        self.last_state_call
            .map_or(now, |t| t + self.settings.heartbeat)
    }

    /// Rows up to the last step boundary wait for a call that is on its way or may go now.
    fn boundary_flush_pending(&self, now: Instant, log_busy: bool) -> bool {
        !self.log_closed
            && self.outbox.acked() < self.flush_through
            && (log_busy || self.log_retry.ready(now))
    }

    fn log_due(&self, now: Instant) -> bool {
        !self.log_closed
            && self.outbox.unacked() > 0
            && (self.outbox.unacked() >= self.settings.batch_rows
                || self.outbox.acked() < self.flush_through
                || self
                    .outbox
                    .oldest()
                    .is_some_and(|t| now >= t + self.settings.max_latency))
    }

    /// When a call of an idle kind may become due; `None` when nothing will without an
    /// answer or an event.
    fn next_wakeup(&self, now: Instant, log_busy: bool, task_busy: bool) -> Option<Instant> {
        let later_of = |a: Instant, b: Option<Instant>| b.map_or(a, |b| a.max(b));
        let mut wake: Option<Instant> = None;
        let mut consider = |at: Instant| wake = Some(wake.map_or(at, |w| w.min(at)));
        if !log_busy
            && !self.log_closed
            && let Some(oldest) = self.outbox.oldest()
        {
            let due = if self.log_due(now) {
                now
            } else {
                oldest + self.settings.max_latency
            };
            consider(later_of(due, self.log_retry.until));
        }
        if !task_busy && self.server_result.is_none() {
            consider(later_of(self.heartbeat_at(now), self.task_retry.until));
            if self.state_due && !self.boundary_flush_pending(now, log_busy) {
                consider(later_of(now, self.task_retry.until));
            }
        }
        wake.map(|w| w.max(now + Duration::from_millis(1)))
    }

    fn on_answer(&mut self, answer: Answer) {
        let now = Instant::now();
        match answer {
            Answer::Log { batch, result } => match result {
                Ok(answer) => {
                    if self.apply_ack(&batch, answer.ack_index) {
                        self.log_retry.succeed();
                    } else {
                        // A refused gap or a lagging ack: try again, but not in a loop.
                        self.log_retry.fail(now);
                    }
                }
                Err(error) => {
                    if !self.log_failed(&batch, &error, false) {
                        self.log_retry.fail(now);
                    }
                }
            },
            Answer::Task { result } => match result {
                Ok(answer) => {
                    self.task_retry.succeed();
                    self.apply_task_answer(&answer);
                }
                Err(error) => {
                    self.counters.add_error();
                    self.state_due = true;
                    let delay = self.task_retry.fail(now);
                    tracing::debug!(task = self.task_id, error = %error, ?delay, "UpdateTask failed");
                }
            },
        }
    }
}

/// Waits for the call in flight; never resolves without one.
async fn answer_of(in_flight: &mut Option<InFlight>) -> Answer {
    match in_flight {
        Some(call) => call.await,
        None => std::future::pending().await,
    }
}

/// The loop: reads events until the engine's channel closes, ships them (at most one
/// UpdateLog and one UpdateTask in flight), and returns the shipper when `finish` fires
/// (after the calls in flight are answered, or given up after `close_timeout` with their
/// rows counted as possibly stored, and every event still queued is taken). `None` when
/// the reporter was dropped without `finish` (the spool folder stays for
/// [`super::recover`]).
pub(crate) async fn run(
    mut shipper: Shipper,
    mut events: EventReceiver,
    mut finish: oneshot::Receiver<()>,
) -> Option<Shipper> {
    let mut events_open = true;
    let mut log_call: Option<InFlight> = None;
    let mut carried: Option<Batch> = None;
    let mut task_call: Option<InFlight> = None;
    loop {
        let now = Instant::now();
        if log_call.is_none()
            && let Some((call, batch)) = shipper.next_log_call(now)
        {
            log_call = Some(call);
            carried = Some(batch);
        }
        if task_call.is_none() {
            task_call = shipper.next_task_call(now, log_call.is_some());
        }
        let wake = shipper.next_wakeup(now, log_call.is_some(), task_call.is_some());
        tokio::select! {
            biased;
            signal = &mut finish => {
                if signal.is_err() {
                    tracing::warn!(task = shipper.task_id, "the reporter was dropped without finishing; the spool keeps the task");
                    return None;
                }
                let limit = shipper.settings.close_timeout;
                if let Some(call) = log_call.take() {
                    match tokio::time::timeout(limit, call).await {
                        Ok(answer) => shipper.on_answer(answer),
                        Err(_) => {
                            if let Some(batch) = &carried {
                                shipper.outbox.record_unknown(batch);
                            }
                        }
                    }
                }
                if let Some(call) = task_call.take()
                    && let Ok(answer) = tokio::time::timeout(limit, call).await
                {
                    shipper.on_answer(answer);
                }
                events.close();
                while let Some(event) = events.recv().await {
                    shipper.on_event(event);
                }
                return Some(shipper);
            }
            answer = answer_of(&mut log_call) => {
                log_call = None;
                carried = None;
                shipper.on_answer(answer);
            }
            answer = answer_of(&mut task_call) => {
                task_call = None;
                shipper.on_answer(answer);
            }
            event = events.recv(), if events_open => match event {
                Some(event) => shipper.on_event(event),
                None => events_open = false,
            },
            _ = sleep_until_opt(wake) => {}
        }
    }
}

async fn sleep_until_opt(wake: Option<Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::proto::runner::v1::TaskState;
    use crate::report::spool::Spool;
    use crate::report::{ReportCounters, ReportSettings};
    use crate::{ClientOptions, RunnerClient};
    use hr_engine::events::{Event, JobKey, LogKind, Outcome, StepKey};

    /// A shipper whose client is never called (nothing polls the calls built here).
    fn shipper(dir: &Path) -> Shipper {
        let client = RunnerClient::new("http://127.0.0.1:9", ClientOptions::default()).unwrap();
        let settings = ReportSettings {
            spool_dir: dir.to_path_buf(),
            batch_rows: 3,
            max_latency: Duration::from_secs(1),
            heartbeat: Duration::from_secs(5),
            close_timeout: Duration::from_secs(1),
            ..ReportSettings::new(dir.to_path_buf())
        };
        let spool = Spool::create(dir, 1).unwrap();
        Shipper::new(client, 1, settings, ReportCounters::default(), spool)
    }

    fn job() -> JobKey {
        JobKey {
            id: "j".into(),
            name: "j".into(),
        }
    }

    fn step() -> StepKey {
        StepKey {
            index: 0,
            id: "s".into(),
            name: "s".into(),
            main: Some(0),
            nested: false,
        }
    }

    fn row(s: &mut Shipper) {
        s.on_event(Event::Log {
            job: job(),
            step: None,
            kind: LogKind::Stdout,
            line: "x".into(),
        });
    }

    fn step_events(s: &mut Shipper) {
        s.on_event(Event::StepStarted {
            job: job(),
            step: step(),
        });
        row(s);
        s.on_event(Event::StepFinished {
            job: job(),
            step: step(),
            outcome: Outcome::Success,
            conclusion: Outcome::Success,
            duration: Duration::ZERO,
            outputs: Vec::new(),
        });
    }

    #[test]
    fn logs_flush_on_a_full_batch_an_old_row_or_a_step_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = shipper(dir.path());
        row(&mut s);
        row(&mut s);
        let now = Instant::now();
        assert!(!s.log_due(now), "two rows, young, no boundary");
        assert!(
            s.log_due(now + Duration::from_secs(1)),
            "the oldest is 1 s old"
        );
        let wake = s.next_wakeup(now, false, true).unwrap();
        assert!(wake > now && wake <= now + Duration::from_secs(1));
        row(&mut s);
        assert!(s.log_due(Instant::now()), "a full batch");

        let mut s = shipper(dir.path());
        step_events(&mut s);
        assert_eq!(s.outbox.unacked(), 1);
        assert!(s.log_due(Instant::now()), "a step ended");
        assert!(s.next_log_call(Instant::now()).is_some());
    }

    #[test]
    fn state_waits_for_the_boundary_flush_unless_it_fails_or_a_heartbeat_is_due() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = shipper(dir.path());
        let start = Instant::now();
        assert!(
            s.next_task_call(start, false).is_some(),
            "the first state at once"
        );
        assert!(s.next_task_call(start, false).is_none(), "nothing changed");
        step_events(&mut s);
        let now = Instant::now();
        assert!(
            s.next_task_call(now, true).is_none(),
            "the flush is on its way"
        );
        assert!(
            s.next_task_call(now, false).is_none(),
            "the flush may go now"
        );
        // Nothing but the heartbeat wakes the loop while the flush is on its way.
        assert_eq!(
            s.next_wakeup(now, true, false),
            Some(start + Duration::from_secs(5))
        );
        s.log_retry.fail(now);
        assert!(
            s.next_task_call(now, false).is_some(),
            "the flush is failing"
        );

        let mut s = shipper(dir.path());
        let _ = s.next_task_call(start, false);
        step_events(&mut s);
        let later = start + Duration::from_secs(5);
        assert!(
            s.next_task_call(later, true).is_some(),
            "an overdue heartbeat goes"
        );
        assert!(s.next_task_call(later, true).is_none());
    }

    #[test]
    fn once_the_server_ends_the_task_no_state_goes_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = shipper(dir.path());
        let token = s.server_cancel.clone();
        let held = s.apply_task_answer(&UpdateTaskResponse {
            state: Some(TaskState {
                id: 1,
                result: TaskResult::Cancelled as i32,
                ..TaskState::default()
            }),
            sent_outputs: Vec::new(),
        });
        assert_eq!(held, TaskResult::Cancelled);
        assert!(token.is_cancelled());
        let later = Instant::now() + Duration::from_secs(60);
        assert!(s.next_task_call(later, false).is_none());
        assert_eq!(s.next_wakeup(later, false, false), None);
        row(&mut s);
        assert!(
            s.next_wakeup(later, false, false).is_some(),
            "rows still go"
        );
    }
}
