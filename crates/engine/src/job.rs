//! One job run: its contexts and environment, its steps in order (with `if:`, status
//! functions, `continue-on-error`, timeouts), `post` steps of actions, and its outputs.
//! The steps themselves run in [`super::step`] and [`super::action`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use workflows::expression::{ExprError, JobStatus, Object, Value};
use workflows::model::{Job, OrExpression, Workflow};
use workflows::plan::Unknowns;

use super::engine::Engine;
use super::eval::{Scope, upsert};
use super::events::{Event, JobKey, LogKind, Outcome, StepKey};
use super::mask::Masker;
use super::step_def::StepDef;

/// GitHub's default job timeout.
const DEFAULT_JOB_TIMEOUT_MINUTES: f64 = 360.0;

/// How a job ended, and what it hands to the jobs that need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutcome {
    pub result: Outcome,
    pub outputs: Vec<(String, String)>,
    pub duration: Duration,
}

/// One job (one matrix leg) ready to run: contexts already hold `github`, `vars`,
/// `secrets`, `inputs`, `matrix`, `strategy` and `needs`.
#[derive(Debug)]
pub struct JobRun<'a> {
    pub engine: &'a Engine,
    pub key: JobKey,
    pub workflow: &'a Workflow,
    pub job: &'a Job,
    pub contexts: Object,
    /// Secret values to mask in every line this job prints.
    pub secrets: Vec<String>,
    /// The runner's services' variables for this job (`ACTIONS_CACHE_URL`, …), the
    /// lowest level of its `env`.
    pub services_env: Vec<(String, String)>,
    /// Runner lines about how the job came to run, printed once it starts (a dry run's
    /// `if:` that read a value only a real run has).
    pub notes: Vec<String>,
    /// In a dry run, what only a real run has (see [`crate::dry_run`]).
    pub dry_run: Option<Unknowns>,
}

/// A `post` step registered by an action, run after the main steps in reverse order.
#[derive(Debug, Clone)]
pub struct PostStep {
    pub name: String,
    pub condition: String,
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub action_id: String,
    /// A Docker action's `post-entrypoint` runs in this image (in the job's pod).
    pub image: Option<String>,
}

/// The steps list being run: the job's, or a composite action's.
#[derive(Debug, Clone)]
pub struct Frame {
    pub scope: Scope,
    /// Environment of this level: workflow + job `env:` for the job, the calling step's
    /// whole environment for a composite action.
    pub env: Vec<(String, String)>,
    pub default_shell: Option<String>,
    pub default_working_directory: Option<String>,
    /// Set for composite actions: `github.action_path`.
    pub action_path: Option<PathBuf>,
    /// A step of this frame failed (and was not allowed to).
    pub failed: bool,
}

