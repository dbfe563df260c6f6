//! The job engine: loads the workflows, plans them for an event, runs their jobs on the
//! host in `needs` order with GitHub's semantics, and reports typed [`events::Event`]s.
//!
//! - [`schedule`]: jobs, `needs`, job `if:`, matrix legs, platforms, concurrency;
//!   `ready_jobs`: which jobs may start as the ones they need finish; [`strategy`]: a
//!   job's legs and their names, and the values a dry run does not have; [`dry_run`]:
//!   what a dry run's steps and jobs do with those values.
//! - [`call`]: reusable-workflow jobs.
//! - [`job`]: one job run: contexts, environment, steps, outputs.
//! - [`step`], [`action`]: one step: `run:` scripts, `uses:` actions; [`step_files`]: the
//!   `GITHUB_*` command files; `step_output`: workflow commands in a step's output.
//! - [`commands`], [`env_files`], [`mask`]: workflow commands, `GITHUB_*` files, secrets.
//! - [`image_steps`]: image builds in a job: the built-in build actions and the `docker`
//!   shim, served by `hr_image`; [`deploy_step`]: the built-in `hybrid-runner/deploy`,
//!   served by `hr_rollout`.
//! - [`pod`]: job pods, where the steps of a `kubernetes` label's job run.
//! - [`assignment`]: one job handed over by a server (a Gitea task), with the results of
//!   the jobs it needs and the server's `github` context; [`checkout`] fetches its repository.

pub mod action;
pub mod assignment;
pub mod cache_mode;
pub mod call;
pub mod checkout;
pub mod commands;
pub mod contexts;
pub mod deploy_step;
mod docker_action;
pub mod dry_run;
pub mod engine;
pub mod env_files;
pub mod eval;
pub mod events;
pub mod hash_files;
pub mod image_steps;
pub mod job;
pub mod job_pod;
pub mod labels;
pub mod mask;
pub mod placement;
pub mod pod;
mod pod_step;
mod ready_jobs;
pub mod schedule;
pub mod scratch;
pub mod step;
pub mod step_def;
pub mod step_files;
mod step_output;
mod step_pod;
pub mod strategy;
pub mod toolkit_gate;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use workflows::expression::{Object, Value};
use workflows::model::{InputType, Workflow};

use contexts::{Repository, RunInfo};
use engine::Engine;
use events::{EventSink, JobKey, Outcome};
use hr_process::host::StopPolicy;
use schedule::{RunLimits, WorkflowScope};

/// Everything `exec` needs, validated by the command line.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// The workflow files to consider (already expanded from `-W`).
    pub workflow_files: Vec<PathBuf>,
    /// The workspace: the repository root.
    pub workdir: PathBuf,
    pub event: String,
    pub event_path: Option<PathBuf>,
    /// `-j`: run only these jobs (and what they need).
    pub jobs: Vec<String>,
    pub inputs: Vec<(String, String)>,
    pub secrets: Vec<(String, String)>,
    pub vars: Vec<(String, String)>,
    pub env: Vec<(String, String)>,
    pub matrix: Vec<(String, String)>,
    pub platforms: Vec<(String, String)>,
    /// Only `platforms` map labels; every other label is skipped, as act does.
    pub strict_platforms: bool,
    pub concurrency: usize,
    pub action_cache: PathBuf,
    pub offline: bool,
    pub default_actions_url: String,
    /// Overrides of `github` context fields (`actor`, `repository`, ...), for tests and
    /// for users who run outside a git checkout. `actor` is
    /// [`contexts::DEFAULT_ACTOR`] unless given here.
    pub github: Vec<(String, String)>,
    /// The git remote whose URL names the repository (`github.repository`, `server_url`);
    /// act's `--remote-name`, [`contexts::DEFAULT_REMOTE`] by default.
    pub remote_name: String,
    /// `github.event.repository.default_branch` when the payload has none (act's
    /// `--defaultbranch`); `master` when `None`, as act.
    pub default_branch: Option<String>,
    pub stop: StopPolicy,
    /// `-n`: evaluate every step, run no process.
    pub dry_run: bool,
    /// `-v`: report `::debug::` lines without turning on step debugging.
    pub debug_lines: bool,
    /// `--builder`, `--insecure-registry`, `--no-docker-shim`.
    pub builds: image_steps::BuildSettings,
    /// Run container jobs (`container:`, `services:`) in pods of the cluster of
    /// `builds` (`--container-backend kubernetes`, or `--kubeconfig`); without it they are
    /// refused.
    pub pods: Option<pod::PodSettings>,
    /// The runner's services (the cache server) every job gets variables from.
    pub job_services: Option<Arc<dyn engine::JobServicesEnv>>,
}

