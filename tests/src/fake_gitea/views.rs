//! What a test hands the fake Gitea (a [`TaskSpec`] to queue) and what it reads back:
//! snapshots of tasks ([`TaskView`], with the steps, outputs and log rows the runner
//! reported), runners ([`RunnerView`]) and recorded calls ([`RecordedRequest`]).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::faults::Method;
use super::pb;

/// A job waiting for a runner: Gitea's `ActionRunJob` once it is `Waiting`.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// The job's `runs-on` label names; a runner gets the task only when it has every one.
    pub labels_required: Vec<String>,
    /// The expanded single-job workflow YAML (`Task.workflow_payload`).
    pub workflow_payload: String,
    /// The `github`/`gitea` context (`Task.context`); must be a JSON object (or null).
    pub context: Value,
    pub secrets: BTreeMap<String, String>,
    pub vars: BTreeMap<String, String>,
    /// Upstream job id → its outputs and result (`Task.needs`).
    pub needs: BTreeMap<String, NeedSpec>,
}

impl TaskSpec {
    /// A task for `runs-on: labels` running `workflow_payload`, with an empty context.
    pub fn new(labels: &[&str], workflow_payload: &str) -> TaskSpec {
        TaskSpec {
            labels_required: labels.iter().map(|l| l.to_string()).collect(),
            workflow_payload: workflow_payload.to_string(),
            context: Value::Object(serde_json::Map::new()),
            secrets: BTreeMap::new(),
            vars: BTreeMap::new(),
            needs: BTreeMap::new(),
        }
    }
}

/// The outputs and result of an upstream job (`TaskNeed`).
#[derive(Debug, Clone, PartialEq)]
pub struct NeedSpec {
    pub outputs: BTreeMap<String, String>,
    pub result: pb::Result,
}

/// Where a task is in Gitea's life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    /// Queued, not assigned to a runner yet.
    Waiting,
    /// Assigned to a runner, no final result yet.
    Running,
    /// Cancelled by the test while running on a runner that declared the `cancelling`
    /// capability: UpdateTask answers CANCELLED, and the runner's reports are still stored
    /// until its final one, which makes the task `Done(Cancelled)` whatever it says.
    Cancelling,
    /// Final, with the server's result.
    Done(pb::Result),
}

/// One step as the runner last reported it (`StepState`, matched by its 0-based index).
#[derive(Debug, Clone, PartialEq)]
pub struct StepView {
    pub result: pb::Result,
    pub started_at: Option<SystemTime>,
    pub stopped_at: Option<SystemTime>,
    pub log_index: i64,
    pub log_length: i64,
    /// How many UpdateTask calls carried this step.
    pub reports: usize,
}

/// One stored log row.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// The row's 0-based index in the task log.
    pub index: i64,
    pub content: String,
    /// The row's `time` as the runner sent it.
    pub time: Option<SystemTime>,
    /// When the fake stored (and so could acknowledge) it.
    pub stored_at: SystemTime,
}

