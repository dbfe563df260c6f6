//! Gitea's server rules for the runner protocol, on plain in-memory state: registration
//! tokens and runners (token check, Declare, ephemeral deletion), the task queue
//! (`tasks_version`, assignment by label), UpdateTask (step states, first-value-wins outputs,
//! cancellation answered in the response) and UpdateLog (the ack algorithm, gaps silently
//! refused, overlaps de-duplicated, `no_more` archiving the log).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use super::faults::{Fault, Rng};
use super::pb;
use super::views::{LogLine, RunnerView, StepView, TaskSpec, TaskStatus, TaskView};

/// A refused call. Gitea answers most of them with gRPC `status` errors, which Connect
/// turns into `unknown` (see [`super::AuthErrorStyle`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RpcError {
    pub code: &'static str,
    pub message: String,
    pub origin: ErrorOrigin,
}

/// Who raises an error in Gitea, which decides how it reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorOrigin {
    /// A gRPC `status` error from Gitea's handler or interceptor.
    GrpcStatus,
    /// A bare Go error (`unknown` with its text, whatever the style).
    GoError,
    /// connect-go itself (e.g. a body it cannot decode): a proper Connect code always.
    Connect,
}

impl RpcError {
    fn new(code: &'static str, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            origin: ErrorOrigin::GrpcStatus,
        }
    }

    pub(crate) fn unauthenticated() -> RpcError {
        RpcError::new("unauthenticated", "unregistered runner")
    }
}

#[derive(Debug)]
struct RunnerRecord {
    view: RunnerView,
    token: String,
}

/// The whole server state, behind one lock in [`super::Shared`].
#[derive(Debug)]
pub(crate) struct Server {
    rng: Rng,
    registration_tokens: BTreeSet<String>,
    runners: Vec<RunnerRecord>,
    tasks: BTreeMap<i64, TaskView>,
    tasks_version: i64,
    next_task_id: i64,
    /// Whether an UpdateLog with `no_more` and no rows archives the log (Gitea after PR
    /// #37631); older Gitea ignores it, so runners send a sentinel row.
    empty_final_log_closes: bool,
}

/// Output keys longer than this, or values longer than [`MAX_OUTPUT_VALUE`], are dropped.
const MAX_OUTPUT_KEY: usize = 255;
const MAX_OUTPUT_VALUE: usize = 1 << 20;

pub(crate) fn to_time(t: &Option<pb::Timestamp>) -> Option<SystemTime> {
    let t = t.as_ref()?;
    let secs = u64::try_from(t.seconds).ok()?;
    let nanos = u32::try_from(t.nanos).ok()?;
    if secs == 0 && nanos == 0 {
        return None;
    }
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
}

fn result_of(value: i32) -> pb::Result {
    pb::Result::try_from(value).unwrap_or(pb::Result::Unspecified)
}

/// The number of steps of the single job in a task payload, if it can be read.
fn step_count(payload: &str) -> Option<usize> {
    let doc: serde_json::Value = serde_saphyr::from_str(payload).ok()?;
    let jobs = doc.get("jobs")?.as_object()?;
    let (_, job) = jobs.iter().next()?;
    Some(job.get("steps")?.as_array()?.len())
}

impl Server {
    pub(crate) fn new(seed: u64, tokens: &[String], empty_final_log_closes: bool) -> Server {
        Server {
            rng: Rng::new(seed),
            registration_tokens: tokens.iter().cloned().collect(),
            runners: Vec::new(),
            tasks: BTreeMap::new(),
            // Gitea bumps a scope's version from 0 to 1 on the first fetch.
            tasks_version: 1,
            next_task_id: 1,
            empty_final_log_closes,
        }
    }

    pub(crate) fn roll(&mut self) -> u32 {
        (self.rng.next_u64() % 100) as u32
    }

    pub(crate) fn add_registration_token(&mut self, token: &str) {
        self.registration_tokens.insert(token.to_string());
    }

    pub(crate) fn revoke_registration_token(&mut self, token: &str) -> bool {
        self.registration_tokens.remove(token)
    }

    pub(crate) fn next_task_id(&self) -> i64 {
        self.next_task_id
    }

    /// A fresh 40-hex secret (runner and task tokens).
    pub(crate) fn new_token(&mut self) -> String {
        self.rng.hex(40)
    }

    pub(crate) fn tasks_version(&self) -> i64 {
        self.tasks_version
    }

