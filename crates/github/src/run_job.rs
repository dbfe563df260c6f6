//! One GitHub job through the job engine: the job message becomes the same
//! [`Assignment`] a Gitea task becomes. Its contexts (`github`, `needs`, `vars`, `matrix`
//! through the one-job workflow), secrets (the secret variables, as actions/runner's
//! `Variables.ToSecretsContext` picks them), masks (secrets, mask hints, the job token and
//! its `x-access-token` Basic form) and the environment actions/runner gives its steps
//! (`ACTIONS_RUNTIME_URL`/`TOKEN`, `ACTIONS_CACHE_URL`, `ACTIONS_RESULTS_URL`,
//! `ACTIONS_ID_TOKEN_REQUEST_*`, `RUNNER_*`) are taken from the message; its actions are
//! put into the cache through the launch service first ([`crate::job_actions`]).
//!
//! Placement: GitHub's message does not carry `runs-on` (GitHub only offers a runner jobs
//! whose labels it has), so the runner's own labels decide: the first label that asks for
//! a container (`kubernetes`, `kubernetes://IMAGE`, `docker`...) places every job, and a
//! runner with only host labels runs jobs on this host. A job `container:` runs in a pod of
//! that image when Kubernetes is configured, and is refused otherwise.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;
use workflows::expression::{Object, Value};

use crate::job::JobMessage;
use crate::job_actions::{self, ActionsError};
use crate::message::MessageError;
use hr_engine::assignment::{Assignment, NeedResult};
use hr_engine::events::{Event, EventSink, JobKey, LogKind, Outcome};
use hr_engine::job::JobOutcome;
use hr_engine::job_pod::{DAEMON_CLUSTER_REMEDY, PodLauncher};
use hr_engine::labels::{Label, LabelKind};
use hr_engine::mask::Masker;
use hr_engine::placement::{
    FolderError, Placement, PlacementError, TaskFolders, fail_before_start, masker_for,
    run_and_clean_up,
};
use hr_engine::pod::PodSettings;
use hr_process::host::StopPolicy;

/// How this runner runs GitHub jobs.
#[derive(Debug, Clone)]
pub struct JobSettings {
    pub runner_name: String,
    /// This runner's labels (parsed, with their placement).
    pub labels: Vec<Label>,
    /// Job folders go here (`_work`).
    pub work_folder: PathBuf,
    pub action_cache: PathBuf,
    /// Variables every job gets (the daemon's `runner.envs`).
    pub envs: Vec<(String, String)>,
    pub builds: hr_engine::image_steps::BuildSettings,
    pub pods: PodSettings,
    /// Jobs of container labels and `container:` jobs may run in pods.
    pub kubernetes_configured: bool,
    /// The runner's cap on a job's run time (zero: none).
    pub timeout: Duration,
}