impl Frame {
    /// `github.sha` as this frame sees it (empty when unknown).
    pub fn github_sha(&self) -> String {
        self.scope
            .get("github")
            .and_then(|g| g.get("sha"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    /// The status the status functions see, from this frame's steps and the job's cancellation.
    pub fn status(&self, cancelled: bool) -> JobStatus {
        if cancelled {
            JobStatus::Cancelled
        } else if self.failed {
            JobStatus::Failure
        } else {
            JobStatus::Success
        }
    }
}

/// What a finished step reports.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub outcome: Outcome,
    pub conclusion: Outcome,
    pub outputs: Vec<(String, String)>,
}

/// What a job's outputs may hold in all, names and values (GitHub: 1 MB a job).
pub const JOB_OUTPUTS_CAP: usize = 1_000_000;

/// Mutable state of a running job, shared by every frame.
#[derive(Debug)]
pub struct JobState<'a> {
    pub engine: &'a Engine,
    pub key: JobKey,
    pub temp: PathBuf,
    pub masker: Masker,
    /// Variables written to `GITHUB_ENV`, in order.
    pub env_file: Vec<(String, String)>,
    /// Folders written to `GITHUB_PATH`, most recent first.
    pub path_prepends: Vec<String>,
    pub summary: String,
    /// The same, by the main step that wrote it (its position among `steps:`).
    pub step_summaries: std::collections::BTreeMap<usize, String>,
    pub posts: Vec<PostStep>,
    pub next_index: usize,
    /// The job's own steps keyed so far (the next one's position in `steps:`).
    pub main_steps: usize,
    /// The job step running now (the one composite steps belong to).
    pub current_main: Option<usize>,
    /// How many composite actions the running step is inside.
    pub composite_depth: usize,
    /// Cancels the job (Ctrl-C, job timeout, fail-fast).
    pub cancel: CancellationToken,
    pub timed_out: bool,
    /// A `post` step failed: the job fails.
    pub post_failed: bool,
    /// State saved by the `pre` steps run at job start, as `STATE_*` variables, by the
    /// id of the step whose action they belong to.
    pub pre_states: Vec<(String, Vec<(String, String)>)>,
    /// The job's `docker`/`nerdctl` shim (absent with `--no-docker-shim` and in dry runs).
    pub docker_shim: Option<crate::image_steps::shim::DockerShim>,
    /// What every step process's environment starts from (built on the first step).
    pub step_env: super::step::StepEnvBase,
    /// The pod the steps run in (see [`crate::job_pod`]), else they run on this host.
    pub pod: Option<std::sync::Arc<crate::pod::JobPod>>,
    /// The pod a host job's Docker steps run in (see [`crate::step_pod`]), started by the
    /// first of them.
    pub step_pod: Option<std::sync::Arc<crate::pod::JobPod>>,
    /// In a dry run, what only a real run has, kept up to date as the steps "run" (their
    /// results, the job's variables set from such values): see [`crate::dry_run`].
    pub dry_run: Option<Unknowns>,
}

impl JobState<'_> {
    /// The `RUNNER_TRACKING_ID` every process of this job carries, so the processes a
    /// step leaves in the background can be stopped when the job ends. Unique per job
    /// within the process, also when several runs share it (the daemon runs tasks side
    /// by side): the run's scratch folder is part of it.
    pub fn tracking_id(&self) -> String {
        let name = |p: &std::path::Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let job = name(&self.temp);
        let run = self.temp.parent().map(name).unwrap_or_default();
        format!("hybrid-runner_{}_{run}_{job}", std::process::id())
    }

