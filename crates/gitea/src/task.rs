//! One Gitea/Forgejo task through the job engine: decodes the task (`workflow_payload`,
//! `needs`, `secrets`, `vars`, `context`), picks where its steps run from `runs-on` and
//! this runner's labels, gives the job act_runner's environment (`GITEA_ACTIONS`,
//! `ACTIONS_RUNTIME_*`, ...), writes the "Set up job" lines, runs the job in a task folder
//! `<workdir_parent>/<task id>` with [`run_assignment`], and removes the folder after.
//!
//! Steps run on this host, except for a `kubernetes` / `kubernetes://IMAGE` label: then
//! they run in a pod of the job's own namespace ([`hr_engine::pod`]), created before
//! the first step and deleted after the last. A `docker://` label (this runner has no
//! Docker) says so in one runner line and runs on the host.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use workflows::expression::{Object, Value};
use workflows::model::Dialect;

use super::client::VERSION;
use super::proto::runner::v1::{Result as TaskResult, Task, TaskNeed};
use super::proto::well_known::Struct;
use hr_engine::assignment::{Assignment, NeedResult};
use hr_engine::eval::display;
use hr_engine::events::{Event, EventSink, JobKey, LogKind, Outcome};
use hr_engine::job::JobOutcome;
use hr_engine::job_pod::{DAEMON_CLUSTER_REMEDY, PodLauncher};
use hr_engine::labels::Label;
use hr_engine::mask::Masker;
use hr_engine::placement::{
    FolderError, Placement, PlacementError, TaskFolders, fail_before_start, masker_for,
    run_and_clean_up,
};
use hr_engine::pod::PodSettings;
use hr_process::host::StopPolicy;

/// How this runner runs tasks (from the config and the `.runner` file).
#[derive(Debug, Clone)]
pub struct TaskSettings {
    /// The Gitea URL from `.runner`.
    pub instance: String,
    pub runner_name: String,
    /// This runner's labels (parsed).
    pub labels: Vec<Label>,
    /// `X-Gitea-Actions-Capabilities` from Declare, if any.
    pub capabilities: Option<String>,
    /// `host.workdir_parent`: task folders go here.
    pub workdir_parent: PathBuf,
    pub action_cache: PathBuf,
    /// `runner.envs` + `runner.env_file`.
    pub envs: Vec<(String, String)>,
    pub builds: hr_engine::image_steps::BuildSettings,
    /// `runner.timeout`.
    pub timeout: Duration,
    /// How the pods of `kubernetes` labels' jobs are made.
    pub pods: PodSettings,
    /// act_runner's `runner.github_mirror`: used instead of a default actions URL of
    /// `https://github.com`.
    pub github_mirror: Option<String>,
    /// A `kubernetes:` section is configured (or a `kubernetes` label exists): jobs of
    /// `docker`/`lxc` labels run in pods; without it they are refused.
    pub kubernetes_configured: bool,
    /// The cache server jobs save to and restore from (`cache:`).
    pub cache: job_services::CacheAccess,
    /// Gitea or Forgejo: whose rules the tasks' workflows are read by.
    pub dialect: Dialect,
}

/// Why a task cannot run; each becomes runner lines of the task's log.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("the task has no workflow_payload; the server sent an empty task")]
    PayloadMissing,
    #[error("the task's workflow_payload is not UTF-8 text: {0}")]
    PayloadText(#[source] std::str::Utf8Error),
    #[error("the task's workflow is not valid:\n{0}")]
    Workflow(#[source] workflows::Diagnostics),
    #[error(
        "the task's workflow holds {count} jobs ({ids}); a task runs exactly one (the server should send one job per task)"
    )]
    JobCount { count: usize, ids: String },
    #[error("{0}")]
    Placement(#[from] PlacementError),
    #[error(
        "cannot create the task folder {}: {}; check host.workdir_parent and its permissions",
        .0.path.display(),
        .0.source
    )]
    Folder(FolderError),
}