impl ExecOptions {
    /// Step debug logging, as GitHub turns it on: `ACTIONS_STEP_DEBUG` (or `RUNNER_DEBUG`)
    /// set to `true`/`1` in the runner's environment, with `--env`, or as a variable
    /// (`--var`) or a secret (`-s`), the two places GitHub reads it from. It shows
    /// `::debug::` lines and sets `runner.debug` / `RUNNER_DEBUG` to `1`.
    pub fn step_debug(&self) -> bool {
        let on = |k: &str, v: &str| {
            (k == "ACTIONS_STEP_DEBUG" || k == "RUNNER_DEBUG")
                && (v.trim().eq_ignore_ascii_case("true") || v.trim() == "1")
        };
        std::env::vars().any(|(k, v)| on(&k, &v))
            || self
                .env
                .iter()
                .chain(&self.vars)
                .chain(&self.secrets)
                .any(|(k, v)| on(k, v))
    }
}

/// How each job ended.
#[derive(Debug, Clone)]
pub struct ExecReport {
    pub jobs: Vec<(JobKey, Outcome, Duration)>,
}

impl ExecReport {
    pub fn success(&self) -> bool {
        !self
            .jobs
            .iter()
            .any(|(_, o, _)| *o == Outcome::Failure || *o == Outcome::Cancelled)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{0}")]
    Workflow(workflows::Diagnostics),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the event payload {path} is not JSON: {message}")]
    EventPayload { path: PathBuf, message: String },
    #[error("cannot create the run's scratch folder: {0}")]
    Scratch(#[source] std::io::Error),
    #[error("no job named {0}; `hybrid-runner exec -l` lists the jobs")]
    UnknownJob(String),
}

/// A workflow file read and loaded before the event is chosen: `exec` picks the event from
/// the workflows' `on:` as act does, then keeps the workflows it triggers
/// ([`select_workflows`]), so each file is loaded once.
#[derive(Debug)]
pub struct LoadedFile {
    pub path: PathBuf,
    /// The workflow, or the problems that keep it from loading; `Err` when the file could
    /// not be read.
    pub workflow: Result<Result<Workflow, workflows::Diagnostics>, std::io::Error>,
}

/// Reads and loads `files` in order, each named by its path under `workdir`, up to the
/// first that cannot be read.
pub fn read_workflows(workdir: &Path, files: &[PathBuf]) -> Vec<LoadedFile> {
    let mut out = Vec::with_capacity(files.len());
    for path in files {
        let workflow = std::fs::read_to_string(path).map(|text| {
            let name = path
                .strip_prefix(workdir)
                .unwrap_or(path)
                .display()
                .to_string();
            workflows::model::load(&text, &name)
        });
        let unreadable = workflow.is_err();
        out.push(LoadedFile {
            path: path.clone(),
            workflow,
        });
        if unreadable {
            break;
        }
    }
    out
}

/// Loads the workflows triggered by the event.
pub fn load_workflows(options: &ExecOptions) -> Result<Vec<Workflow>, ExecError> {
    select_workflows(
        options,
        read_workflows(&options.workdir, &options.workflow_files),
    )
}

/// The workflows of `files` ([`read_workflows`] of `options.workflow_files`) triggered by
/// the event, as [`load_workflows`] gives them.
pub fn select_workflows(
    options: &ExecOptions,
    files: Vec<LoadedFile>,
) -> Result<Vec<Workflow>, ExecError> {
    let mut loaded = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        match file.workflow {
            Err(source) => {
                return Err(ExecError::Read {
                    path: file.path,
                    source,
                });
            }
            Ok(Ok(w)) if w.triggered_by(&options.event) => loaded.push(w),
            Ok(Ok(_)) => {}
            Ok(Err(d)) => problems.extend(d.0),
        }
    }
    // GitHub's limits on reusable workflows, over the calls within the repository, before
    // anything runs (remote calls are checked as they are fetched, see `call`).
    let local = call::CalledFiles {
        workspace: &options.workdir,
        cache: None,
    };
    for workflow in &loaded {
        if let Err(problem) = workflows::plan::check_call_limits(workflow, &local, 0) {
            problems.push(problem);
        }
    }
    if !problems.is_empty() {
        return Err(ExecError::Workflow(workflows::Diagnostics(problems)));
    }
    for job in &options.jobs {
        if !loaded.iter().any(|w| w.job(job).is_some()) {
            return Err(ExecError::UnknownJob(job.clone()));
        }
    }
    Ok(loaded)
}

/// Runs every selected job of `workflows`; events go to `sink`.
pub async fn run(
    options: ExecOptions,
    workflows: Vec<Workflow>,
    sink: EventSink,
    cancel: CancellationToken,
    hard_cancel: CancellationToken,
) -> Result<ExecReport, ExecError> {
    // What killed runs left (step scripts with their secrets) goes first.
    scratch::remove_abandoned();
    let temp = scratch::ScratchFolder::create("run").map_err(ExecError::Scratch)?;
    let event = event_payload(&options)?;
    let event_path = temp.path().join("event.json");
    std::fs::write(
        &event_path,
        serde_json::to_string_pretty(&event.to_json()).unwrap_or_default(),
    )
    .map_err(ExecError::Scratch)?;
    let mut repo = Repository::discover(&options.workdir, &options.remote_name);
    for (k, v) in &options.github {
        match k.as_str() {
            "actor" => repo.actor = v.clone(),
            "repository" => repo.repository = v.clone(),
            "repository_owner" => repo.owner = v.clone(),
            "sha" => repo.sha = v.clone(),
            "ref" => repo.git_ref = v.clone(),
            "server_url" => repo.server_url = v.clone(),
            _ => {}
        }
    }
    let run_info = RunInfo {
        repo,
        event_name: options.event.clone(),
        event: event.clone(),
        event_path,
        workspace: options.workdir.clone(),
        run_id: std::process::id().to_string(),
        run_number: "1".into(),
        temp_root: temp.path().to_path_buf(),
        given_github: None,
    };
    let cache = actions::ActionCache::new(
        options.action_cache.clone(),
        &options.default_actions_url,
        options.offline,
    );
    // act sets `ACT=true` for every step, so workflows can tell a local run; `--env`
    // comes after it.
    let env = [("ACT".to_string(), "true".to_string())]
        .into_iter()
        .chain(options.env.iter().cloned())
        .collect();
    let mut engine = Engine::new(
        run_info,
        sink.clone(),
        cache,
        options.stop,
        env,
        hard_cancel,
    );
    engine.dry_run = options.dry_run;
    engine.builds = Arc::new(image_steps::BuildService::new(options.builds.clone()));
    engine.debug = options.step_debug();
    engine.debug_lines = options.debug_lines;
    engine.job_services = options.job_services.clone();
    if let Some(settings) = &options.pods {
        engine.pods = Some(Arc::new(job_pod::PodLauncher {
            settings: settings.clone(),
            task: hr_cluster::run_ids::unique_task_id(&format!("exec-{}", engine.run.run_id)),
            label: placement::Placement::Host,
        }));
    }
    let engine = Arc::new(engine);
    let limits = RunLimits {
        concurrency: Arc::new(Semaphore::new(options.concurrency.max(1))),
        jobs_at_once: options.concurrency.max(1),
        platforms: Arc::new(options.platforms.clone()),
        strict_platforms: options.strict_platforms,
        matrix_filter: Arc::new(options.matrix.clone()),
        cancel,
        assigned: false,
    };
    let secrets: Object = options
        .secrets
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    let vars: Object = options
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    let mut runs = tokio::task::JoinSet::new();
    for workflow in workflows {
        let scope = WorkflowScope {
            inputs: inputs(&workflow, &options.event, &event),
            secrets: secrets.clone(),
            vars: vars.clone(),
            prefix: String::new(),
            only: options
                .jobs
                .iter()
                .filter(|j| workflow.job(j).is_some())
                .cloned()
                .collect(),
            depth: 0,
            given_needs: Vec::new(),
            cache: cache_mode::CacheAccess::UNLIMITED,
        };
        let (engine, limits) = (engine.clone(), limits.clone());
        runs.spawn(async move {
            schedule::run_workflow(engine, Arc::new(workflow), scope, limits).await
        });
    }
    let mut report = ExecReport { jobs: Vec::new() };
    while let Some(done) = runs.join_next().await {
        if let Ok(outcomes) = done {
            let mut jobs: Vec<_> = outcomes.into_iter().collect();
            jobs.sort_by(|a, b| a.0.cmp(&b.0));
            for (id, o) in jobs {
                report.jobs.push((
                    JobKey {
                        id: id.clone(),
                        name: id,
                    },
                    o.result,
                    o.duration,
                ));
            }
        }
    }
    drop(temp);
    Ok(report)
}

/// The event payload: `-e FILE`, else a minimal one for the event (with `inputs` for
/// `workflow_dispatch`), with `repository.default_branch` when it has none (act's
/// `--defaultbranch`, default `master`).
fn event_payload(options: &ExecOptions) -> Result<Value, ExecError> {
    let mut payload = match &options.event_path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ExecError::Read {
                path: path.clone(),
                source,
            })?;
            let json: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| ExecError::EventPayload {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            match Value::from_json(&json) {
                Value::Object(o) => (*o).clone(),
                _ => Object::new(),
            }
        }
        None => Object::new(),
    };
    if !options.inputs.is_empty() {
        let mut inputs = payload
            .get("inputs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (k, v) in &options.inputs {
            inputs.insert(k.clone(), Value::from(v.as_str()));
        }
        payload.insert("inputs", Value::object(inputs));
    }
    let mut repository = match payload.get("repository") {
        Some(Value::Object(r)) => (**r).clone(),
        // A payload whose `repository` is not an object keeps it (act warns and does so).
        Some(_) => return Ok(Value::object(payload)),
        None => Object::new(),
    };
    if repository.get("default_branch").is_none() {
        let branch = options.default_branch.as_deref().unwrap_or("master");
        repository.insert("default_branch", Value::from(branch));
        payload.insert("repository", Value::object(repository));
    }
    Ok(Value::object(payload))
}

