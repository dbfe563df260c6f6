//! One job handed over by a server (a Gitea task today): the workflow holds exactly that
//! job (its matrix already fixed), the jobs it needs ran elsewhere and come with their
//! results and outputs, and the `github` context is the server's. [`run_assignment`] runs
//! it through the same scheduler and job loop as `exec` ([`super::schedule`],
//! [`super::job`]), so job `if:`, skip propagation, `needs.<id>.outputs`, step semantics,
//! masking and outputs behave as in a full run; what differs is set on the [`Engine`]:
//! the given `github` context, a real `actions/checkout` into an empty workspace, the
//! runner's job time limit, the extra masked values, and no `runs-on` platform check (the
//! server already matched `runs-on` to this runner).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use workflows::expression::{Object, Value};
use workflows::model::{Located, Workflow};

use super::contexts::{Repository, RunInfo};
use super::engine::{CheckoutMode, Engine};
use super::eval::display;
use super::events::{EventSink, JobKey, Outcome};
use super::job::JobOutcome;
use super::placement::end_before_start;
use super::schedule::{self, RunLimits, WorkflowScope};
use crate::image_steps::{BuildService, BuildSettings};
use hr_process::host::StopPolicy;

/// The result and outputs of a job this job needs, as the server reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedResult {
    pub result: Outcome,
    pub outputs: Vec<(String, String)>,
}

/// One job to run, as a job source hands it over.
#[derive(Debug, Clone)]
pub struct Assignment {
    /// The workflow, with exactly one job; its `needs:` may name the jobs of [`Self::needs`]
    /// (when it names none, it needs all of them, as act_runner rewrites it).
    pub workflow: Workflow,
    /// The jobs this job needs, by id.
    pub needs: Vec<(String, NeedResult)>,
    /// The `github` context the server gave; its keys win over locally computed ones,
    /// except `workspace`, `event_path` and `job`. `token` is replaced by the preferred
    /// token (`secrets.FORGEJO_TOKEN`, else `secrets.GITEA_TOKEN`, else
    /// `secrets.GITHUB_TOKEN`, else this `token`).
    pub github: Object,
    pub secrets: Vec<(String, String)>,
    pub vars: Vec<(String, String)>,
    /// The lowest level of the `env` context (runner `envs`, the source's job variables).
    pub env: Vec<(String, String)>,
    /// Values masked in every line besides the secrets and `github.token`.
    pub masks: Vec<String>,
    /// The job's workspace (created if missing; starts empty for a server's job).
    pub workspace: PathBuf,
    /// Scratch space: the event file, tool cache, the job's `RUNNER_TEMP`.
    pub temp_root: PathBuf,
    pub runner_name: String,
    pub action_cache: PathBuf,
    /// Where `uses: owner/repo@ref` is fetched from (e.g. `https://github.com`).
    pub default_actions_url: String,
    /// The job's remote actions were put into the cache before it started (GitHub's
    /// launch service hands out archives); nothing is fetched while it runs.
    pub actions_offline: bool,
    pub builds: BuildSettings,
    /// The runner's cap on the job's run time (`runner.timeout`).
    pub time_limit: Option<Duration>,
    pub stop: StopPolicy,
    /// How the job's pod is started, when a cluster is configured (the engine starts it
    /// when the label or the job's `container:`/`services:` ask for one).
    pub pods: Option<crate::job_pod::PodLauncher>,
    /// Without `pods`: how to give the runner a cluster (see `Engine::cluster_remedy`).
    pub cluster_remedy: String,
    /// The server is a Gitea or Forgejo: open the toolkit's GHES gate in actions' bundles
    /// ([`crate::toolkit_gate`]).
    pub open_ghes_gate: bool,
}