    /// Stops what the job's steps left running, as GitHub's runner does after a job. A dry
    /// run starts no step process, so it skips the scan of every process on the machine
    /// (most of a dry-run job's cost: thousands of jobs took seconds each thousand).
    pub async fn stop_orphans(&self) {
        if self.engine.dry_run {
            return;
        }
        let stopped = hr_process::orphans::stop_tracked(
            &self.tracking_id(),
            std::time::Duration::from_secs(5),
        )
        .await;
        if stopped > 0 {
            self.note(
                None,
                LogKind::Runner,
                &format!("Cleaning up orphan processes: stopped {stopped} process(es) the steps left running"),
            );
        }
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Sends a masked log line of the runner itself.
    pub fn note(&self, step: Option<&StepKey>, kind: LogKind, line: &str) {
        self.engine.sink.send(Event::Log {
            job: self.key.clone(),
            step: step.cloned(),
            kind,
            line: self.masker.mask(line).into_owned(),
        });
    }

    /// Sends a log line the caller has masked itself (pieces of a cut line, see
    /// [`Masker::mask_piece`]).
    pub(crate) fn log_masked(&self, step: Option<&StepKey>, kind: LogKind, line: String) {
        self.engine.sink.send(Event::Log {
            job: self.key.clone(),
            step: step.cloned(),
            kind,
            line,
        });
    }

    /// The key of a step about to run: one of the job's own steps (its position is the
    /// next one) or, inside a composite action, a step of the job step using it.
    pub fn step_key(&mut self, def: &StepDef, name: String) -> StepKey {
        let (main, nested) = if self.composite_depth == 0 {
            let position = self.main_steps;
            self.main_steps += 1;
            self.current_main = Some(position);
            (Some(position), false)
        } else {
            (self.current_main, true)
        };
        self.key_of(def, name, main, nested)
    }

    /// The key of an action's `pre` or `post` step: part of no step of the job.
    pub fn outside_step_key(&mut self, def: &StepDef, name: String) -> StepKey {
        self.key_of(def, name, None, false)
    }

    fn key_of(
        &mut self,
        def: &StepDef,
        name: String,
        main: Option<usize>,
        nested: bool,
    ) -> StepKey {
        let key = StepKey {
            index: self.next_index,
            id: def.id.clone(),
            name: self.masker.mask(&name).into_owned(),
            main,
            nested,
        };
        self.next_index += 1;
        key
    }
}

impl JobRun<'_> {
    pub async fn run(mut self, cancel: CancellationToken) -> JobOutcome {
        let started = Instant::now();
        let engine = self.engine;
        engine.sink.send(Event::JobStarted {
            job: self.key.clone(),
        });
        let mut masker = Masker::new();
        for secret in &self.secrets {
            masker.add(secret);
        }
        for note in &self.notes {
            engine.sink.send(Event::Log {
                job: self.key.clone(),
                step: None,
                kind: LogKind::Runner,
                line: masker.mask(note).into_owned(),
            });
        }
        let temp = engine.job_temp(&self.key);
        let mut state = JobState {
            engine,
            key: self.key.clone(),
            temp,
            masker,
            env_file: Vec::new(),
            path_prepends: Vec::new(),
            summary: String::new(),
            step_summaries: Default::default(),
            posts: Vec::new(),
            next_index: 0,
            main_steps: 0,
            current_main: None,
            composite_depth: 0,
            cancel: cancel.child_token(),
            timed_out: false,
            post_failed: false,
            pre_states: Vec::new(),
            docker_shim: None,
            step_env: Default::default(),
            pod: None,
            step_pod: None,
            dry_run: engine
                .dry_run
                .then(|| self.dry_run.take().unwrap_or_default()),
        };
        // A dry run starts no step, so its jobs need no folder (10,000 jobs spent a fifth of
        // their time creating and removing them).
        if !engine.dry_run
            && let Err(e) = std::fs::create_dir_all(&state.temp)
        {
            state.note(
                None,
                LogKind::Runner,
                &format!(
                    "error: cannot create the job's temp folder {}: {e}",
                    state.temp.display()
                ),
            );
            return self.finish(&state, Outcome::Failure, Vec::new(), started);
        }
        let mut frame = match self.job_frame(&mut state) {
            Ok(frame) => frame,
            Err(message) => {
                state.note(None, LogKind::Runner, &format!("error: {message}"));
                return self.finish(&state, Outcome::Failure, Vec::new(), started);
            }
        };
        if let Err(outcome) = state.start_pod(&mut frame, self.job, self.workflow).await {
            state.delete_pod().await;
            return self.finish(&state, outcome, Vec::new(), started);
        }
        state.docker_shim = start_docker_shim(&state, &frame);
        let timeout = frame
            .scope
            .minutes(
                self.job
                    .timeout_minutes
                    .as_ref()
                    .map(|t| or_text(&t.value))
                    .as_deref(),
            )
            .ok()
            .flatten()
            .unwrap_or(DEFAULT_JOB_TIMEOUT_MINUTES);
        let job_limit = Duration::from_secs_f64(timeout * 60.0);
        // The runner's cap (`runner.timeout`) stops the job when it is the shorter one.
        let runner_limit = engine.job_time_limit.filter(|cap| *cap < job_limit);
        let deadline = tokio::time::sleep(runner_limit.unwrap_or(job_limit));
        let job_cancel = state.cancel.clone();
        let steps: Vec<StepDef> = self.job.steps.iter().map(StepDef::from).collect();
        let (frame, timed_out) = {
            let run_steps = async {
                let frame = state.run_pres(frame, &steps).await;
                state.run_steps(frame, &steps).await
            };
            tokio::pin!(run_steps);
            tokio::pin!(deadline);
            let mut timed_out = false;
            let frame = loop {
                tokio::select! {
                    frame = &mut run_steps => break frame,
                    _ = &mut deadline, if !timed_out => {
                        timed_out = true;
                        job_cancel.cancel();
                    }
                }
            };
            (frame, timed_out)
        };
        state.timed_out = timed_out;
        if timed_out {
            let message = match runner_limit {
                Some(cap) => format!(
                    "error: the job has exceeded the runner's maximum execution time of {} (runner.timeout)",
                    humantime(cap)
                ),
                None => format!(
                    "error: the job has exceeded the maximum execution time of {timeout} minutes"
                ),
            };
            state.note(None, LogKind::Runner, &message);
        }
        state.run_posts(&frame).await;
        state.stop_orphans().await;
        if let Some(shim) = state.docker_shim.take() {
            shim.stop().await;
        }
        state.delete_pod().await;
        let outputs = self.outputs(&state, &frame);
        let result = if timed_out || frame.failed || state.post_failed {
            Outcome::Failure
        } else if state.cancelled() {
            Outcome::Cancelled
        } else {
            Outcome::Success
        };
        let continue_on_error = frame
            .scope
            .flag(
                self.job
                    .continue_on_error
                    .as_ref()
                    .map(|c| or_text(&c.value))
                    .as_deref(),
            )
            .unwrap_or(false);
        if result == Outcome::Failure && continue_on_error {
            state.note(
                None,
                LogKind::Runner,
                "the job failed, but continue-on-error lets the run go on",
            );
            return self.finish(&state, Outcome::Success, outputs, started);
        }
        self.finish(&state, result, outputs, started)
    }

