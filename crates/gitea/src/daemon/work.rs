//! The real work of one task in `hybrid-runner daemon`: the job engine and the reporter
//! joined by an event channel. Per task: `EventSink::channel()` →
//! [`TaskReporter::start`] (spool folder, shipping loop) → [`run_task`] with a `cancel`
//! that fires when the server ends the task ([`TaskReporter::server_cancel`]) or when the
//! daemon's shutdown grace has passed → [`TaskReporter::finish`] (final log, then final
//! state). The task's capacity slot is held until `finish` returns.
//!
//! At start, [`TaskWork::recover`] finishes what a killed daemon left in the spool.

use std::future::Future;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::diagnostics::chain;
use super::poller::TaskControl;
use crate::RunnerClient;
use crate::proto::runner::v1::{
    LogRow, Result as TaskResult, Task, TaskState, UpdateLogRequest, UpdateTaskRequest,
};
use crate::proto::well_known::Timestamp;
use crate::report::{ReportCounters, ReportSettings, TaskReporter, main_step_count, recover};
use crate::task::{TaskSettings, run_task};
use hr_engine::events::EventSink;

/// Everything a task needs, shared by every task of the daemon.
#[derive(Debug, Clone)]
pub struct TaskWork {
    client: RunnerClient,
    settings: Arc<TaskSettings>,
    report: ReportSettings,
    counters: ReportCounters,
}

impl TaskWork {
    pub fn new(
        client: RunnerClient,
        settings: TaskSettings,
        report: ReportSettings,
        counters: ReportCounters,
    ) -> TaskWork {
        TaskWork {
            client,
            settings: Arc::new(settings),
            report,
            counters,
        }
    }

    /// Finishes the reports of the tasks a killed daemon left in the spool; logs each.
    pub async fn recover(&self) {
        for task in recover(&self.client, &self.report, &self.counters).await {
            match &task.report {
                Ok(report) => tracing::warn!(
                    task = task.task_id,
                    result = report.server_result.as_str_name(),
                    "finished the report of a task a stopped daemon left running"
                ),
                // The reporter has said why it removed the folder (the task is not this
                // runner's); only a kept folder is retried.
                Err(_) if task.folder_removed => {}
                Err(e) => tracing::warn!(
                    task = task.task_id,
                    error = %chain(&e),
                    "cannot finish the report of a task a stopped daemon left running; its spool is kept and tried again at the next start"
                ),
            }
        }
    }

    /// The work of one task, as the poll loop runs it: returns the result the server
    /// holds in the end (`Unspecified` when the final report failed).
    pub fn run(
        &self,
        task: Task,
        control: TaskControl,
    ) -> impl Future<Output = TaskResult> + Send + use<> {
        let work = self.clone();
        async move { work.run_one(task, control).await }
    }

    async fn run_one(self, task: Task, control: TaskControl) -> TaskResult {
        let task_id = task.id;
        let (sink, events) = EventSink::channel();
        let mut reporter = match TaskReporter::start(
            self.client.clone(),
            task_id,
            self.report.clone(),
            events,
            self.counters.clone(),
        ) {
            Ok(reporter) => reporter,
            Err(e) => {
                tracing::error!(task = task_id, error = %chain(&e), "cannot start the task's reporter; the task is reported failed without running");
                return self.refuse(task_id, &e.to_string()).await;
            }
        };
        if let Some(count) = main_step_count(&task) {
            reporter.set_step_count(count);
        }
        if let Some(context) = &task.context {
            reporter.set_summary_upload(crate::summary::SummaryUpload::for_task(
                &self.settings.instance,
                self.settings.capabilities.as_deref(),
                &crate::task::context_object(context),
            ));
        }
        // Cancelled by the server (its answer to UpdateTask) or by the daemon's shutdown.
        let cancel = CancellationToken::new();
        let watcher = tokio::spawn({
            let (cancel, server, shutdown) = (
                cancel.clone(),
                reporter.server_cancel(),
                control.cancel.clone(),
            );
            async move {
                tokio::select! {
                    _ = server.cancelled() => tracing::info!(task = task_id, "the server ended the task; cancelling it"),
                    _ = shutdown.cancelled() => {}
                }
                cancel.cancel();
            }
        });
        let run = run_task(task, &self.settings, sink, cancel, control.hard_cancel).await;
        watcher.abort();
        match reporter.finish(run.result, run.outputs).await {
            Ok(report) => report.server_result,
            Err(e) => {
                tracing::error!(task = task_id, error = %chain(&e), "the final report failed; the spool keeps the task for the next start");
                TaskResult::Unspecified
            }
        }
    }

    /// Without a reporter (the spool cannot be written): one runner row with `why`, the
    /// final log, then FAILURE, each tried once, so the server does not wait for a zombie.
    async fn refuse(&self, task_id: i64, why: &str) -> TaskResult {
        let row = LogRow {
            time: Some(now()),
            content: format!("error: the runner cannot run this task: {why}"),
        };
        let log = UpdateLogRequest {
            task_id,
            index: 0,
            rows: vec![row],
            no_more: true,
        };
        if let Err(e) = self.client.update_log(&log).await {
            tracing::warn!(task = task_id, error = %chain(&e), "cannot send the task's last log row");
        }
        let state = UpdateTaskRequest {
            state: Some(TaskState {
                id: task_id,
                result: TaskResult::Failure as i32,
                stopped_at: Some(now()),
                ..TaskState::default()
            }),
            ..UpdateTaskRequest::default()
        };
        match self.client.update_task(&state).await {
            Ok(_) => TaskResult::Failure,
            Err(e) => {
                tracing::warn!(task = task_id, error = %chain(&e), "cannot report the task failed");
                TaskResult::Unspecified
            }
        }
    }
}

/// The reporter's counters as `/metrics` prints them.
pub fn figures(counters: &ReportCounters) -> super::ReportFigures {
    super::ReportFigures {
        rows_sent: counters.rows_sent(),
        rows_resent: counters.rows_resent(),
        report_errors: counters.report_errors(),
        latency: Some(counters.latency()),
    }
}

fn now() -> Timestamp {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
    }
}