/// Runs the assignment's job. `cancel`: stop the job (steps get SIGINT; `always()` and
/// `post` steps still run; the result is Cancelled). `hard_cancel` stops those too.
/// Never fails: a job that cannot start reports why as a runner log line and fails.
pub async fn run_assignment(
    assignment: Assignment,
    sink: EventSink,
    cancel: CancellationToken,
    hard_cancel: CancellationToken,
) -> JobOutcome {
    let started = Instant::now();
    let mut assignment = assignment;
    let Some(job) = assignment.workflow.jobs.first() else {
        let key = JobKey {
            id: "job".into(),
            name: "job".into(),
        };
        return refuse(&sink, key, "the workflow has no job to run".into(), started);
    };
    let key = JobKey {
        id: job.id.value.clone(),
        name: job.effective_name().to_string(),
    };
    if assignment.workflow.jobs.len() != 1 {
        let ids: Vec<&str> = assignment
            .workflow
            .jobs
            .iter()
            .map(|j| j.id.value.as_str())
            .collect();
        let message = format!(
            "the workflow holds {} jobs ({}); a task runs exactly one",
            ids.len(),
            ids.join(", ")
        );
        return refuse(&sink, key, message, started);
    }
    if cancel.is_cancelled() {
        return end_before_start(
            &sink,
            key,
            Outcome::Cancelled,
            ["the job was cancelled before it started".to_string()],
            started,
        );
    }
    adopt_needs(&mut assignment);
    let job_id = key.id.clone();
    let prepared = prepare(&assignment);
    let (run_info, event) = match prepared {
        Ok(ready) => ready,
        Err(e) => return refuse(&sink, key, e.to_string(), started),
    };
    let secrets = secrets_object(&assignment.secrets, &run_info);
    let vars = pairs_object(&assignment.vars);
    let mut cache = actions::ActionCache::new(
        assignment.action_cache.clone(),
        &assignment.default_actions_url,
        assignment.actions_offline,
    );
    // Actions on the instance itself (private action repositories) are fetched with the
    // task token, as act_runner does for its own instance; nothing else gets it.
    if let Some(github) = &run_info.given_github {
        let text = |k: &str| github.get(k).map(display).unwrap_or_default();
        let (server, token) = (text("server_url"), text("token"));
        if !server.is_empty() && !token.is_empty() {
            cache = cache.with_auth(&server, &crate::checkout::authorization(&token));
        }
    }
    let mut engine = Engine::new(
        run_info,
        sink.clone(),
        cache,
        assignment.stop,
        assignment.env.clone(),
        hard_cancel,
    );
    engine.debug = engine.debug || step_debug(&assignment.secrets, &assignment.vars);
    engine.builds = Arc::new(BuildService::new(assignment.builds.clone()));
    engine.runner_name = assignment.runner_name.clone();
    engine.checkout = CheckoutMode::Fetch;
    engine.job_time_limit = assignment.time_limit;
    engine.masks = assignment.masks.clone();
    engine.pods = assignment.pods.clone().map(Arc::new);
    engine.cluster_remedy = assignment.cluster_remedy.clone();
    engine.open_ghes_gate = assignment.open_ghes_gate;
    if let Some(token) = engine
        .run
        .given_github
        .as_ref()
        .and_then(|g| g.get("token"))
    {
        engine.masks.push(display(token));
    }
    let event_name = engine.run.event_name.clone();
    let engine = Arc::new(engine);
    let limits = RunLimits {
        concurrency: Arc::new(Semaphore::new(1)),
        jobs_at_once: 1,
        platforms: Arc::new(Vec::new()),
        strict_platforms: false,
        matrix_filter: Arc::new(Vec::new()),
        cancel,
        assigned: true,
    };
    let scope = WorkflowScope {
        inputs: super::inputs(&assignment.workflow, &event_name, &event),
        secrets,
        vars,
        prefix: String::new(),
        only: Vec::new(),
        depth: 0,
        given_needs: assignment
            .needs
            .iter()
            .map(|(id, need)| {
                let outcome = JobOutcome {
                    result: need.result,
                    outputs: need.outputs.clone(),
                    duration: Duration::ZERO,
                };
                (id.clone(), outcome)
            })
            .collect(),
        cache: crate::cache_mode::CacheAccess::UNLIMITED,
    };
    let workflow = Arc::new(assignment.workflow);
    let mut outcomes = schedule::run_workflow(engine, workflow, scope, limits).await;
    match outcomes.remove(&job_id) {
        Some(outcome) => JobOutcome {
            result: outcome.result,
            outputs: outcome.outputs,
            duration: started.elapsed(),
        },
        None => refuse(
            &sink,
            key,
            "the job stopped unexpectedly before it reported a result".into(),
            started,
        ),
    }
}

/// Reports why the job cannot run, as a runner line of a started and failed job.
fn refuse(sink: &EventSink, key: JobKey, message: String, started: Instant) -> JobOutcome {
    end_before_start(
        sink,
        key,
        Outcome::Failure,
        [format!("error: {message}")],
        started,
    )
}