/// The `inputs` context: `workflow_dispatch`/`workflow_call` input defaults, then the
/// event's `inputs` (typed by the input definitions: booleans and numbers keep their kind).
pub(crate) fn inputs(workflow: &Workflow, event_name: &str, event: &Value) -> Object {
    let mut out = Object::new();
    let definitions: Vec<_> = ["workflow_dispatch", "workflow_call"]
        .iter()
        .filter(|e| **e == event_name)
        .filter_map(|e| workflow.event(e))
        .flat_map(|e| {
            e.dispatch_inputs
                .iter()
                .chain(e.call.iter().flat_map(|c| c.inputs.iter()))
        })
        .collect();
    for def in &definitions {
        if let Some(default) = &def.default {
            out.insert(def.name.value.clone(), default.to_value());
        }
    }
    if let Some(given) = event.get("inputs").and_then(Value::as_object) {
        for (k, v) in given.iter() {
            let kind = definitions
                .iter()
                .find(|d| d.name.value.eq_ignore_ascii_case(k))
                .map(|d| d.input_type);
            let typed = match (kind, v) {
                (Some(InputType::Boolean), Value::String(s)) => Value::Bool(s == "true"),
                (Some(InputType::Number), Value::String(s)) => {
                    Value::Number(workflows::expression::number::parse_number(s))
                }
                _ => v.clone(),
            };
            out.insert(k.to_string(), typed);
        }
    }
    out
}