    fn finish(
        &mut self,
        state: &JobState<'_>,
        result: Outcome,
        outputs: Vec<(String, String)>,
        started: Instant,
    ) -> JobOutcome {
        let duration = started.elapsed();
        if !state.summary.trim().is_empty() {
            self.engine.sink.send(Event::Summary {
                job: self.key.clone(),
                markdown: state.masker.mask(&state.summary).into_owned(),
                steps: state
                    .step_summaries
                    .iter()
                    .map(|(i, text)| (*i, state.masker.mask(text).into_owned()))
                    .collect(),
            });
        }
        self.engine.sink.send(Event::JobFinished {
            job: self.key.clone(),
            result,
            duration,
            outputs: outputs.clone(),
        });
        if !self.engine.dry_run {
            let _ = std::fs::remove_dir_all(&state.temp);
        }
        JobOutcome {
            result,
            outputs,
            duration,
        }
    }

    /// Contexts and environment of the job's own steps: workflow `env` < job `env`.
    fn job_frame(&mut self, state: &mut JobState<'_>) -> Result<Frame, JobFrameError> {
        let engine = self.engine;
        let mut contexts = std::mem::take(&mut self.contexts);
        let runner = super::contexts::runner_context(
            &engine.runner_name,
            &state.temp,
            &engine.tool_cache(),
            engine.debug,
        );
        contexts.insert("runner", Value::object(runner));
        let mut job_ctx = Object::new();
        job_ctx.insert("status", Value::from("success"));
        job_ctx.insert("container", Value::object(Object::new()));
        job_ctx.insert("services", Value::object(Object::new()));
        contexts.insert("job", Value::object(job_ctx));
        contexts.insert("steps", Value::object(Object::new()));
        let mut scope = Scope::new(contexts, Some(engine.hasher()));
        let mut env = self.services_env.clone();
        for (k, v) in &engine.cli_env {
            upsert(&mut env, k.clone(), v.clone());
        }
        scope.set("env", env_value(&env));
        if let Some(map) = &self.workflow.env {
            for (k, v) in state
                .job_env_map(&scope, map, "workflow env")
                .map_err(JobFrameError::evaluate("workflow env"))?
            {
                upsert(&mut env, k, v);
            }
            scope.set("env", env_value(&env));
        }
        if let Some(map) = &self.job.env {
            for (k, v) in state
                .job_env_map(&scope, map, "job env")
                .map_err(JobFrameError::evaluate("job env"))?
            {
                upsert(&mut env, k, v);
            }
            scope.set("env", env_value(&env));
        }
        let defaults = |d: &Option<workflows::model::Defaults>| {
            d.as_ref().map(|d| {
                (
                    d.shell.as_ref().map(|s| s.value.clone()),
                    d.working_directory.as_ref().map(|w| w.value.clone()),
                )
            })
        };
        let (job_shell, job_wd) = defaults(&self.job.defaults).unwrap_or_default();
        let (wf_shell, wf_wd) = defaults(&self.workflow.defaults).unwrap_or_default();
        let default_shell = job_shell.or(wf_shell);
        let default_working_directory = match job_wd.or(wf_wd) {
            Some(wd) => Some(
                state
                    .job_text(&scope, &wd, "defaults.run.working-directory")
                    .map_err(JobFrameError::evaluate("defaults.run.working-directory"))?,
            ),
            None => None,
        };
        Ok(Frame {
            scope,
            env,
            default_shell,
            default_working_directory,
            action_path: None,
            failed: false,
        })
    }