    pub(crate) fn runners(&self) -> Vec<RunnerView> {
        self.runners.iter().map(|r| r.view.clone()).collect()
    }

    pub(crate) fn tasks(&self) -> Vec<TaskView> {
        self.tasks.values().cloned().collect()
    }

    pub(crate) fn task(&self, id: i64) -> Option<TaskView> {
        self.tasks.get(&id).cloned()
    }

    /// What a task is and how many log rows it holds, without copying its log.
    pub(crate) fn task_progress(&self, id: i64) -> Option<(bool, bool, usize)> {
        self.tasks
            .get(&id)
            .map(|t| (t.is_done(), t.log_closed, t.log.len()))
    }

    /// `PUT /api/actions_pipeline/_apis/pipelines/workflows/{run}/jobs/{job}/steps/{i}/summary`
    /// as Gitea's `uploadJobSummary` (routers/api/actions/job_summary.go at 153766a2)
    /// checks it: the bearer runtime token's task must be running, the run and job ids its
    /// own, the step index one of the job's steps, the type markdown; at most 1 MiB a step
    /// and a job. `Err((status, Gitea's text))`, else `(message, size)`.
    pub(crate) fn put_summary(
        &mut self,
        bearer: Option<&str>,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(&'static str, usize), (u16, &'static str)> {
        const MAX: usize = 1 << 20;
        let claims = bearer
            .and_then(|b| b.strip_prefix("Bearer "))
            .and_then(verify_hs256)
            .ok_or((401, "Unauthorized"))?;
        let task_id = claims["TaskID"].as_i64().ok_or((401, "Unauthorized"))?;
        let task = self
            .tasks
            .get_mut(&task_id)
            .filter(|t| t.status == TaskStatus::Running)
            .ok_or((401, "Unauthorized"))?;
        let parts: Vec<&str> = path.split('/').collect();
        // ["", "api", "actions_pipeline", "_apis", "pipelines", "workflows", RUN, "jobs", JOB, "steps", I, "summary"]
        let (run, job, step) = match parts.as_slice() {
            [.., "workflows", run, "jobs", job, "steps", step, "summary"] => (*run, *job, *step),
            _ => return Err((404, "Not Found")),
        };
        let task_run = task.spec.context["run_id"].as_str().unwrap_or_default();
        if run != task_run {
            return Err((400, "run-id does not match"));
        }
        if job.parse::<i64>().ok() != Some(job_id_of_task(task_id)) {
            return Err((400, "job_id mismatch"));
        }
        let step: i64 = match step.parse() {
            Ok(s) if s >= 0 => s,
            _ => return Err((400, "invalid step_index")),
        };
        if task.step_count.is_some_and(|n| step >= n as i64) {
            return Err((400, "step_index mismatch"));
        }
        let markdown = match content_type.map(|c| c.split(';').next().unwrap_or(c).trim()) {
            None | Some("") | Some("application/octet-stream") | Some("text/markdown") => true,
            Some(_) => false,
        };
        if !markdown {
            return Err((400, "invalid summary content type"));
        }
        if body.is_empty() {
            task.summaries.remove(&step);
            return Ok(("cleared", 0));
        }
        if body.len() > MAX {
            return Err((400, "invalid summary"));
        }
        let others: usize = task
            .summaries
            .iter()
            .filter(|(i, _)| **i != step)
            .map(|(_, s)| s.len())
            .sum();
        if others + body.len() > MAX {
            return Err((400, "job summary aggregate size exceeded"));
        }
        task.summaries
            .insert(step, String::from_utf8_lossy(body).into_owned());
        Ok(("success", body.len()))
    }

    /// Queues a job and bumps `tasks_version`, as Gitea does when a job becomes Waiting.
    pub(crate) fn enqueue(&mut self, spec: TaskSpec) -> i64 {
        let id = self.next_task_id;
        self.next_task_id += 1;
        let step_count = step_count(&spec.workflow_payload);
        self.tasks.insert(
            id,
            TaskView {
                id,
                spec,
                status: TaskStatus::Waiting,
                runner_uuid: None,
                request_key: None,
                redeliveries: 0,
                assigned_at: None,
                finished_at: None,
                last_update_at: None,
                longest_silence: Duration::ZERO,
                reported_result: None,
                started_at: None,
                stopped_at: None,
                steps: BTreeMap::new(),
                outputs: BTreeMap::new(),
                ignored_outputs: Vec::new(),
                summaries: BTreeMap::new(),
                log: Vec::new(),
                log_closed: false,
                log_gaps_refused: 0,
                log_rows_resent: 0,
                updates: 0,
                heartbeats: 0,
                step_count,
            },
        );
        self.tasks_version += 1;
        id
    }

    /// Cancels a task: a waiting one ends at once; a running one becomes `Cancelling` when
    /// its runner declared the `cancelling` capability, else it ends at once (the runner
    /// learns it from its next UpdateTask answer either way). False if already done or
    /// unknown.
    pub(crate) fn cancel(&mut self, id: i64) -> bool {
        let Some(task) = self.tasks.get_mut(&id) else {
            return false;
        };
        let cancelling = task.runner_uuid.as_ref().is_some_and(|uuid| {
            self.runners.iter().any(|r| {
                &r.view.uuid == uuid && r.view.capabilities.iter().any(|c| c == "cancelling")
            })
        });
        task.status = match task.status {
            TaskStatus::Done(_) => return false,
            TaskStatus::Running if cancelling => TaskStatus::Cancelling,
            _ => TaskStatus::Done(pb::Result::Cancelled),
        };
        if task.is_done() {
            task.finished_at = Some(SystemTime::now());
        }
        true
    }

    /// Deletes a task with its run, as deleting a workflow run in Gitea's UI does: calls
    /// about it then fail as Gitea's do (`resource does not exist`). False if unknown.
    pub(crate) fn delete_task(&mut self, id: i64) -> bool {
        self.tasks.remove(&id).is_some()
    }

    /// Deletes a runner (as an admin would): its token stops working.
    pub(crate) fn delete_runner(&mut self, uuid: &str) -> bool {
        match self.runners.iter_mut().find(|r| r.view.uuid == uuid) {
            Some(r) if !r.view.deleted => {
                r.view.deleted = true;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn register(
        &mut self,
        req: pb::RegisterRequest,
    ) -> Result<pb::RegisterResponse, RpcError> {
        if req.token.is_empty() || req.name.is_empty() {
            return Err(RpcError::new(
                "invalid_argument",
                "missing runner token, name",
            ));
        }
        if !self.registration_tokens.contains(&req.token) {
            return Err(RpcError {
                code: "unauthenticated",
                message: "runner registration token not found".to_string(),
                origin: ErrorOrigin::GoError,
            });
        }
        let mut name = req.name;
        if name.len() > 255 {
            let mut cut = 255;
            while !name.is_char_boundary(cut) {
                cut -= 1;
            }
            name.truncate(cut);
        }
        // Runners older than Gitea 1.20 send their labels in the deprecated fields.
        #[allow(deprecated)]
        let labels = if req.labels.is_empty() {
            [req.agent_labels, req.custom_labels].concat()
        } else {
            req.labels
        };
        let id = self.runners.len() as i64 + 1;
        let view = RunnerView {
            id,
            uuid: self.rng.uuid(),
            name,
            labels,
            ephemeral: req.ephemeral,
            version: req.version,
            capabilities: req.capabilities,
            declares: 0,
            registration_token: req.token,
            deleted: false,
            tasks: Vec::new(),
            peak_running: 0,
        };
        let token = self.rng.hex(40);
        let mut runner = runner_message(&view);
        runner.token = token.clone();
        self.runners.push(RunnerRecord { view, token });
        Ok(pb::RegisterResponse {
            runner: Some(runner),
        })
    }

    /// The runner a call's `x-runner-uuid` / `x-runner-token` name, if they are valid.
    pub(crate) fn authenticate(
        &self,
        uuid: Option<&str>,
        token: Option<&str>,
    ) -> Result<usize, RpcError> {
        let (Some(uuid), Some(token)) = (uuid, token) else {
            return Err(RpcError::unauthenticated());
        };
        self.runners
            .iter()
            .position(|r| r.view.uuid == uuid && !r.view.deleted && r.token == token)
            .ok_or_else(RpcError::unauthenticated)
    }

    pub(crate) fn declare(
        &mut self,
        runner: usize,
        req: pb::DeclareRequest,
    ) -> pb::DeclareResponse {
        let view = &mut self.runners[runner].view;
        view.labels = req.labels;
        view.version = req.version;
        view.capabilities = req.capabilities;
        view.declares += 1;
        pb::DeclareResponse {
            runner: Some(runner_message(view)),
        }
    }

    /// FetchTask. With a `request_key` (Forgejo: `x-runner-request-key`, honoured by the
    /// server since forgejo/forgejo 0ae6235386), a key that already got this runner a task
    /// that is not done gets that task again, with a fresh token (the server only keeps the
    /// old one's hash), whatever `tasks_version` says; a new task remembers the key.
    pub(crate) fn fetch_task(
        &mut self,
        runner: usize,
        req: &pb::FetchTaskRequest,
        request_key: Option<&str>,
    ) -> pb::FetchTaskResponse {
        let latest = self.tasks_version;
        let mut response = pb::FetchTaskResponse {
            task: None,
            tasks_version: latest,
        };
        if let Some(key) = request_key {
            let uuid = self.runners[runner].view.uuid.clone();
            let token = self.rng.hex(40);
            if let Some(task) = self.tasks.values_mut().find(|t| {
                t.runner_uuid.as_deref() == Some(uuid.as_str())
                    && t.request_key.as_deref() == Some(key)
                    && !t.is_done()
            }) {
                task.redeliveries += 1;
                set_token(&mut task.spec, &token);
                response.task = Some(task_message(task));
                return response;
            }
        }
        if req.tasks_version == latest {
            return response;
        }
        let record = &mut self.runners[runner];
        if record.view.ephemeral && !record.view.tasks.is_empty() {
            return response;
        }
        let labels = &record.view.labels;
        let picked = self.tasks.values_mut().find(|t| {
            t.status == TaskStatus::Waiting
                && t.spec.labels_required.iter().all(|l| labels.contains(l))
        });
        let Some(task) = picked else {
            return response;
        };
        task.status = TaskStatus::Running;
        set_runtime_token(&mut task.spec, task.id);
        task.runner_uuid = Some(record.view.uuid.clone());
        task.request_key = request_key.map(str::to_string);
        task.assigned_at = Some(SystemTime::now());
        record.view.tasks.push(task.id);
        response.task = Some(task_message(task));
        let uuid = &record.view.uuid;
        let running = self
            .tasks
            .values()
            .filter(|t| t.runner_uuid.as_ref() == Some(uuid) && !t.is_done())
            .count();
        record.view.peak_running = record.view.peak_running.max(running);
        response
    }

    /// The task `id` if it belongs to runner `runner`. A task that does not exist gets
    /// Gitea's texts: UpdateTask `update task: resource does not exist` (from
    /// `getRunIDByTaskID` in models/actions/task.go), UpdateLog `get task: task with id N:
    /// resource does not exist` (`GetTaskByID`), both `util.ErrNotExist` under
    /// `codes.Internal` (routers/api/actions/runner/runner.go).
    fn owned_task(&mut self, runner: usize, id: i64, rpc: &str) -> Result<&mut TaskView, RpcError> {
        let uuid = &self.runners[runner].view.uuid;
        let task = self.tasks.get_mut(&id).ok_or_else(|| {
            let message = if rpc == "update log" {
                format!("get task: task with id {id}: resource does not exist")
            } else {
                format!("{rpc}: resource does not exist")
            };
            RpcError::new("internal", message)
        })?;
        if task.runner_uuid.as_ref() != Some(uuid) {
            return Err(RpcError::new(
                "internal",
                format!("{rpc}: invalid runner for task"),
            ));
        }
        Ok(task)
    }

    pub(crate) fn update_task(
        &mut self,
        runner: usize,
        req: pb::UpdateTaskRequest,
    ) -> Result<pb::UpdateTaskResponse, RpcError> {
        let state = req
            .state
            .ok_or_else(|| RpcError::new("invalid_argument", "update task: missing state"))?;
        let task = self.owned_task(runner, state.id, "update task")?;
        task.updates += 1;
        let now = SystemTime::now();
        if !task.is_done()
            && let Some(since) = task.last_update_at.or(task.assigned_at)
        {
            let silence = now.duration_since(since).unwrap_or_default();
            task.longest_silence = task.longest_silence.max(silence);
        }
        task.last_update_at = Some(now);
        let result = result_of(state.result);
        if result == pb::Result::Unspecified {
            task.heartbeats += 1;
        } else {
            task.reported_result = Some(result);
        }
        if !task.is_done() {
            record_steps(task, &state.steps);
            task.started_at = to_time(&state.started_at).or(task.started_at);
            task.stopped_at = to_time(&state.stopped_at).or(task.stopped_at);
            if result != pb::Result::Unspecified {
                task.status = TaskStatus::Done(if task.status == TaskStatus::Cancelling {
                    pb::Result::Cancelled
                } else {
                    result
                });
                task.finished_at = Some(SystemTime::now());
            }
        }
        for (key, value) in req.outputs {
            if key.len() > MAX_OUTPUT_KEY || value.len() > MAX_OUTPUT_VALUE {
                continue;
            }
            match task.outputs.entry(key) {
                std::collections::btree_map::Entry::Occupied(stored) => {
                    task.ignored_outputs.push((stored.key().clone(), value));
                }
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(value);
                }
            }
        }
        let answer = match task.status {
            TaskStatus::Done(r) => r,
            TaskStatus::Cancelling => pb::Result::Cancelled,
            _ => pb::Result::Unspecified,
        };
        let response = pb::UpdateTaskResponse {
            state: Some(pb::TaskState {
                id: task.id,
                result: answer as i32,
                ..Default::default()
            }),
            sent_outputs: task.outputs.keys().cloned().collect(),
        };
        let done = task.is_done();
        let record = &mut self.runners[runner];
        if done && record.view.ephemeral {
            record.view.deleted = true;
        }
        Ok(response)
    }

    /// Gitea's UpdateLog: rows are taken only when `index` is at or before the stored
    /// length and the call reaches past it; a gap is refused without an error, the answer
    /// being the unchanged ack index. `fault` may be a [`Fault::LogAckLag`] or
    /// [`Fault::LogAcceptAtMost`].
    pub(crate) fn update_log(
        &mut self,
        runner: usize,
        req: pb::UpdateLogRequest,
        fault: Option<&Fault>,
    ) -> Result<pb::UpdateLogResponse, RpcError> {
        let empty_final_closes = self.empty_final_log_closes;
        let task = self.owned_task(runner, req.task_id, "update log")?;
        let ack = task.log.len() as i64;
        let sent = req.rows.len() as i64;
        if req.rows.is_empty() || req.index > ack || req.index + sent <= ack {
            if req.rows.is_empty() {
                if req.no_more && empty_final_closes {
                    task.log_closed = true;
                }
            } else if req.index > ack {
                task.log_gaps_refused += 1;
            } else {
                task.log_rows_resent += req.rows.len();
            }
            return Ok(pb::UpdateLogResponse { ack_index: ack });
        }
        if task.log_closed {
            return Err(RpcError::new(
                "already_exists",
                "update log: log file has been archived",
            ));
        }
        let skip = (ack - req.index) as usize;
        task.log_rows_resent += skip;
        let limit = match fault {
            Some(Fault::LogAcceptAtMost(n)) => *n,
            _ => usize::MAX,
        };
        let fresh = req.rows.len() - skip;
        let now = SystemTime::now();
        for row in req.rows.into_iter().skip(skip).take(limit) {
            let index = task.log.len() as i64;
            task.log.push(LogLine {
                index,
                content: row.content,
                time: to_time(&row.time),
                stored_at: now,
            });
        }
        if req.no_more && fresh <= limit {
            task.log_closed = true;
        }
        let stored = task.log.len() as i64;
        let ack_index = match fault {
            Some(Fault::LogAckLag(lag)) => (stored - lag).max(req.index),
            _ => stored,
        };
        Ok(pb::UpdateLogResponse { ack_index })
    }
}

/// Gitea's `UpdateTaskByState` (models/actions/task.go): each step the request carries
/// takes its result and log range; a step it leaves out has no result, so one that had
/// started is Running again (whatever it was), which a runner must not let happen by
/// leaving out steps.
fn record_steps(task: &mut TaskView, steps: &[pb::StepState]) {
    for (id, view) in task.steps.iter_mut() {
        if view.started_at.is_some() && !steps.iter().any(|s| s.id == *id) {
            view.result = pb::Result::Unspecified;
        }
    }
    for step in steps {
        let known = match task.step_count {
            Some(n) => step.id >= 0 && (step.id as usize) < n,
            None => step.id >= 0,
        };
        if !known {
            continue;
        }
        let reports = task.steps.get(&step.id).map_or(0, |s| s.reports);
        task.steps.insert(
            step.id,
            StepView {
                result: result_of(step.result),
                started_at: to_time(&step.started_at),
                stopped_at: to_time(&step.stopped_at),
                log_index: step.log_index,
                log_length: step.log_length,
                reports: reports + 1,
            },
        );
    }
}

fn runner_message(view: &RunnerView) -> pb::Runner {
    pb::Runner {
        id: view.id,
        uuid: view.uuid.clone(),
        name: view.name.clone(),
        status: pb::RunnerStatus::Idle as i32,
        version: view.version.clone(),
        labels: view.labels.clone(),
        ephemeral: view.ephemeral,
        ..Default::default()
    }
}

/// The secret the fake signs runtime tokens with (Gitea's general token signing secret).
pub(crate) const RUNTIME_TOKEN_SECRET: &[u8] = b"fake-gitea-token-signing-secret";

/// The job id Gitea would give task `task_id`'s job (an `ActionRunJob` id, not the task's).
pub(crate) fn job_id_of_task(task_id: i64) -> i64 {
    task_id + 1000
}

/// The context's `gitea_runtime_token` as Gitea's `CreateAuthorizationToken(taskID, runID,
/// jobID)` makes it (services/actions/auth.go): an HS256 JWT with `scp`
/// `Actions.Results:<run>:<job>`, `TaskID`, `RunID`, `JobID`, `exp` and `nbf`.
fn set_runtime_token(spec: &mut TaskSpec, task_id: i64) {
    let Some(context) = spec.context.as_object_mut() else {
        return;
    };
    if !context.contains_key("gitea_runtime_token") {
        return;
    }
    let run: i64 = context
        .get("run_id")
        .and_then(|v| v.as_str())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let job = job_id_of_task(task_id);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = serde_json::json!({
        "scp": format!("Actions.Results:{run}:{job}"),
        "TaskID": task_id, "RunID": run, "JobID": job,
        "exp": now + 3600, "nbf": now - 60,
    });
    context.insert(
        "gitea_runtime_token".into(),
        serde_json::Value::String(sign_hs256(&claims)),
    );
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `claims` as an HS256 JWT signed with [`RUNTIME_TOKEN_SECRET`].
pub(crate) fn sign_hs256(claims: &serde_json::Value) -> String {
    use hmac::{KeyInit, Mac};
    let signed = format!(
        "{}.{}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    );
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(RUNTIME_TOKEN_SECRET)
        .expect("HMAC takes any key");
    mac.update(signed.as_bytes());
    format!("{signed}.{}", b64(&mac.finalize().into_bytes()))
}

/// The claims of a runtime token this fake signed, `None` when it did not sign it.
pub(crate) fn verify_hs256(token: &str) -> Option<serde_json::Value> {
    use base64::Engine as _;
    use hmac::{KeyInit, Mac};
    let (signed, signature) = token.rsplit_once('.')?;
    let (_, payload) = signed.split_once('.')?;
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(RUNTIME_TOKEN_SECRET)
        .expect("HMAC takes any key");
    mac.update(signed.as_bytes());
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature)
        .ok()?;
    mac.verify_slice(&signature).ok()?;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&payload).ok()
}

/// Puts a new task token where a task carries it: the context's `token` and the
/// `GITHUB_TOKEN` / `GITEA_TOKEN` / `FORGEJO_TOKEN` secrets it has.
fn set_token(spec: &mut TaskSpec, token: &str) {
    if let Some(context) = spec.context.as_object_mut()
        && context.contains_key("token")
    {
        context.insert("token".into(), serde_json::Value::String(token.to_string()));
    }
    for name in ["GITHUB_TOKEN", "GITEA_TOKEN", "FORGEJO_TOKEN"] {
        if let Some(value) = spec.secrets.get_mut(name) {
            *value = token.to_string();
        }
    }
}

fn task_message(task: &TaskView) -> pb::Task {
    let context = match &task.spec.context {
        serde_json::Value::Null => None,
        v => serde_json::from_value::<pb::Struct>(v.clone()).ok(),
    };
    pb::Task {
        id: task.id,
        workflow_payload: Some(task.spec.workflow_payload.clone().into_bytes()),
        context,
        secrets: task.spec.secrets.clone(),
        vars: task.spec.vars.clone(),
        needs: task
            .spec
            .needs
            .iter()
            .map(|(job, need)| {
                (
                    job.clone(),
                    pb::TaskNeed {
                        outputs: need.outputs.clone(),
                        result: need.result as i32,
                    },
                )
            })
            .collect(),
        ..Default::default()
    }
}