/// A job whose `needs:` the server erased (Gitea stores the payload without it) needs every
/// job the assignment names, in sorted order, as act_runner rewrites it.
fn adopt_needs(assignment: &mut Assignment) {
    let mut ids: Vec<String> = assignment.needs.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    if let Some(job) = assignment.workflow.jobs.first_mut()
        && job.needs.is_empty()
    {
        let at = job.id.location;
        job.needs = ids.into_iter().map(|id| Located::new(id, at)).collect();
    }
}

/// Why an assigned job could not be prepared on this host (it fails before any step).
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("cannot create the job folder {}: {source}", dir.display())]
    JobFolder {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the event file {}: {source}", path.display())]
    EventFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Creates the workspace and scratch folders, writes the event file, and builds the run's
/// facts from the given `github` context.
fn prepare(assignment: &Assignment) -> Result<(RunInfo, Value), PrepareError> {
    for dir in [&assignment.workspace, &assignment.temp_root] {
        std::fs::create_dir_all(dir).map_err(|source| PrepareError::JobFolder {
            dir: dir.clone(),
            source,
        })?;
    }
    let github = given_github(&assignment.github, &assignment.secrets);
    let event = match github.get("event") {
        Some(v @ Value::Object(_)) => v.clone(),
        _ => Value::object(Object::new()),
    };
    let event_path = assignment.temp_root.join("event.json");
    let json = serde_json::to_string_pretty(&event.to_json()).unwrap_or_default();
    std::fs::write(&event_path, json).map_err(|source| PrepareError::EventFile {
        path: event_path.clone(),
        source,
    })?;
    let text = |k: &str| github.get(k).map(display).unwrap_or_default();
    let repository = text("repository");
    let owner = match text("repository_owner") {
        o if o.is_empty() => repository.split('/').next().unwrap_or_default().to_string(),
        o => o,
    };
    let sha = match text("sha") {
        s if s.is_empty() => "0".repeat(40),
        s => s,
    };
    let repo = Repository {
        sha,
        git_ref: text("ref"),
        repository,
        owner,
        actor: text("actor"),
        server_url: text("server_url"),
    };
    let run = RunInfo {
        repo,
        event_name: text("event_name"),
        event: event.clone(),
        event_path,
        workspace: assignment.workspace.clone(),
        run_id: text("run_id"),
        run_number: text("run_number"),
        temp_root: assignment.temp_root.clone(),
        given_github: Some(github),
    };
    Ok((run, event))
}

/// The server's context made ready for the engine: `server_url` and `api_url` without a
/// trailing `/` (Gitea sends its AppURL, which has one), `token` the preferred token.
pub fn given_github(context: &Object, secrets: &[(String, String)]) -> Object {
    let mut github = context.clone();
    for key in ["server_url", "api_url"] {
        if let Some(Value::String(url)) = github.get(key) {
            let trimmed = url.trim_end_matches('/').to_string();
            github.insert(key, Value::from(trimmed));
        }
    }
    let secret = |name: &str| {
        secrets
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    // Forgejo sends FORGEJO_TOKEN, Gitea GITEA_TOKEN; both send GITHUB_TOKEN
    // (forgejo-runner and act_runner pick them in this order).
    let token = secret("FORGEJO_TOKEN")
        .or_else(|| secret("GITEA_TOKEN"))
        .or_else(|| secret("GITHUB_TOKEN"))
        .or_else(|| github.get("token").map(display))
        .unwrap_or_default();
    github.insert("token", Value::from(token));
    github
}

/// The `secrets` context; `GITHUB_TOKEN` is always there, as on GitHub (the task token
/// when the source did not send it).
fn secrets_object(secrets: &[(String, String)], run: &RunInfo) -> Object {
    let mut out = pairs_object(secrets);
    if out.get("GITHUB_TOKEN").is_none() {
        let token = run
            .given_github
            .as_ref()
            .and_then(|g| g.get("token"))
            .map(display)
            .unwrap_or_default();
        if !token.is_empty() {
            out.insert("GITHUB_TOKEN", Value::from(token));
        }
    }
    out
}

fn pairs_object(pairs: &[(String, String)]) -> Object {
    pairs
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect()
}

/// `ACTIONS_STEP_DEBUG` / `RUNNER_DEBUG` as a secret or variable turns step debug on.
fn step_debug(secrets: &[(String, String)], vars: &[(String, String)]) -> bool {
    secrets.iter().chain(vars).any(|(k, v)| {
        (k == "ACTIONS_STEP_DEBUG" || k == "RUNNER_DEBUG")
            && (v.trim().eq_ignore_ascii_case("true") || v.trim() == "1")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(pairs: &[(&str, &str)]) -> Object {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect()
    }

    fn secrets(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn token_prefers_forgejo_then_gitea_token_then_github_token_then_the_context() {
        let ctx = object(&[("token", "ctx"), ("server_url", "https://g.example/")]);
        let g = given_github(
            &ctx,
            &secrets(&[
                ("GITHUB_TOKEN", "gh"),
                ("GITEA_TOKEN", "gt"),
                ("FORGEJO_TOKEN", "fj"),
            ]),
        );
        assert_eq!(g.get("token").and_then(Value::as_str), Some("fj"));
        let g = given_github(
            &ctx,
            &secrets(&[("GITHUB_TOKEN", "gh"), ("GITEA_TOKEN", "gt")]),
        );
        assert_eq!(g.get("token").and_then(Value::as_str), Some("gt"));
        let g = given_github(&ctx, &secrets(&[("GITHUB_TOKEN", "gh")]));
        assert_eq!(g.get("token").and_then(Value::as_str), Some("gh"));
        let g = given_github(&ctx, &[]);
        assert_eq!(g.get("token").and_then(Value::as_str), Some("ctx"));
        assert_eq!(
            g.get("server_url").and_then(Value::as_str),
            Some("https://g.example")
        );
    }

    #[test]
    fn erased_needs_are_rewritten_sorted_and_written_ones_kept() {
        let text = "on: push\njobs:\n  deploy:\n    runs-on: x\n    steps: [{run: a}]\n";
        let workflow = workflows::model::load(text, "w.yml").unwrap();
        let need = NeedResult {
            result: Outcome::Success,
            outputs: Vec::new(),
        };
        let mut a = Assignment {
            workflow,
            needs: vec![("test".into(), need.clone()), ("build".into(), need)],
            github: Object::new(),
            secrets: Vec::new(),
            vars: Vec::new(),
            env: Vec::new(),
            masks: Vec::new(),
            workspace: PathBuf::new(),
            temp_root: PathBuf::new(),
            runner_name: "r".into(),
            action_cache: PathBuf::new(),
            default_actions_url: "https://github.com".into(),
            actions_offline: false,
            builds: BuildSettings::default(),
            time_limit: None,
            stop: StopPolicy::default(),
            pods: None,
            cluster_remedy: String::new(),
            open_ghes_gate: false,
        };
        adopt_needs(&mut a);
        let needs: Vec<&str> = a.workflow.jobs[0]
            .needs
            .iter()
            .map(|n| n.value.as_str())
            .collect();
        assert_eq!(needs, ["build", "test"]);
        let text =
            "on: push\njobs:\n  deploy:\n    needs: test\n    runs-on: x\n    steps: [{run: a}]\n";
        a.workflow = workflows::model::load_with_outside_jobs(
            text,
            "w.yml",
            &["test".into()],
            workflows::model::Dialect::Github,
        )
        .unwrap();
        adopt_needs(&mut a);
        assert_eq!(a.workflow.jobs[0].needs.len(), 1);
    }

    #[test]
    fn secrets_always_hold_github_token() {
        let run = RunInfo {
            repo: Repository {
                sha: String::new(),
                git_ref: String::new(),
                repository: String::new(),
                owner: String::new(),
                actor: String::new(),
                server_url: String::new(),
            },
            event_name: "push".into(),
            event: Value::Null,
            event_path: PathBuf::new(),
            workspace: PathBuf::new(),
            run_id: "1".into(),
            run_number: "1".into(),
            temp_root: PathBuf::new(),
            given_github: Some(object(&[("token", "tok")])),
        };
        let s = secrets_object(&secrets(&[("A", "1")]), &run);
        assert_eq!(s.get("GITHUB_TOKEN").and_then(Value::as_str), Some("tok"));
        let s = secrets_object(&secrets(&[("GITHUB_TOKEN", "mine")]), &run);
        assert_eq!(s.get("GITHUB_TOKEN").and_then(Value::as_str), Some("mine"));
        assert!(step_debug(&secrets(&[("ACTIONS_STEP_DEBUG", "True")]), &[]));
        assert!(!step_debug(&[], &secrets(&[("ACTIONS_STEP_DEBUG", "no")])));
    }
}