    /// `outputs:` evaluated after the steps; a value holding a secret is left out, as
    /// GitHub does, with a warning, and so is every value past [`JOB_OUTPUTS_CAP`] bytes
    /// of outputs.
    fn outputs(&self, state: &JobState<'_>, frame: &Frame) -> Vec<(String, String)> {
        let Some(map) = &self.job.outputs else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut total = 0;
        for (name, value) in &map.entries {
            match frame.scope.interpolate(&value.value) {
                Ok(v) if total + name.value.len() + v.len() > JOB_OUTPUTS_CAP => state.note(
                    None,
                    LogKind::Runner,
                    &format!(
                        "warning: skipping output '{}': {} bytes would take the job's outputs past {JOB_OUTPUTS_CAP} bytes (1 MB, as on GitHub)",
                        name.value,
                        v.len()
                    ),
                ),
                Ok(v) if state.masker.mask(&v) != v => state.note(
                    None,
                    LogKind::Runner,
                    &format!(
                        "warning: skipping output '{}': it may contain a secret",
                        name.value
                    ),
                ),
                Ok(v) => {
                    total += name.value.len() + v.len();
                    out.push((name.value.clone(), v));
                }
                Err(e) => match state.unknown_read(&frame.scope, &e) {
                    Some(read) => state.note(
                        None,
                        LogKind::Runner,
                        &format!("dry run: output '{}': {read}", name.value),
                    ),
                    None => state.note(
                        None,
                        LogKind::Runner,
                        &format!(
                            "warning: output '{}' could not be evaluated: {e}",
                            name.value
                        ),
                    ),
                },
            }
        }
        out
    }
}

/// Why the environment of a job's steps could not be set up (the job fails before its
/// first step).
#[derive(Debug, thiserror::Error)]
pub enum JobFrameError {
    /// An expression in `env` (workflow or job) or `defaults` failed; `field` names it.
    #[error("{field}: {source}")]
    Evaluate {
        field: &'static str,
        #[source]
        source: ExprError,
    },
}

impl JobFrameError {
    fn evaluate(field: &'static str) -> impl FnOnce(ExprError) -> JobFrameError {
        move |source| JobFrameError::Evaluate { field, source }
    }
}