/// Runs one task. Never fails: a task that cannot run (bad payload, ...) reports its reason
/// as runner log lines through `sink` (`Event::Log` with step `None`, `LogKind::Runner`)
/// and ends as Failure. `cancel`: the server (or shutdown) cancelled the task: steps get
/// SIGINT, `always()`/post steps still run, the result is Cancelled; `hard_cancel` stops
/// those too.
pub async fn run_task(
    task: Task,
    settings: &TaskSettings,
    sink: EventSink,
    cancel: CancellationToken,
    hard_cancel: CancellationToken,
) -> JobOutcome {
    let started = Instant::now();
    let context = task
        .context
        .as_ref()
        .map(context_object)
        .unwrap_or_default();
    let text = |k: &str| context.get(k).map(display).unwrap_or_default();
    let fallback_key = JobKey {
        id: non_empty(text("job")).unwrap_or_else(|| format!("task-{}", task.id)),
        name: non_empty(text("job")).unwrap_or_else(|| format!("task {}", task.id)),
    };
    let masker = task_masker(&task, &context);
    let needs: Vec<(String, NeedResult)> = task
        .needs
        .iter()
        .map(|(id, need)| (id.clone(), need_result(need)))
        .collect();
    let need_ids: Vec<String> = needs.iter().map(|(id, _)| id.clone()).collect();
    let file = non_empty(text("workflow")).unwrap_or_else(|| "workflow_payload".into());
    let dialect = server_dialect(&text, settings.dialect);
    let workflow = match load_payload(&task, &file, &need_ids, dialect) {
        Ok(w) => w,
        Err(e) => return fail_before_start(&sink, fallback_key, &masker, &e, started),
    };
    let Some(job) = workflow.jobs.first() else {
        let e = TaskError::JobCount {
            count: 0,
            ids: String::new(),
        };
        return fail_before_start(&sink, fallback_key, &masker, &e, started);
    };
    let key = JobKey {
        id: job.id.value.clone(),
        name: job.effective_name().to_string(),
    };
    let runs_on: Vec<String> = job
        .runs_on
        .as_ref()
        .map(|r| r.labels.iter().map(|l| l.value.clone()).collect())
        .unwrap_or_default();
    let folders = match TaskFolders::create(
        &settings.workdir_parent,
        &task.id.to_string(),
        &text("repository"),
    ) {
        Ok(f) => f,
        Err(e) => return fail_before_start(&sink, key, &masker, &TaskError::Folder(e), started),
    };
    let say = |line: String| {
        sink.send(Event::Log {
            job: key.clone(),
            step: None,
            kind: LogKind::Runner,
            line: masker.mask(&line).into_owned(),
        });
    };
    for line in setup_lines(&task, settings, &context, &key) {
        say(line);
    }
    let placement =
        match Placement::for_runs_on(&runs_on, &settings.labels, settings.kubernetes_configured) {
            Ok((placement, line)) => {
                say(line);
                placement
            }
            Err(e) => {
                let _ = folders.remove();
                return fail_before_start(&sink, key, &masker, &TaskError::Placement(e), started);
            }
        };
    let mut env = settings.envs.clone();
    for (k, v) in gitea_env(settings, &context) {
        hr_engine::eval::upsert(&mut env, k, v);
    }
    // The cache (v1: a Gitea job's results URL is the instance's), scoped to the
    // repository; its token is masked like a secret.
    let text = |k: &str| context.get(k).map(display).unwrap_or_default();
    let (cache_access, _) = hr_engine::cache_mode::job_access(
        &workflow,
        job,
        &text("event_name"),
        hr_engine::cache_mode::CacheAccess::UNLIMITED,
    );
    let (cache_env, cache_token) = settings.cache.job_env(
        &text("repository"),
        &text("run_id"),
        &task.id.to_string(),
        cache_access.token_mode(),
    );
    for (k, v) in cache_env {
        hr_engine::eval::upsert(&mut env, k, v);
    }
    let mut github = context.clone();
    // The instance as this runner reaches it, not the ROOT_URL in the task's context (a
    // Gitea behind a proxy may name an address the runner cannot reach): act_runner hands
    // its client address to act as `GitHubInstance` (internal/app/run/runner.go).
    let instance = settings.instance.trim_end_matches('/');
    github.insert("server_url", Value::from(instance));
    github.insert("api_url", Value::from(format!("{instance}/api/v1")));
    // `github.workflow` is the workflow's `name:`, the file only when it has none (Gitea's
    // context names the file).
    if let Some(name) = &workflow.name {
        github.insert("workflow", Value::from(name.value.as_str()));
    }
    if github.get("graphql_url").is_none() {
        // Gitea has no GraphQL API: GITHUB_GRAPHQL_URL is empty, as act_runner sets it.
        github.insert("graphql_url", Value::from(""));
    }
    let pods = PodLauncher::for_task(
        placement,
        &settings.pods,
        settings.kubernetes_configured,
        task.id.to_string(),
    );
    let assignment = Assignment {
        workflow,
        needs,
        github,
        secrets: pairs(&task.secrets),
        vars: pairs(&task.vars),
        env,
        masks: context_secrets(&context)
            .into_iter()
            .chain(cache_token)
            .collect(),
        workspace: folders.workspace.clone(),
        temp_root: folders.scratch.path().to_path_buf(),
        runner_name: settings.runner_name.clone(),
        action_cache: settings.action_cache.clone(),
        default_actions_url: default_actions_url(&text, settings.github_mirror.as_deref()),
        actions_offline: false,
        builds: settings.builds.clone(),
        time_limit: Some(settings.timeout).filter(|t| !t.is_zero()),
        stop: StopPolicy::default(),
        pods,
        cluster_remedy: DAEMON_CLUSTER_REMEDY.to_string(),
        open_ghes_gate: true,
    };
    run_and_clean_up(assignment, folders, &sink, cancel, hard_cancel, &say).await
}