/// A snapshot of one task and everything the runner reported for it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    pub id: i64,
    pub spec: TaskSpec,
    pub status: TaskStatus,
    /// The UUID of the runner it was assigned to.
    pub runner_uuid: Option<String>,
    /// The `x-runner-request-key` of the FetchTask that assigned it (recorded only with
    /// [`super::FakeGiteaOptions::redeliver_by_request_key`]).
    pub request_key: Option<String>,
    /// How many times a FetchTask with that key got it again.
    pub redeliveries: u32,
    /// When FetchTask handed it out, and when it became final on the server.
    pub assigned_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    /// The last UpdateTask call for it.
    pub last_update_at: Option<SystemTime>,
    /// The longest time without an UpdateTask while it was not final, from its assignment
    /// on (a daemon must send a heartbeat at least every 5 s).
    pub longest_silence: Duration,
    /// The last result other than UNSPECIFIED the runner reported (even when the server
    /// kept its own, e.g. after a cancellation).
    pub reported_result: Option<pb::Result>,
    /// `TaskState.started_at` / `stopped_at` from the runner's last report that had them.
    pub started_at: Option<SystemTime>,
    pub stopped_at: Option<SystemTime>,
    /// Step index → last report. Only indexes of the payload's `steps:` list are kept
    /// (Gitea ignores unknown ids); all ids when the payload could not be read.
    pub steps: BTreeMap<i64, StepView>,
    /// The job outputs, first value wins.
    pub outputs: BTreeMap<String, String>,
    /// Output values the runner sent for a key already stored (ignored, as Gitea does).
    pub ignored_outputs: Vec<(String, String)>,
    /// Stored log rows, in index order (row `i` has index `i`).
    pub log: Vec<LogLine>,
    /// An UpdateLog with `no_more` was stored: the log is archived.
    pub log_closed: bool,
    /// UpdateLog calls refused because `index` was past the stored rows (a gap).
    pub log_gaps_refused: usize,
    /// Rows received again that were already stored (dropped by the overlap rule).
    pub log_rows_resent: usize,
    /// UpdateTask calls for this task, and how many of them had no result (heartbeats).
    pub updates: usize,
    pub heartbeats: usize,
    /// The number of steps in the payload's job, when it could be read.
    pub step_count: Option<usize>,
    /// Job summaries the runner uploaded, by step index (Gitea's
    /// `action_run_job_summary`): markdown.
    pub summaries: BTreeMap<i64, String>,
}

impl TaskView {
    /// The stored log rows' contents, in order.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.iter().map(|l| l.content.clone()).collect()
    }

    /// The stored rows of step `index`, by the `log_index` / `log_length` the runner last
    /// reported for it (empty when it reported none).
    pub fn step_log(&self, index: i64) -> Vec<String> {
        let Some(step) = self.steps.get(&index) else {
            return Vec::new();
        };
        let start = usize::try_from(step.log_index).unwrap_or(0);
        let len = usize::try_from(step.log_length).unwrap_or(0);
        self.log
            .iter()
            .skip(start)
            .take(len)
            .map(|l| l.content.clone())
            .collect()
    }

    /// Whether the task has a final result.
    pub fn is_done(&self) -> bool {
        matches!(self.status, TaskStatus::Done(_))
    }

    /// The final result, if any.
    pub fn result(&self) -> Option<pb::Result> {
        match self.status {
            TaskStatus::Done(r) => Some(r),
            _ => None,
        }
    }
}

/// A registered runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerView {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    /// Label names from Register, replaced by Declare's.
    pub labels: Vec<String>,
    pub ephemeral: bool,
    /// From Register, replaced by Declare's.
    pub version: String,
    pub capabilities: Vec<String>,
    /// How many Declare calls it made.
    pub declares: usize,
    /// The registration token it used.
    pub registration_token: String,
    /// Deleted (ephemeral runner whose task finished, or [`super::FakeGitea::delete_runner`]):
    /// its token no longer works.
    pub deleted: bool,
    /// The tasks it was given, in order.
    pub tasks: Vec<i64>,
    /// The most tasks it ever held at once without a final result (measured when a task
    /// is handed out), to check a daemon's capacity.
    pub peak_running: usize,
}

/// One call the fake received, in arrival order.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// `None` for a path that names no RPC.
    pub method: Option<Method>,
    pub http_method: String,
    pub path: String,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub accept_encoding: Option<String>,
    pub user_agent: Option<String>,
    pub connect_protocol_version: Option<String>,
    pub runner_uuid: Option<String>,
    /// Whether an `x-runner-token` header was sent (its value is not recorded).
    pub runner_token_sent: bool,
    /// The `x-runner-request-key` header (forgejo-runner sends one per FetchTask, the same
    /// again until an answer arrives).
    pub request_key: Option<String>,
    /// The decoded request message in proto3 JSON form; `None` if it could not be decoded.
    pub body: Option<Value>,
    /// The HTTP status answered (0 while the call is still being handled, or when the
    /// connection was dropped before any answer).
    pub status: u16,
    /// The Connect error code answered, if any.
    pub error_code: Option<String>,
    pub received_at: SystemTime,
}
