//! One step: its `env`, `if:`, `continue-on-error` and timeout, then a `run:` script
//! through the host backend, with workflow commands read from its output and the
//! `GITHUB_*` files read after it. `uses:` steps continue in [`super::action`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use workflows::expression::{ExprError, JobStatus, Object, Value};

use super::commands::{AnnotationLevel, CommandParser};
use super::contexts::default_env;
use super::env_files::{EnvFileError, parse_key_values, parse_path_file};
use super::eval::upsert;
use super::events::{AnnotationEvent, Event, Outcome, StepKey};
use super::job::{Frame, JobState, PostStep, StepResult, env_value};
use super::step_def::StepDef;
use super::step_files::{COMMAND_FILE_CAP, FileCap, SUMMARY_CAP, StepFiles};
use super::step_output::OutputReader;
use hr_process::host::{HostError, ProcessSpec, run_process_over};
use hr_process::shell::{ShellError, resolve_shell};

/// Why a step failed without its process deciding it: the step fails with this message
/// as its error annotation. Each variant names the phase; those of `uses:` steps are in
/// [`crate::action::ActionStepError`], [`crate::checkout::CheckoutError`],
/// [`crate::image_steps::ImageStepError`], [`crate::deploy_step::DeployStepError`] and
/// [`crate::pod::PodStepError`].
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// An expression in one of the step's fields failed; `field` names it (`env`, `if`,
    /// `run`, `with` ...).
    #[error("{field}: {source}")]
    Evaluate {
        field: &'static str,
        #[source]
        source: ExprError,
    },
    /// The step's `shell:` cannot be used.
    #[error(transparent)]
    Shell(#[from] ShellError),
    #[error("cannot write the step's script {}: {source}", path.display())]
    Script {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the working directory {} does not exist; create it in an earlier step or fix `working-directory`",
        path.display()
    )]
    WorkingDirectory { path: PathBuf },
    /// The `GITHUB_*` files could not be created in the job's temp folder.
    #[error("cannot create the step's files in {}: {source}", dir.display())]
    StepFiles {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A `GITHUB_ENV`, `GITHUB_OUTPUT` or `GITHUB_STATE` file the step wrote is malformed.
    #[error("{file}: {source}")]
    EnvFile {
        file: &'static str,
        #[source]
        source: EnvFileError,
    },
    /// The step's process could not be run on this host.
    #[error(transparent)]
    Process(#[from] HostError),
    /// The step's process could not be run in the job pod.
    #[error(transparent)]
    Pod(#[from] crate::pod::PodError),
    #[error(transparent)]
    PodStep(#[from] crate::pod::PodStepError),
    #[error(transparent)]
    Action(#[from] crate::action::ActionStepError),
    #[error(transparent)]
    Checkout(#[from] crate::checkout::CheckoutError),
    #[error(transparent)]
    Build(#[from] crate::image_steps::ImageStepError),
    #[error(transparent)]
    Deploy(#[from] crate::deploy_step::DeployStepError),
}

impl StepError {
    /// For `map_err`: an evaluation error of the step's `field`.
    pub fn evaluate(field: &'static str) -> impl FnOnce(ExprError) -> StepError {
        move |source| StepError::Evaluate { field, source }
    }
}

/// The part of a step process's environment that stays the same from step to step of a
/// job, built once instead of for every step: the host's environment, then GitHub's
/// default variables from the `github` and `runner` contexts, `RUNNER_TRACKING_ID` and
/// the `GITHUB_*` file variables. A frame with other `github` or `runner` objects (a
/// composite action's) rebuilds it; the objects are compared by identity, and the cache
/// keeps them alive, so an identity cannot be reused by another object meanwhile.
#[derive(Debug, Default)]
pub struct StepEnvBase {
    contexts: Option<(Value, Value)>,
    pub(super) env: Vec<(String, String)>,
    files: Option<StepFiles>,
}

fn same_object(a: &Value, b: Option<&Value>) -> bool {
    match (a, b) {
        (Value::Object(a), Some(Value::Object(b))) => Arc::ptr_eq(a, b),
        _ => false,
    }
}

/// A process to run for a step, with what the step needs to know about it.
#[derive(Debug)]
pub struct StepProcess {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub timeout: Option<Duration>,
}

/// What a process step produced besides its exit.
#[derive(Debug, Default)]
pub struct ProcessOutcome {
    pub outcome: Option<Outcome>,
    pub outputs: Vec<(String, String)>,
    pub state: Vec<(String, String)>,
}

impl JobState<'_> {
    /// Runs one step of `frame` and reports it (a dry run's: [`Self::dry_run_step`]).
    pub async fn run_step(&mut self, frame: &mut Frame, def: &StepDef) -> StepResult {
        if let Some(unknowns) = self.dry_run.take() {
            let result = self.dry_run_step(frame, def, &unknowns);
            self.dry_run = Some(unknowns);
            return result;
        }
        let name = frame
            .scope
            .interpolate(&def.display_name())
            .unwrap_or_else(|_| def.display_name());
        let key = self.step_key(def, name);
        frame.scope.status = frame.status(self.cancelled());
        let mut env = frame.env.clone();
        for (k, v) in &self.env_file {
            upsert(&mut env, k.clone(), v.clone());
        }
        frame.scope.set("env", env_value(&env));
        let started = Instant::now();
        let prepared = frame
            .scope
            .string_map(&def.env, &def.env_inserts)
            .map_err(StepError::evaluate("env"))
            .and_then(|step_env| {
                for (k, v) in step_env {
                    upsert(&mut env, k, v);
                }
                frame.scope.set("env", env_value(&env));
                frame
                    .scope
                    .condition(def.condition.as_deref())
                    .map_err(StepError::evaluate("if"))
            });
        let run = match prepared {
            Ok(run) => run,
            Err(e) => return self.step_error(&key, e.to_string(), started),
        };
        // After the second Ctrl-C nothing starts any more, not even `always()` steps.
        if !run || self.engine.hard_cancel.is_cancelled() {
            return self.skip_step(&key, started);
        }
        self.engine.sink.send(Event::StepStarted {
            job: self.key.clone(),
            step: key.clone(),
        });
        let continue_on_error = match frame.scope.flag(def.continue_on_error.as_deref()) {
            Ok(c) => c,
            Err(e) => {
                let e = StepError::evaluate("continue-on-error")(e);
                return self.step_error(&key, e.to_string(), started);
            }
        };
        let timeout = match frame.scope.minutes(def.timeout_minutes.as_deref()) {
            Ok(t) => t.map(|m| Duration::from_secs_f64(m * 60.0)),
            Err(e) => {
                let e = StepError::evaluate("timeout-minutes")(e);
                return self.step_error(&key, e.to_string(), started);
            }
        };
        let outcome = if def.run.is_some() {
            self.run_script(frame, def, &key, &env, timeout).await
        } else {
            self.run_uses(frame, def, &key, &env, timeout).await
        };
        let (outcome, outputs) = match outcome {
            Ok(p) => (p.outcome.unwrap_or(Outcome::Success), p.outputs),
            Err(e) => {
                self.annotate(Some(&key), AnnotationLevel::Error, &e.to_string());
                (Outcome::Failure, Vec::new())
            }
        };
        let conclusion = if outcome == Outcome::Failure && continue_on_error {
            Outcome::Success
        } else {
            outcome
        };
        let result = StepResult {
            outcome,
            conclusion,
            outputs,
        };
        self.finish_step(&key, &result, started);
        result
    }

    pub(super) fn step_error(
        &mut self,
        key: &StepKey,
        message: String,
        started: Instant,
    ) -> StepResult {
        self.engine.sink.send(Event::StepStarted {
            job: self.key.clone(),
            step: key.clone(),
        });
        self.annotate(Some(key), AnnotationLevel::Error, &message);
        let result = StepResult {
            outcome: Outcome::Failure,
            conclusion: Outcome::Failure,
            outputs: Vec::new(),
        };
        self.finish_step(key, &result, started);
        result
    }

    /// Ends the step as skipped (its `if:` did not hold, or nothing may start any more).
    pub(super) fn skip_step(&self, key: &StepKey, started: Instant) -> StepResult {
        let result = StepResult {
            outcome: Outcome::Skipped,
            conclusion: Outcome::Skipped,
            outputs: Vec::new(),
        };
        self.finish_step(key, &result, started);
        result
    }

    pub(super) fn finish_step(&self, key: &StepKey, result: &StepResult, started: Instant) {
        self.engine.sink.send(Event::StepFinished {
            job: self.key.clone(),
            step: key.clone(),
            outcome: result.outcome,
            conclusion: result.conclusion,
            duration: started.elapsed(),
            outputs: result
                .outputs
                .iter()
                .map(|(k, v)| (k.clone(), self.masker.mask(v).into_owned()))
                .collect(),
        });
    }

    pub fn annotate(&self, step: Option<&StepKey>, level: AnnotationLevel, message: &str) {
        self.engine.sink.send(Event::Annotation {
            job: self.key.clone(),
            step: step.cloned(),
            annotation: AnnotationEvent {
                level: level_name(level),
                message: self.masker.mask(message).into_owned(),
                title: None,
                file: None,
                line: None,
                col: None,
                from_runner: true,
            },
        });
    }

    /// `run:` through the step's shell.
    async fn run_script(
        &mut self,
        frame: &Frame,
        def: &StepDef,
        key: &StepKey,
        env: &[(String, String)],
        timeout: Option<Duration>,
    ) -> Result<ProcessOutcome, StepError> {
        let script = frame
            .scope
            .interpolate(def.run.as_deref().unwrap_or_default())
            .map_err(StepError::evaluate("run"))?;
        let shell = match def.shell.as_deref().or(frame.default_shell.as_deref()) {
            Some(s) => Some(
                frame
                    .scope
                    .interpolate(s)
                    .map_err(StepError::evaluate("shell"))?,
            ),
            None => None,
        };
        let path = self.path_env();
        let shell = resolve_shell(shell.as_deref(), &path)?;
        // One script file per job and extension, rewritten for each step (its process has
        // ended before the next step writes it).
        let script_path = self.temp.join(format!("step{}", shell.extension));
        if let Err(source) = overwrite(&script_path, script.as_bytes()) {
            return Err(StepError::Script {
                path: script_path,
                source,
            });
        }
        let (program, args) = shell.command_for(&script_path);
        let cwd = self.working_directory(frame, def)?;
        let process = StepProcess {
            program,
            args,
            env: env.to_vec(),
            cwd,
            timeout,
        };
        self.run_process_step(frame, key, process, &[]).await
    }

    /// `working-directory`, else `defaults.run.working-directory`, relative to the workspace.
    pub fn working_directory(&self, frame: &Frame, def: &StepDef) -> Result<PathBuf, StepError> {
        let workspace = &self.engine.run.workspace;
        let wd = match def.working_directory.as_deref() {
            Some(wd) => Some(
                frame
                    .scope
                    .interpolate(wd)
                    .map_err(StepError::evaluate("working-directory"))?,
            ),
            None => frame.default_working_directory.clone(),
        };
        let dir = match wd {
            Some(wd) => workspace.join(wd),
            None => workspace.clone(),
        };
        // In a job pod the folder is the pod's, made by earlier steps there.
        if self.pod.is_none() && !dir.is_dir() {
            return Err(StepError::WorkingDirectory { path: dir });
        }
        Ok(dir)
    }

    /// `PATH` for steps: `GITHUB_PATH` additions (most recent first), the job's `docker`
    /// shim folder, then the host's.
    pub fn path_env(&self) -> String {
        let mut parts = self.path_prepends.clone();
        if let Some(shim) = &self.docker_shim {
            parts.push(shim.dir.display().to_string());
        }
        parts.push(self.engine.host_path());
        parts.join(":")
    }

    /// Runs a step's process with the full step environment: the host's, GitHub's
    /// defaults, the step files, then `env` (workflow < job < `GITHUB_ENV` < step), then
    /// `extra` (action inputs). Reads the `GITHUB_*` files afterwards.
    pub async fn run_process_step(
        &mut self,
        frame: &Frame,
        key: &StepKey,
        process: StepProcess,
        extra: &[(String, String)],
    ) -> Result<ProcessOutcome, StepError> {
        self.run_process_step_in(frame, key, process, extra, None)
            .await
    }

    /// [`Self::run_process_step`], in the container of `image` when given (a Docker step,
    /// in the job's pod: `docker_action`).
    pub async fn run_process_step_in(
        &mut self,
        frame: &Frame,
        key: &StepKey,
        process: StepProcess,
        extra: &[(String, String)],
        image: Option<&str>,
    ) -> Result<ProcessOutcome, StepError> {
        self.refresh_step_env_base(frame);
        let files = self
            .step_env
            .files
            .get_or_insert_with(|| StepFiles::new(&self.temp));
        files.ensure().map_err(|source| StepError::StepFiles {
            dir: self.temp.clone(),
            source,
        })?;
        // The job's base environment goes under these (`run_process_over`); a later entry
        // wins over an earlier one with the same name, so nothing needs merging here.
        let mut full_env = Vec::with_capacity(3 + process.env.len() + extra.len());
        full_env.push(("GITHUB_ACTION".into(), key.id.clone()));
        if let Some(p) = &frame.action_path {
            full_env.push(("GITHUB_ACTION_PATH".into(), p.display().to_string()));
        }
        if let Some(shim) = &self.docker_shim {
            full_env.push(shim.env());
        }
        full_env.extend(process.env.iter().chain(extra).cloned());
        full_env.push(("PATH".into(), self.path_env()));
        let spec = ProcessSpec {
            program: process.program,
            args: process.args,
            env: full_env,
            cwd: process.cwd,
            timeout: process.timeout,
        };
        // GitHub reads the opt-in from the runner's own environment, then from the `env`
        // context, as a .NET boolean (case-insensitive `true`).
        let allow_unsecure = self
            .engine
            .host_env
            .iter()
            .chain(&process.env)
            .any(|(k, v)| {
                k == "ACTIONS_ALLOW_UNSECURE_COMMANDS" && v.trim().eq_ignore_ascii_case("true")
            });
        let token = self.process_token(frame);
        let stop = self.engine.stop;
        let pod = self.pod_step(&spec)?;
        let mut reader = OutputReader {
            state: self,
            key,
            parser: CommandParser::new(),
            outputs: Vec::new(),
            saved_state: Vec::new(),
            allow_unsecure,
            command_failed: false,
            held: Default::default(),
        };
        // Out of the state while the process runs (the output reader borrows the state);
        // were this future dropped, the next step would find no base and build it again.
        let base = std::mem::take(&mut reader.state.step_env);
        let mut pod_files = None;
        let exit = {
            let exit = match (&pod, image) {
                (Some((pod, process)), image) => {
                    let end = match image {
                        Some(image) => {
                            let step = super::docker_action::container_step(process, image, key);
                            pod.run_container_step(&step, &mut reader, &token).await
                        }
                        None => pod.run_process(process, stop, &mut reader, &token).await,
                    };
                    end.map(|end| {
                        pod_files = Some(end.files);
                        end.exit
                    })
                    .map_err(StepError::from)
                }
                (None, None) => run_process_over(&spec, &base.env, stop, &mut reader, &token)
                    .await
                    .map_err(StepError::from),
                // A container step never runs on this host.
                (None, Some(image)) => Err(crate::pod::PodStepError::NoPod {
                    uses: format!("docker://{image}"),
                }
                .into()),
            };
            reader.finish();
            exit
        };
        reader.state.step_env = base;
        let mut outputs = std::mem::take(&mut reader.outputs);
        let mut saved_state = std::mem::take(&mut reader.saved_state);
        let command_failed = reader.command_failed;
        let exit = exit?;
        if let Some(files) = pod_files {
            self.store_pod_step_files(key, files)?;
        }
        self.read_files(key, &mut outputs, &mut saved_state)?;
        let outcome = if exit.timed_out {
            let minutes = spec.timeout.map_or(0.0, |t| t.as_secs_f64() / 60.0);
            self.annotate(
                Some(key),
                AnnotationLevel::Error,
                // GitHub's wording.
                &format!(
                    "The action '{}' has timed out after {minutes} minutes.",
                    key.name
                ),
            );
            Outcome::Failure
        } else if exit.cancelled {
            Outcome::Cancelled
        } else if exit.success() && command_failed {
            // A workflow command the runner refused fails the step once it has ended,
            // as GitHub merges its command result into the step's.
            Outcome::Failure
        } else if exit.success() {
            Outcome::Success
        } else {
            let how = match (exit.code, exit.signal) {
                (Some(c), _) => format!("Process completed with exit code {c}."),
                (None, Some(s)) => format!("Process was killed by signal {s}."),
                _ => "Process failed.".to_string(),
            };
            self.annotate(Some(key), AnnotationLevel::Error, &how);
            Outcome::Failure
        };
        Ok(ProcessOutcome {
            outcome: Some(outcome),
            outputs,
            state: saved_state,
        })
    }

    /// Makes the job's [`StepEnvBase`] environment fit `frame`: built on first use and
    /// again when the frame's `github` or `runner` object is another one.
    fn refresh_step_env_base(&mut self, frame: &Frame) {
        let github = frame.scope.get("github");
        let runner = frame.scope.get("runner");
        let fresh = self
            .step_env
            .contexts
            .as_ref()
            .is_some_and(|(g, r)| same_object(g, github) && same_object(r, runner));
        if !fresh {
            let empty = Object::new();
            let github_object = github.and_then(Value::as_object).unwrap_or(&empty);
            let runner_object = runner.and_then(Value::as_object).unwrap_or(&empty);
            let mut env = self.engine.host_env.clone();
            for (k, v) in default_env(github_object, runner_object) {
                upsert(&mut env, k, v);
            }
            upsert(
                &mut env,
                hr_process::orphans::TRACKING_VARIABLE.into(),
                self.tracking_id(),
            );
            let files = self
                .step_env
                .files
                .get_or_insert_with(|| StepFiles::new(&self.temp));
            for (k, v) in files.vars() {
                upsert(&mut env, k, v);
            }
            self.step_env.env = env;
            self.step_env.contexts = github.cloned().zip(runner.cloned());
        }
    }

    /// The token a step's process stops on: the job's, or for a step that started after
    /// the cancel (its `if:` saw `cancelled()`: `always()` steps, posts) the second Ctrl-C.
    /// Decided by the status the step's `if:` saw, not by the job's state now: a cancel
    /// landing between the `if:` and the process start must still stop the process.
    pub(crate) fn process_token(&self, frame: &Frame) -> CancellationToken {
        if frame.scope.status == JobStatus::Cancelled {
            self.engine.hard_cancel.child_token()
        } else {
            self.cancel.child_token()
        }
    }

    fn read_files(
        &mut self,
        key: &StepKey,
        outputs: &mut Vec<(String, String)>,
        state: &mut Vec<(String, String)>,
    ) -> Result<(), StepError> {
        let Some(files) = self.step_env.files.take() else {
            return Ok(());
        };
        let read = self.read_step_files(key, &files, outputs, state);
        self.step_env.files = Some(files);
        read
    }

    fn read_step_files(
        &mut self,
        key: &StepKey,
        files: &StepFiles,
        outputs: &mut Vec<(String, String)>,
        state: &mut Vec<(String, String)>,
    ) -> Result<(), StepError> {
        // Most steps write none of the files: a stat tells, and only a file that was
        // written is read and emptied for the next step.
        let read = |p: &PathBuf, cap: &FileCap| self.read_command_file(key, p, cap);
        let (env, output) = (
            read(&files.env, &COMMAND_FILE_CAP[0]),
            read(&files.output, &COMMAND_FILE_CAP[1]),
        );
        let (saved, path) = (
            read(&files.state, &COMMAND_FILE_CAP[2]),
            read(&files.path, &COMMAND_FILE_CAP[3]),
        );
        let summary = read(&files.summary, &SUMMARY_CAP);
        for (k, v) in parse_key_values(&env).map_err(env_file("GITHUB_ENV"))? {
            upsert(&mut self.env_file, k, v);
        }
        for (k, v) in parse_key_values(&output).map_err(env_file("GITHUB_OUTPUT"))? {
            upsert(outputs, k, v);
        }
        for (k, v) in parse_key_values(&saved).map_err(env_file("GITHUB_STATE"))? {
            upsert(state, k, v);
        }
        for dir in parse_path_file(&path) {
            self.path_prepends.retain(|d| *d != dir);
            self.path_prepends.insert(0, dir);
        }
        if !summary.is_empty() {
            let mut text = summary;
            if !text.ends_with('\n') {
                text.push('\n');
            }
            self.summary.push_str(&text);
            if let Some(main) = self.current_main {
                self.step_summaries.entry(main).or_default().push_str(&text);
            }
        }
        Ok(())
    }

    /// The text a step wrote to one of its files, which is emptied for the next step; a
    /// file over its cap is not read at all (emptied, with an annotation), so a step
    /// cannot make the runner hold an arbitrary amount of text.
    fn read_command_file(&self, key: &StepKey, path: &Path, cap: &FileCap) -> String {
        let len = std::fs::metadata(path).map_or(0, |m| m.len());
        if len == 0 {
            return String::new();
        }
        let text = if len > cap.bytes {
            self.annotate(Some(key), cap.level, &cap.message(len));
            String::new()
        } else {
            std::fs::read_to_string(path).unwrap_or_default()
        };
        let _ = std::fs::write(path, "");
        text
    }

    /// `post` steps of actions, last registered first, each under its `post-if`
    /// (default `always()`).
    pub async fn run_posts(&mut self, frame: &Frame) {
        let posts = std::mem::take(&mut self.posts);
        let mut frame = frame.clone();
        for post in posts.into_iter().rev() {
            let def = StepDef {
                id: post.action_id.clone(),
                name: Some(post.name.clone()),
                ..StepDef::default()
            };
            let key = self.outside_step_key(&def, post.name.clone());
            frame.scope.status = frame.status(self.cancelled());
            let started = Instant::now();
            let condition = if self.engine.hard_cancel.is_cancelled() {
                Ok(false)
            } else {
                frame.scope.condition(Some(&post.condition))
            };
            match condition {
                Ok(false) => {
                    self.skip_step(&key, started);
                    continue;
                }
                Ok(true) => {}
                Err(e) => {
                    let e = StepError::evaluate("post-if")(e);
                    self.step_error(&key, e.to_string(), started);
                    frame.failed = true;
                    continue;
                }
            }
            self.engine.sink.send(Event::StepStarted {
                job: self.key.clone(),
                step: key.clone(),
            });
            let process = StepProcess {
                program: post.program.clone(),
                args: post.args.clone(),
                env: post.env.clone(),
                cwd: post.cwd.clone(),
                timeout: None,
            };
            let outcome = match &post.image {
                Some(image) => {
                    self.run_container_process(&frame, &key, process, &[], image, &post.name)
                        .await
                }
                None => {
                    self.run_process_step_in(&frame, &key, process, &[], None)
                        .await
                }
            }
            .map(|p| p.outcome.unwrap_or(Outcome::Success));
            self.finish_side_step(&mut frame, &key, started, outcome);
        }
        if frame.failed {
            // A failed post step fails the job, as on GitHub.
            self.post_failed = true;
        }
    }

    /// Reports a `pre` or `post` step: an error becomes an annotation and a failure, and
    /// a failure fails the frame (a failed pre or post step fails the job, as on GitHub).
    pub(super) fn finish_side_step(
        &mut self,
        frame: &mut Frame,
        key: &StepKey,
        started: Instant,
        outcome: Result<Outcome, StepError>,
    ) {
        let outcome = outcome.unwrap_or_else(|e| {
            self.annotate(Some(key), AnnotationLevel::Error, &e.to_string());
            Outcome::Failure
        });
        if outcome == Outcome::Failure {
            frame.failed = true;
        }
        let result = StepResult {
            outcome,
            conclusion: outcome,
            outputs: Vec::new(),
        };
        self.finish_step(key, &result, started);
    }

    pub fn register_post(&mut self, post: PostStep) {
        self.posts.push(post);
    }
}

fn env_file(file: &'static str) -> impl FnOnce(EnvFileError) -> StepError {
    move |source| StepError::EnvFile { file, source }
}

/// Makes `bytes` the content of the file at `path` by writing over the old content and
/// cutting off what is left of it, instead of truncating the file to zero first: on ext4
/// (its default `auto_da_alloc`) a file truncated to zero and written again is flushed to
/// disk when closed, and freeing its block can wait for a discard, which cost 0.1 to
/// 0.2 ms a step where `hybrid-runner exec` was benchmarked; in place it takes a few µs.
fn overwrite(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // 0600: a script holds the step's expanded secrets.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    let old_len = file.metadata()?.len();
    file.write_all(bytes)?;
    let len = bytes.len() as u64;
    if old_len > len {
        file.set_len(len)?;
    }
    Ok(())
}

pub fn level_name(level: AnnotationLevel) -> &'static str {
    match level {
        AnnotationLevel::Error => "error",
        AnnotationLevel::Warning => "warning",
        AnnotationLevel::Notice => "notice",
    }
}

#[cfg(test)]
mod tests {
    use super::{StepError, overwrite};

    #[test]
    fn step_errors_keep_their_wording() {
        let e = StepError::WorkingDirectory {
            path: "/w/sub".into(),
        };
        assert_eq!(
            e.to_string(),
            "the working directory /w/sub does not exist; create it in an earlier step or fix `working-directory`"
        );
    }

    #[test]
    fn overwrite_replaces_longer_and_shorter_content_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("step.sh");
        overwrite(&path, b"echo a long first script\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"echo a long first script\n");
        overwrite(&path, b"true").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"true");
        overwrite(&path, b"echo longer again").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"echo longer again");
        overwrite(&path, b"").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"");
    }
}