/// `google.protobuf.Struct` → the engine's object (through its JSON form, which is what
/// a Struct is).
pub fn context_object(context: &Struct) -> Object {
    match serde_json::to_value(context) {
        Ok(json) => match Value::from_json(&json) {
            Value::Object(o) => (*o).clone(),
            _ => Object::new(),
        },
        Err(_) => Object::new(),
    }
}

/// Gitea's `TaskNeed`: `RESULT_*` → the job result (`unspecified` counts as failure, so a
/// job with a plain `needs:` does not run after it).
pub fn need_result(need: &TaskNeed) -> NeedResult {
    let result = match TaskResult::try_from(need.result) {
        Ok(TaskResult::Success) => Outcome::Success,
        Ok(TaskResult::Cancelled) => Outcome::Cancelled,
        Ok(TaskResult::Skipped) => Outcome::Skipped,
        Ok(TaskResult::Failure | TaskResult::Unspecified) | Err(_) => Outcome::Failure,
    };
    NeedResult {
        result,
        outputs: pairs(&need.outputs),
    }
}

fn load_payload(
    task: &Task,
    file: &str,
    needs: &[String],
    dialect: Dialect,
) -> Result<workflows::model::Workflow, TaskError> {
    let bytes = task
        .workflow_payload
        .as_deref()
        .filter(|b| !b.is_empty())
        .ok_or(TaskError::PayloadMissing)?;
    let text = std::str::from_utf8(bytes).map_err(TaskError::PayloadText)?;
    let workflow = workflows::model::load_with_outside_jobs(text, file, needs, dialect)
        .map_err(TaskError::Workflow)?;
    if workflow.jobs.len() != 1 {
        return Err(TaskError::JobCount {
            count: workflow.jobs.len(),
            ids: workflow
                .jobs
                .iter()
                .map(|j| j.id.value.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(workflow)
}

/// "Set up job" lines, as act_runner writes them before the first step; never a secret.
fn setup_lines(
    task: &Task,
    settings: &TaskSettings,
    context: &Object,
    key: &JobKey,
) -> Vec<String> {
    let text = |k: &str| context.get(k).map(display).unwrap_or_default();
    let labels: Vec<String> = settings.labels.iter().map(Label::to_spec).collect();
    vec![
        format!(
            "Runner: {} (hybrid-runner {VERSION}), labels: {}",
            settings.runner_name,
            labels.join(", ")
        ),
        format!(
            "Task {}: job {} of workflow {}, repository {}, triggered by event {}",
            task.id,
            key.id,
            text("workflow"),
            text("repository"),
            text("event_name")
        ),
        format!("Ref {} at commit {}", text("ref"), text("sha")),
    ]
}

/// Whose rules the task's workflow is read by: the server's (the daemon asked its version,
/// see `daemon::server_kind`), Forgejo's when the task's context carries Forgejo's own
/// keys; whatever folder the file came from, as the server has already taken it.
fn server_dialect(text: &dyn Fn(&str) -> String, server: Dialect) -> Dialect {
    if non_empty(text("forgejo_default_actions_url")).is_some() {
        Dialect::Forgejo
    } else {
        server
    }
}

/// Where `uses: owner/repo@ref` is fetched from: the context's
/// `forgejo_default_actions_url` (Forgejo names it so, and may send both), else
/// `gitea_default_actions_url`, else GitHub; GitHub is replaced by `runner.github_mirror`
/// when one is set, as act_runner's `getDefaultActionsURL` does.
fn default_actions_url(text: &dyn Fn(&str) -> String, mirror: Option<&str>) -> String {
    let url = non_empty(text("forgejo_default_actions_url"))
        .or_else(|| non_empty(text("gitea_default_actions_url")))
        .unwrap_or_else(|| "https://github.com".into());
    match mirror {
        Some(mirror) if url.trim_end_matches('/') == "https://github.com" => mirror.to_string(),
        _ => url,
    }
}

/// The variables act_runner gives every Gitea job (docs/internals/gitea-protocol.md), under
/// the job's own `env`: `GITEA_ACTIONS`, the runner's version and capabilities, the run id, the
/// Actions runtime (artifacts, cache, summaries) URL and token, OIDC when the server
/// offers it, `RUNNER_NAME`, `RUNNER_ENVIRONMENT`, `ACT`.
pub fn gitea_env(settings: &TaskSettings, context: &Object) -> Vec<(String, String)> {
    let text = |k: &str| context.get(k).map(display).unwrap_or_default();
    let instance = settings.instance.trim_end_matches('/');
    let mut env = vec![
        ("GITEA_ACTIONS".to_string(), "true".to_string()),
        ("GITEA_ACTIONS_RUNNER_VERSION".into(), VERSION.to_string()),
        // forgejo-runner sets both pairs whatever the server.
        ("FORGEJO_ACTIONS".into(), "true".to_string()),
        ("FORGEJO_ACTIONS_RUNNER_VERSION".into(), VERSION.to_string()),
    ];
    if let Some(caps) = settings.capabilities.as_ref().filter(|c| !c.is_empty()) {
        env.push(("GITEA_ACTIONS_CAPABILITIES".into(), caps.clone()));
    }
    env.push(("GITEA_RUN_ID".into(), text("run_id")));
    env.push((
        "ACTIONS_RUNTIME_URL".into(),
        format!("{instance}/api/actions_pipeline/"),
    ));
    env.push(("ACTIONS_RESULTS_URL".into(), instance.to_string()));
    let runtime_token = ["gitea_runtime_token", "forgejo_runtime_token", "token"]
        .iter()
        .map(|k| text(k))
        .find(|t| !t.is_empty())
        .unwrap_or_default();
    env.push(("ACTIONS_RUNTIME_TOKEN".into(), runtime_token));
    for (url, token) in [
        (
            "actions_id_token_request_url",
            "actions_id_token_request_token",
        ),
        (
            "forgejo_actions_id_token_request_url",
            "forgejo_actions_id_token_request_token",
        ),
    ] {
        if !text(url).is_empty() {
            env.push(("ACTIONS_ID_TOKEN_REQUEST_URL".into(), text(url)));
            env.push(("ACTIONS_ID_TOKEN_REQUEST_TOKEN".into(), text(token)));
            break;
        }
    }
    env.push(("RUNNER_NAME".into(), settings.runner_name.clone()));
    env.push(("RUNNER_ENVIRONMENT".into(), "self-hosted".into()));
    env.push(("ACT".into(), "true".into()));
    env
}

/// The context's credentials, masked in every line: the task token, the runtime tokens,
/// the OIDC request token.
fn context_secrets(context: &Object) -> Vec<String> {
    [
        "token",
        "gitea_runtime_token",
        "forgejo_runtime_token",
        "actions_id_token_request_token",
        "forgejo_actions_id_token_request_token",
    ]
    .iter()
    .filter_map(|k| context.get(k).map(display))
    .filter(|v| !v.is_empty())
    .collect()
}

/// Masks what the lines written before the job (setup, errors) could hold.
fn task_masker(task: &Task, context: &Object) -> Masker {
    let credentials = context_secrets(context);
    masker_for(
        task.secrets
            .values()
            .map(String::as_str)
            .chain(credentials.iter().map(String::as_str)),
    )
}

fn pairs(map: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> TaskSettings {
        TaskSettings {
            instance: "https://gitea.example/".into(),
            runner_name: "r1".into(),
            labels: Label::parse_list("linux:host").unwrap(),
            capabilities: None,
            workdir_parent: PathBuf::from("/w"),
            action_cache: PathBuf::from("/c"),
            envs: Vec::new(),
            builds: Default::default(),
            pods: PodSettings::default(),
            github_mirror: None,
            kubernetes_configured: false,
            cache: Default::default(),
            dialect: workflows::model::Dialect::Gitea,
            timeout: Duration::from_secs(3 * 3600),
        }
    }

    fn object(json: serde_json::Value) -> Object {
        let s: Struct = serde_json::from_value(json).unwrap();
        context_object(&s)
    }

    #[test]
    fn context_struct_becomes_an_object_with_nested_values() {
        let ctx = object(serde_json::json!({
            "run_id": "7",
            "ref_protected": false,
            "event": {"ref": "refs/heads/main", "commits": [{"id": "a"}], "number": 3},
        }));
        assert_eq!(ctx.get("run_id").and_then(Value::as_str), Some("7"));
        assert!(matches!(ctx.get("ref_protected"), Some(Value::Bool(false))));
        let event = ctx.get("event").unwrap();
        assert_eq!(
            event.get("ref").and_then(Value::as_str),
            Some("refs/heads/main")
        );
        assert!(matches!(event.get("number"), Some(Value::Number(n)) if *n == 3.0));
        match event.get("commits") {
            Some(Value::Array(items)) => {
                assert_eq!(items[0].get("id").and_then(Value::as_str), Some("a"))
            }
            other => panic!("commits: {other:?}"),
        }
    }

    #[test]
    fn need_results_map_from_the_result_enum() {
        let need = |result: TaskResult| TaskNeed {
            outputs: [("k".to_string(), "v".to_string())].into(),
            result: result as i32,
        };
        let cases = [
            (TaskResult::Success, Outcome::Success),
            (TaskResult::Failure, Outcome::Failure),
            (TaskResult::Cancelled, Outcome::Cancelled),
            (TaskResult::Skipped, Outcome::Skipped),
            (TaskResult::Unspecified, Outcome::Failure),
        ];
        for (given, want) in cases {
            let got = need_result(&need(given));
            assert_eq!(got.result, want, "{given:?}");
            assert_eq!(got.outputs, [("k".to_string(), "v".to_string())]);
        }
        let unknown = TaskNeed {
            outputs: Default::default(),
            result: 99,
        };
        assert_eq!(need_result(&unknown).result, Outcome::Failure);
    }

    #[test]
    fn gitea_env_follows_act_runner() {
        let mut s = settings();
        let ctx = object(serde_json::json!({
            "run_id": "12", "token": "tok", "gitea_runtime_token": "jwt",
        }));
        let env = gitea_env(&s, &ctx);
        let get = |env: &[(String, String)], k: &str| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        };
        assert_eq!(get(&env, "GITEA_ACTIONS").as_deref(), Some("true"));
        assert_eq!(get(&env, "GITEA_RUN_ID").as_deref(), Some("12"));
        assert_eq!(
            get(&env, "ACTIONS_RUNTIME_URL").as_deref(),
            Some("https://gitea.example/api/actions_pipeline/")
        );
        assert_eq!(
            get(&env, "ACTIONS_RESULTS_URL").as_deref(),
            Some("https://gitea.example")
        );
        assert_eq!(get(&env, "ACTIONS_RUNTIME_TOKEN").as_deref(), Some("jwt"));
        assert_eq!(get(&env, "RUNNER_NAME").as_deref(), Some("r1"));
        assert_eq!(get(&env, "ACT").as_deref(), Some("true"));
        assert_eq!(get(&env, "GITEA_ACTIONS_CAPABILITIES"), None);
        assert_eq!(get(&env, "ACTIONS_ID_TOKEN_REQUEST_URL"), None);
        s.capabilities = Some("cancelling".into());
        let ctx = object(serde_json::json!({
            "token": "tok",
            "actions_id_token_request_url": "https://gitea.example/oidc",
            "actions_id_token_request_token": "oidc-secret",
        }));
        let env = gitea_env(&s, &ctx);
        assert_eq!(get(&env, "ACTIONS_RUNTIME_TOKEN").as_deref(), Some("tok"));
        assert_eq!(
            get(&env, "GITEA_ACTIONS_CAPABILITIES").as_deref(),
            Some("cancelling")
        );
        assert_eq!(
            get(&env, "ACTIONS_ID_TOKEN_REQUEST_TOKEN").as_deref(),
            Some("oidc-secret")
        );
        assert_eq!(
            context_secrets(&ctx),
            ["tok".to_string(), "oidc-secret".to_string()]
        );
    }
}