/// The job's `docker` shim, unless turned off; a shim that cannot start leaves the host's
/// `docker` on `PATH`, with a warning.
fn start_docker_shim(
    state: &JobState<'_>,
    frame: &Frame,
) -> Option<crate::image_steps::shim::DockerShim> {
    let engine = state.engine;
    // A job pod cannot reach the shim's Unix socket on this host (docs/internals/pod-steps.md).
    if engine.dry_run || !engine.builds.settings.docker_shim || state.pod.is_some() {
        return None;
    }
    let sha = frame.github_sha();
    let started = engine
        .builds
        .shim_dir(&engine.run.temp_root)
        .and_then(|dir| {
            crate::image_steps::shim::DockerShim::start(
                &dir,
                state.temp.join("docker.sock"),
                engine.builds.clone(),
                sha,
                state.key.id.clone(),
                &engine.hard_cancel,
            )
            .map_err(Arc::new)
        });
    match started {
        Ok(shim) => Some(shim),
        Err(e) => {
            state.note(
                None,
                LogKind::Runner,
                &format!("warning: `docker` in run steps is the host's: the docker shim did not start: {e}"),
            );
            None
        }
    }
}

/// `90s`, `5m`, `3h`, `1h30m`: a duration as the config spells it.
fn humantime(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

pub fn or_text<T: ToString>(v: &OrExpression<T>) -> String {
    match v {
        OrExpression::Literal(l) => l.to_string(),
        OrExpression::Expression(e) => e.clone(),
    }
}

pub fn map_parts(map: &workflows::model::StringMap) -> (Vec<(String, String)>, Vec<String>) {
    (
        map.entries
            .iter()
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect(),
        map.inserts.iter().map(|i| i.value.clone()).collect(),
    )
}

pub fn env_value(env: &[(String, String)]) -> Value {
    super::eval::string_object(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

impl JobState<'_> {
    /// Runs `steps` in order in `frame`, returning the frame with its `steps` context and
    /// failure state. A step runs when its `if:` holds for the frame's status; after a
    /// cancel only steps whose `if:` still holds (`always()`, `cancelled()`) run.
    pub async fn run_steps(&mut self, mut frame: Frame, steps: &[StepDef]) -> Frame {
        for def in steps {
            let result = self.run_step(&mut frame, def).await;
            if result.outcome == Outcome::Failure && result.conclusion == Outcome::Failure {
                frame.failed = true;
            }
            let mut entry = Object::new();
            entry.insert(
                "outputs",
                super::eval::string_object(
                    result.outputs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                ),
            );
            entry.insert("outcome", Value::from(result.outcome.as_str()));
            entry.insert("conclusion", Value::from(result.conclusion.as_str()));
            // Taken out of the scope first (`Null` keeps its place), so that the object is
            // usually not shared and gets the entry without being copied.
            let steps_ctx = frame.scope.get("steps").cloned();
            frame.scope.set("steps", Value::Null);
            let mut steps_ctx = match steps_ctx {
                Some(Value::Object(o)) => o,
                _ => Arc::new(Object::new()),
            };
            Arc::make_mut(&mut steps_ctx).insert(def.id.clone(), Value::object(entry));
            frame.scope.set("steps", Value::Object(steps_ctx));
            // A dry run's step did not really run: its results are unknown to the next.
            if let Some(unknowns) = self.dry_run.as_mut()
                && def.explicit_id
            {
                unknowns.steps.push(def.id.clone());
            }
            let status = if frame.failed { "failure" } else { "success" };
            if let Some(Value::Object(job)) = frame.scope.get("job").cloned() {
                let mut job = (*job).clone();
                job.insert(
                    "status",
                    Value::from(if self.cancelled() {
                        "cancelled"
                    } else {
                        status
                    }),
                );
                frame.scope.set("job", Value::object(job));
            }
        }
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::humantime;
    use std::time::Duration;

    #[test]
    fn durations_read_as_the_config_writes_them() {
        assert_eq!(humantime(Duration::from_secs(3 * 3600)), "3h");
        assert_eq!(humantime(Duration::from_secs(5400)), "1h30m");
        assert_eq!(humantime(Duration::from_secs(61)), "1m1s");
        assert_eq!(humantime(Duration::from_millis(250)), "250ms");
    }
}