/// Why a job cannot start; each becomes runner lines of the job's log.
#[derive(Debug, thiserror::Error)]
pub enum JobSetupError {
    #[error("{0}")]
    Message(#[from] MessageError),
    #[error("the job's steps do not form a valid workflow:\n{0}")]
    Workflow(workflows::Diagnostics),
    #[error("{0}")]
    Placement(#[from] PlacementError),
    #[error(
        "cannot create the job folder {}: {}; check the work folder and its permissions",
        .0.path.display(),
        .0.source
    )]
    Folder(FolderError),
    #[error("preparing the job's actions failed: {0}")]
    Actions(#[from] ActionsError),
}

/// Runs one job. Never fails: a job that cannot start reports its reason as runner lines
/// through `sink` and ends as Failure. `cancel`: the service cancelled the job (steps get
/// SIGINT, `always()` steps still run, the result is Cancelled); `hard_cancel` stops those
/// too.
pub async fn run_job(
    http: &reqwest::Client,
    job: &JobMessage,
    settings: &JobSettings,
    sink: EventSink,
    cancel: CancellationToken,
    hard_cancel: CancellationToken,
) -> JobOutcome {
    let started = Instant::now();
    let masker = job_masker(job);
    let fallback_key = JobKey {
        id: job.job_key(),
        name: non_empty(job.job_display_name.clone()).unwrap_or_else(|| job.job_key()),
    };
    let needs = needs(job);
    let need_ids: Vec<String> = needs.iter().map(|(id, _)| id.clone()).collect();
    let workflow = match job
        .workflow_yaml()
        .map_err(JobSetupError::from)
        .and_then(|text| {
            workflows::model::load_with_outside_jobs(
                &text,
                "job message",
                &need_ids,
                workflows::model::Dialect::Github,
            )
            .map_err(JobSetupError::Workflow)
        }) {
        Ok(w) => w,
        Err(e) => return fail_before_start(&sink, fallback_key, &masker, &e, started),
    };
    let key = workflow
        .jobs
        .first()
        .map(|j| JobKey {
            id: j.id.value.clone(),
            name: j.effective_name().to_string(),
        })
        .unwrap_or(fallback_key);
    let github = github_context(job);
    let text = |k: &str| {
        github
            .get(k)
            .map(hr_engine::eval::display)
            .unwrap_or_default()
    };
    let say = |line: String| {
        sink.send(Event::Log {
            job: key.clone(),
            step: None,
            kind: LogKind::Runner,
            line: masker.mask(&line).into_owned(),
        });
    };
    let labels: Vec<String> = settings.labels.iter().map(Label::to_spec).collect();
    say(format!(
        "Runner: {} (hybrid-runner {}, as actions/runner {}), labels: {}",
        settings.runner_name,
        env!("CARGO_PKG_VERSION"),
        crate::registration::DEFAULT_RUNNER_VERSION,
        labels.join(", ")
    ));
    say(format!(
        "Job {} of workflow {}, repository {}, event {}, request {}",
        key.id,
        text("workflow"),
        text("repository"),
        text("event_name"),
        job.request_id
    ));
    // actions/runner's `JobExtension` prints it with the job's set-up lines.
    if let Some(mode) = cache_mode(job) {
        say(format!("Cache mode: {mode}"));
    }
    let placement = match placement(settings) {
        Ok((placement, line)) => {
            say(line);
            placement
        }
        Err(e) => return fail_before_start(&sink, key, &masker, &e, started),
    };
    let folders = match TaskFolders::create(
        &settings.work_folder,
        &job.request_id.to_string(),
        &text("repository"),
    ) {
        Ok(f) => f,
        Err(e) => {
            return fail_before_start(&sink, key, &masker, &JobSetupError::Folder(e), started);
        }
    };
    let launch = job
        .variable("system.github.launch_endpoint")
        .unwrap_or_default();
    let actions_offline = !launch.is_empty();
    if actions_offline {
        let cache =
            actions::ActionCache::new(settings.action_cache.clone(), "https://github.com", false);
        match job_actions::prepare(http, job, launch, &cache, folders.scratch.path()).await {
            Ok(stored) if stored.is_empty() => {}
            Ok(stored) => say(format!("Actions ready: {}", stored.join(", "))),
            Err(e) => {
                let _ = folders.remove();
                let e = JobSetupError::Actions(e);
                return fail_before_start(&sink, key, &masker, &e, started);
            }
        }
    }
    let pods = PodLauncher::for_task(
        placement,
        &settings.pods,
        settings.kubernetes_configured,
        job.request_id.to_string(),
    );
    let mut env = settings.envs.clone();
    for (k, v) in runner_env(job, settings) {
        hr_engine::eval::upsert(&mut env, k, v);
    }
    let assignment = Assignment {
        workflow,
        needs,
        github,
        secrets: secrets(job),
        vars: context_pairs(job.contexts.get("vars")),
        env,
        masks: extra_masks(job),
        workspace: folders.workspace.clone(),
        temp_root: folders.scratch.path().to_path_buf(),
        runner_name: settings.runner_name.clone(),
        action_cache: settings.action_cache.clone(),
        default_actions_url: "https://github.com".into(),
        actions_offline,
        builds: settings.builds.clone(),
        time_limit: Some(settings.timeout).filter(|t| !t.is_zero()),
        stop: StopPolicy::default(),
        pods,
        cluster_remedy: DAEMON_CLUSTER_REMEDY.to_string(),
        open_ghes_gate: false,
    };
    run_and_clean_up(assignment, folders, &sink, cancel, hard_cancel, &say).await
}

/// Where the job's label puts its steps, and the runner line that says so (see the
/// module's docs); a `container:` or `services:` puts them in a pod whatever the label
/// ([`hr_engine::job_pod`]).
fn placement(settings: &JobSettings) -> Result<(Placement, String), JobSetupError> {
    let chosen = settings
        .labels
        .iter()
        .find(|l| !matches!(l.kind, LabelKind::Host))
        .or_else(|| settings.labels.first());
    let runs_on: Vec<String> = chosen.map(|l| l.name.clone()).into_iter().collect();
    Ok(Placement::for_runs_on(
        &runs_on,
        &settings.labels,
        settings.kubernetes_configured,
    )?)
}

/// The `github` context: the message's, with `token` (`system.github.token`) and `job`
/// (`system.github.job`) as actions/runner adds them.
fn github_context(job: &JobMessage) -> Object {
    let mut github = match job.contexts.get("github").map(Value::from_json) {
        Some(Value::Object(o)) => (*o).clone(),
        _ => Object::new(),
    };
    if let Some(token) = job.variable("system.github.token") {
        github.insert("token", Value::from(token));
    }
    if let Some(id) = job.variable("system.github.job").filter(|j| !j.is_empty()) {
        github.insert("job", Value::from(id));
    }
    github
}

/// The jobs this job needs (`needs` context: `{id: {result, outputs}}`).
fn needs(job: &JobMessage) -> Vec<(String, NeedResult)> {
    let Some(Json::Object(needs)) = job.contexts.get("needs") else {
        return Vec::new();
    };
    needs
        .iter()
        .map(|(id, need)| {
            let result = match need.get("result").and_then(Json::as_str) {
                Some("success") => Outcome::Success,
                Some("cancelled") => Outcome::Cancelled,
                Some("skipped") => Outcome::Skipped,
                _ => Outcome::Failure,
            };
            let outputs = context_pairs(need.get("outputs"));
            (id.clone(), NeedResult { result, outputs })
        })
        .collect()
}

/// A context object's string values (`vars`, a need's `outputs`).
fn context_pairs(value: Option<&Json>) -> Vec<(String, String)> {
    let Some(Json::Object(map)) = value else {
        return Vec::new();
    };
    map.iter()
        .map(|(k, v)| {
            let text = match v {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}

/// The `secrets` context: the secret variables but the system's access tokens.
fn secrets(job: &JobMessage) -> Vec<(String, String)> {
    job.variables
        .iter()
        .filter(|v| {
            v.is_secret
                && !v.name.eq_ignore_ascii_case("system.accessToken")
                && !v.name.eq_ignore_ascii_case("system.github.token")
        })
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect()
}

/// Masked besides the secrets: every secret variable (the system tokens too), the mask
/// hints, the job's access token and the Basic form of the GitHub token.
fn extra_masks(job: &JobMessage) -> Vec<String> {
    let mut masks: Vec<String> = job
        .variables
        .iter()
        .filter(|v| v.is_secret && !v.value.is_empty())
        .map(|v| v.value.clone())
        .collect();
    masks.extend(job.mask_hints.iter().filter(|m| !m.is_empty()).cloned());
    if !job.connection.access_token.is_empty() {
        masks.push(job.connection.access_token.clone());
    }
    if let Some(token) = job
        .variable("system.github.token")
        .filter(|t| !t.is_empty())
    {
        masks.push(
            base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}")),
        );
    }
    masks
}

fn job_masker(job: &JobMessage) -> Masker {
    let masks = extra_masks(job);
    masker_for(masks.iter().map(String::as_str))
}

/// The variables actions/runner gives a job's actions (`NodeScriptActionHandler.cs`),
/// here to every step: the Actions runtime, cache, results and OIDC endpoints of the
/// `SystemVssConnection`, and the runner's own.
pub fn runner_env(job: &JobMessage, settings: &JobSettings) -> Vec<(String, String)> {
    let data = |k: &str| {
        job.connection
            .data
            .get(k)
            .and_then(Json::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let token = job.connection.access_token.clone();
    let mut env = vec![
        (
            "ACTIONS_RUNTIME_URL".to_string(),
            data("PipelinesServiceUrl").unwrap_or_else(|| job.connection.url.clone()),
        ),
        ("ACTIONS_RUNTIME_TOKEN".into(), token.clone()),
    ];
    if let Some(url) = data("CacheServerUrl") {
        env.push(("ACTIONS_CACHE_URL".into(), url));
    }
    if let Some(url) = data("ResultsServiceUrl") {
        env.push(("ACTIONS_RESULTS_URL".into(), url));
    }
    if let Some(url) = data("GenerateIdTokenUrl") {
        env.push(("ACTIONS_ID_TOKEN_REQUEST_URL".into(), url));
        env.push(("ACTIONS_ID_TOKEN_REQUEST_TOKEN".into(), token));
    }
    if job
        .variable("actions_uses_cache_service_v2")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        env.push(("ACTIONS_CACHE_SERVICE_V2".into(), "True".into()));
    }
    // The job's effective `cache-mode:`, which GitHub's cache service enforces and
    // `@actions/cache` reads (runner PR #4538).
    if let Some(mode) = cache_mode(job) {
        env.push(("ACTIONS_CACHE_MODE".into(), mode.to_string()));
    }
    env.push(("RUNNER_NAME".into(), settings.runner_name.clone()));
    env.push(("RUNNER_ENVIRONMENT".into(), "self-hosted".into()));
    env
}

/// The `actions_cache_mode` variable, when the service sets one.
fn cache_mode(job: &JobMessage) -> Option<&str> {
    job.variable("actions_cache_mode").filter(|m| !m.is_empty())
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_services_cache_mode_reaches_the_steps() {
        let settings = JobSettings {
            runner_name: "r".into(),
            labels: Vec::new(),
            work_folder: PathBuf::from("/w"),
            action_cache: PathBuf::from("/c"),
            envs: Vec::new(),
            builds: Default::default(),
            pods: Default::default(),
            kubernetes_configured: false,
            timeout: Duration::ZERO,
        };
        let mut message = crate::job::tests::sample();
        let env = runner_env(&JobMessage::parse(&message).unwrap(), &settings);
        assert!(!env.iter().any(|(k, _)| k == "ACTIONS_CACHE_MODE"));
        message["variables"]["actions_cache_mode"] = serde_json::json!({"value": "read"});
        let env = runner_env(&JobMessage::parse(&message).unwrap(), &settings);
        assert!(env.contains(&("ACTIONS_CACHE_MODE".to_string(), "read".to_string())));
    }
}
