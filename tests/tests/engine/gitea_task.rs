//! One Gitea task through the job engine, with a hand-built `runner.v1.Task` (no server):
//! the server's context and act_runner's environment reach the steps, `needs` results and
//! outputs drive `if:` and expressions, secrets and the task's tokens are masked, job
//! outputs come back, a cancel stops a step but `always()` still runs, `runner.timeout`
//! fails the job, a bad payload fails with readable lines, and `actions/checkout` fetches
//! the event's commit from a `file://` server without leaving the token anywhere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::git::git;
use hr_engine::events::{Event, EventSink, LogKind, Outcome};
use hr_engine::job::JobOutcome;
use hr_engine::labels::Label;
use hr_gitea::proto::runner::v1::{Result as TaskResult, Task, TaskNeed};
use hr_gitea::proto::well_known::Struct;
use hr_gitea::task::{TaskSettings, run_task};
use tokio_util::sync::CancellationToken;

mod services;

const TOKEN: &str = "task-token-5f1e2d3c4b";
const RUNTIME_TOKEN: &str = "runtime-jwt-9a8b7c6d5e";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn workdir_parent(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    fn settings(&self) -> TaskSettings {
        let builds = hr_engine::image_steps::BuildSettings {
            docker_shim: false,
            ..Default::default()
        };
        TaskSettings {
            instance: "https://gitea.example/".into(),
            runner_name: "runner-under-test".into(),
            labels: Label::parse_list("linux:host,ubuntu-latest:docker://node:20,k8s:kubernetes")
                .unwrap(),
            capabilities: Some("cancelling".into()),
            workdir_parent: self.workdir_parent(),
            action_cache: self.dir.path().join("actions"),
            envs: vec![("FROM_RUNNER_ENVS".into(), "configured".into())],
            builds,
            timeout: Duration::from_secs(3 * 3600),
            pods: Default::default(),
            github_mirror: None,
            kubernetes_configured: false,
            cache: Default::default(),
            dialect: workflows::model::Dialect::Gitea,
        }
    }
}

fn context(server_url: &str) -> serde_json::Value {
    serde_json::json!({
        "actor": "ada",
        "api_url": format!("{server_url}api/v1"),
        "event": {"ref": "refs/heads/main", "head_commit": {"message": "fix the build"}},
        "event_name": "push",
        "graphql_url": "",
        "job": "build",
        "ref": "refs/heads/main",
        "ref_name": "main",
        "ref_type": "branch",
        "repository": "org/app",
        "repository_owner": "org",
        "run_attempt": "1",
        "run_id": "77",
        "run_number": "5",
        "server_url": server_url,
        "sha": SHA,
        "workflow": "ci.yml",
        "workspace": "",
        "gitea_default_actions_url": "https://github.com",
        "token": TOKEN,
        "gitea_runtime_token": RUNTIME_TOKEN,
    })
}

fn task(id: i64, payload: &str, context: serde_json::Value) -> Task {
    let context: Struct = serde_json::from_value(context).unwrap();
    Task {
        id,
        workflow_payload: Some(payload.as_bytes().to_vec()),
        context: Some(context),
        secrets: [
            ("GITHUB_TOKEN".to_string(), TOKEN.to_string()),
            ("GITEA_TOKEN".to_string(), TOKEN.to_string()),
        ]
        .into(),
        ..Default::default()
    }
}

fn need(result: TaskResult, outputs: &[(&str, &str)]) -> TaskNeed {
    TaskNeed {
        outputs: outputs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        result: result as i32,
    }
}

async fn run_with(
    task: Task,
    settings: &TaskSettings,
    cancel: CancellationToken,
) -> (JobOutcome, Vec<Event>) {
    let (sink, mut rx) = EventSink::channel();
    let run = run_task(task, settings, sink, cancel, CancellationToken::new()).await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (run, events)
}

async fn execute(task: Task, settings: &TaskSettings) -> (JobOutcome, Vec<Event>) {
    run_with(task, settings, CancellationToken::new()).await
}

/// Every log line (runner and step output), in order.
fn lines(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Log { line, .. } => Some(line.clone()),
            Event::Annotation { annotation, .. } => Some(annotation.message.clone()),
            _ => None,
        })
        .collect()
}

fn has_line(events: &[Event], wanted: &str) -> bool {
    lines(events).iter().any(|l| l == wanted)
}

fn all_text(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn steps_see_the_servers_context_and_act_runners_environment() {
    let f = Fixture::new();
    let payload = r#"name: CI
"on": push
jobs:
  build:
    name: build
    runs-on: linux
    steps:
      - run: |
          echo "server=$GITHUB_SERVER_URL api=$GITHUB_API_URL graphql=[$GITHUB_GRAPHQL_URL]"
          echo "run=$GITHUB_RUN_ID number=$GITHUB_RUN_NUMBER sha=$GITHUB_SHA ref=$GITHUB_REF_NAME repo=$GITHUB_REPOSITORY actor=$GITHUB_ACTOR job=$GITHUB_JOB"
          echo "gitea=$GITEA_ACTIONS caps=$GITEA_ACTIONS_CAPABILITIES run_id=$GITEA_RUN_ID act=$ACT env=$RUNNER_ENVIRONMENT name=$RUNNER_NAME"
          echo "runtime=$ACTIONS_RUNTIME_URL results=$ACTIONS_RESULTS_URL configured=$FROM_RUNNER_ENVS"
          echo "pwd=$(pwd) workspace=$GITHUB_WORKSPACE"
          echo "message=${{ github.event.head_commit.message }} event=${{ github.event_name }} runner=${{ runner.name }}"
          echo "var=${{ vars.DEPLOY_ENV }} workspace_ctx=${{ github.workspace }}"
          echo "workflow=$GITHUB_WORKFLOW ctx=${{ github.workflow }} server_ctx=${{ github.server_url }}"
          echo "forgejo=$FORGEJO_ACTIONS same_version=$([ -n "$GITEA_ACTIONS_RUNNER_VERSION" ] && [ "$FORGEJO_ACTIONS_RUNNER_VERSION" = "$GITEA_ACTIONS_RUNNER_VERSION" ] && echo yes)"
"#;
    // The context names Gitea's ROOT_URL; the runner reaches the instance at another
    // address (settings.instance, https://gitea.example/), which steps must get.
    let mut t = task(41, payload, context("https://gitea.root-url.invalid/"));
    t.vars.insert("DEPLOY_ENV".into(), "staging".into());
    let (run, events) = execute(t, &f.settings()).await;
    assert_eq!(run.result, Outcome::Success, "{:#?}", lines(&events));
    let workspace = f.workdir_parent().join("41").join("app");
    for wanted in [
        "server=https://gitea.example api=https://gitea.example/api/v1 graphql=[]".to_string(),
        format!("run=77 number=5 sha={SHA} ref=main repo=org/app actor=ada job=build"),
        "gitea=true caps=cancelling run_id=77 act=true env=self-hosted name=runner-under-test"
            .to_string(),
        "runtime=https://gitea.example/api/actions_pipeline/ results=https://gitea.example configured=configured".to_string(),
        format!(
            "pwd={0} workspace={0}",
            workspace.display()
        ),
        "message=fix the build event=push runner=runner-under-test".to_string(),
        format!("var=staging workspace_ctx={}", workspace.display()),
        // The workflow's `name:`, not the file Gitea's context names.
        "workflow=CI ctx=CI server_ctx=https://gitea.example".to_string(),
        "forgejo=true same_version=yes".to_string(),
    ] {
        assert!(has_line(&events, &wanted), "missing {wanted:?} in {:#?}", lines(&events));
    }
    // "Set up job" lines before the first step: runner, task, placement.
    let first_step = events
        .iter()
        .position(|e| matches!(e, Event::StepStarted { .. }))
        .unwrap();
    let setup: Vec<String> = lines(&events[..first_step]);
    assert!(
        setup
            .iter()
            .any(|l| l.starts_with("Runner: runner-under-test")),
        "{setup:#?}"
    );
    assert!(
        setup.iter().any(|l| l.contains(
            "Task 41: job build of workflow ci.yml, repository org/app, triggered by event push"
        )),
        "{setup:#?}"
    );
    assert!(
        setup
            .iter()
            .any(|l| l == "Label linux: the steps run on this host"),
        "{setup:#?}"
    );
    // The task folder is gone once the task ended.
    assert!(!f.workdir_parent().join("41").exists());
}

#[tokio::test]
async fn needs_results_and_outputs_reach_expressions_and_job_if() {
    let f = Fixture::new();
    // Gitea erases `needs:` from the payload; the task's needs stand in for it.
    let payload = r#"name: CI
"on": push
jobs:
  deploy:
    runs-on: linux
    steps:
      - run: echo "version=${{ needs.build.outputs.version }} result=${{ needs.build.result }} lint=${{ needs.lint.result }}"
      - if: needs.build.outputs.version == '1.2.3'
        run: echo matched-version
      - if: needs.build.outputs.version == 'other'
        run: echo never-printed
"#;
    let mut t = task(42, payload, context("https://gitea.example/"));
    t.needs = [
        (
            "build".to_string(),
            need(TaskResult::Success, &[("version", "1.2.3")]),
        ),
        ("lint".to_string(), need(TaskResult::Skipped, &[])),
    ]
    .into();
    let (run, events) = execute(t, &f.settings()).await;
    // A skipped need skips a job without `if:`, as on GitHub.
    assert_eq!(run.result, Outcome::Skipped, "{:#?}", lines(&events));
    assert!(events.iter().any(|e| matches!(e, Event::JobSkipped { .. })));

    let payload_if = payload.replace(
        "    runs-on: linux\n",
        "    if: ${{ !failure() && !cancelled() }}\n    runs-on: linux\n",
    );
    let mut t = task(43, &payload_if, context("https://gitea.example/"));
    t.needs = [
        (
            "build".to_string(),
            need(TaskResult::Success, &[("version", "1.2.3")]),
        ),
        ("lint".to_string(), need(TaskResult::Skipped, &[])),
    ]
    .into();
    let (run, events) = execute(t, &f.settings()).await;
    assert_eq!(run.result, Outcome::Success, "{:#?}", lines(&events));
    assert!(
        has_line(&events, "version=1.2.3 result=success lint=skipped"),
        "{:#?}",
        lines(&events)
    );
    assert!(has_line(&events, "matched-version"));
    assert!(!has_line(&events, "never-printed"));

    // A failed need: `failure()` holds; the payload may keep its own `needs:` too.
    let payload_failure = r#"name: CI
"on": push
jobs:
  report:
    needs: build
    if: failure()
    runs-on: linux
    steps:
      - run: echo "build was ${{ needs.build.result }}"
"#;
    let mut t = task(44, payload_failure, context("https://gitea.example/"));
    t.needs = [("build".to_string(), need(TaskResult::Failure, &[]))].into();
    let (run, events) = execute(t, &f.settings()).await;
    assert_eq!(run.result, Outcome::Success, "{:#?}", lines(&events));
    assert!(has_line(&events, "build was failure"));
}

#[tokio::test]
async fn secrets_and_task_tokens_are_masked_and_job_outputs_returned() {
    let f = Fixture::new();
    let payload = r#"name: CI
"on": push
jobs:
  build:
    runs-on: linux
    outputs:
      artifact: ${{ steps.make.outputs.artifact }}
      leaked: ${{ steps.make.outputs.leaked }}
    steps:
      - id: make
        run: |
          echo "secret=${{ secrets.DEPLOY_KEY }}"
          echo "token=${{ github.token }} secret_token=${{ secrets.GITHUB_TOKEN }}"
          echo "runtime=$ACTIONS_RUNTIME_TOKEN"
          echo "artifact=app-1.2.3.tar.gz" >> "$GITHUB_OUTPUT"
          echo "leaked=${{ secrets.DEPLOY_KEY }}" >> "$GITHUB_OUTPUT"
"#;
    let mut t = task(45, payload, context("https://gitea.example/"));
    t.secrets
        .insert("DEPLOY_KEY".into(), "hunter2-deploy-key".into());
    let (run, events) = execute(t, &f.settings()).await;
    assert_eq!(run.result, Outcome::Success, "{:#?}", lines(&events));
    assert_eq!(
        run.outputs,
        [("artifact".to_string(), "app-1.2.3.tar.gz".to_string())]
    );
    assert!(has_line(&events, "secret=***"), "{:#?}", lines(&events));
    assert!(has_line(&events, "token=*** secret_token=***"));
    assert!(has_line(&events, "runtime=***"));
    let text = all_text(&events);
    for secret in ["hunter2-deploy-key", TOKEN, RUNTIME_TOKEN] {
        assert!(!text.contains(secret), "{secret} leaked into the events");
    }
}

#[tokio::test]
async fn a_cancel_stops_the_step_and_always_steps_still_run() {
    let f = Fixture::new();
    let payload = r#"name: CI
"on": push
jobs:
  build:
    runs-on: linux
    steps:
      - run: echo started; sleep 30; echo not-reached
      - run: echo not-run-after-cancel
      - if: always()
        run: echo cleanup-ran
"#;
    let cancel = CancellationToken::new();
    let canceller = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        canceller.cancel();
    });
    let begun = Instant::now();
    let (run, events) = run_with(
        task(46, payload, context("https://gitea.example/")),
        &f.settings(),
        cancel,
    )
    .await;
    assert_eq!(run.result, Outcome::Cancelled, "{:#?}", lines(&events));
    assert!(begun.elapsed() < Duration::from_secs(20));
    assert!(has_line(&events, "started"));
    assert!(!has_line(&events, "not-reached"));
    assert!(!has_line(&events, "not-run-after-cancel"));
    assert!(has_line(&events, "cleanup-ran"), "{:#?}", lines(&events));
    assert!(!f.workdir_parent().join("46").exists());
}

#[tokio::test]
async fn runner_timeout_fails_the_job_with_a_line() {
    let f = Fixture::new();
    let payload = r#"name: CI
"on": push
jobs:
  build:
    runs-on: linux
    steps:
      - run: sleep 30
      - if: always()
        run: echo after-timeout
"#;
    let mut settings = f.settings();
    settings.timeout = Duration::from_secs(1);
    let begun = Instant::now();
    let (run, events) = execute(
        task(47, payload, context("https://gitea.example/")),
        &settings,
    )
    .await;
    assert_eq!(run.result, Outcome::Failure, "{:#?}", lines(&events));
    assert!(begun.elapsed() < Duration::from_secs(20));
    assert!(
        lines(&events)
            .iter()
            .any(|l| l.contains("maximum execution time of 1s (runner.timeout)")),
        "{:#?}",
        lines(&events)
    );
    assert!(has_line(&events, "after-timeout"));
}

#[tokio::test]
async fn a_bad_payload_fails_with_readable_runner_lines() {
    let f = Fixture::new();
    let payload = "name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: linux\n    stesp:\n      - run: echo hi\n";
    let (run, events) = execute(
        task(48, payload, context("https://gitea.example/")),
        &f.settings(),
    )
    .await;
    assert_eq!(run.result, Outcome::Failure);
    let all = lines(&events);
    assert!(
        all.iter()
            .any(|l| l.starts_with("ci.yml:6:5: ") && l.contains("stesp")),
        "{all:#?}"
    );
    assert!(events.iter().all(|e| match e {
        Event::Log { step, kind, .. } => step.is_none() && *kind == LogKind::Runner,
        _ => true,
    }));
    assert!(matches!(
        events.last(),
        Some(Event::JobFinished {
            result: Outcome::Failure,
            ..
        })
    ));

    let two_jobs = "name: CI\n\"on\": push\njobs:\n  a:\n    runs-on: linux\n    steps: [{run: echo a}]\n  b:\n    runs-on: linux\n    steps: [{run: echo b}]\n";
    let (run, events) = execute(
        task(49, two_jobs, context("https://gitea.example/")),
        &f.settings(),
    )
    .await;
    assert_eq!(run.result, Outcome::Failure);
    assert!(
        lines(&events)
            .iter()
            .any(|l| l.contains("holds 2 jobs (a, b)")),
        "{:#?}",
        lines(&events)
    );

    let mut empty = task(50, "", context("https://gitea.example/"));
    empty.workflow_payload = None;
    let (run, events) = execute(empty, &f.settings()).await;
    assert_eq!(run.result, Outcome::Failure);
    assert!(
        lines(&events)
            .iter()
            .any(|l| l.contains("no workflow_payload"))
    );
}

/// A `docker` label's job never runs its steps on the host: without Kubernetes it fails
/// before the first step, naming the label and the two ways out; with Kubernetes
/// configured it goes to a pod (here the cluster is unreachable, so it fails there, still
/// without a step on the host).
#[tokio::test]
async fn a_docker_label_never_runs_its_steps_on_the_host() {
    let f = Fixture::new();
    let payload = "name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo on-host\n";
    let (run, events) = execute(
        task(51, payload, context("https://gitea.example/")),
        &f.settings(),
    )
    .await;
    assert_eq!(run.result, Outcome::Failure, "{:#?}", lines(&events));
    assert!(!has_line(&events, "on-host"), "{:#?}", lines(&events));
    assert!(
        lines(&events).iter().any(|l| l.contains(
            "label ubuntu-latest asks for the Docker image node:20, which this runner cannot start"
        ) && l.contains("ubuntu-latest:host")
            && l.contains("kubernetes")),
        "{:#?}",
        lines(&events)
    );
    let mut settings = f.settings();
    settings.kubernetes_configured = true;
    settings.builds.kubeconfig = Some(f.dir.path().join("no-such-kubeconfig"));
    let (run, events) = execute(
        task(59, payload, context("https://gitea.example/")),
        &settings,
    )
    .await;
    assert_eq!(run.result, Outcome::Failure, "{:#?}", lines(&events));
    assert!(!has_line(&events, "on-host"), "{:#?}", lines(&events));
    assert!(
        lines(&events).iter().any(|l| l
            .contains("ubuntu-latest asks for the Docker image node:20")
            && l.contains("pod")),
        "{:#?}",
        lines(&events)
    );
}

/// A `kubernetes` label runs the steps in a pod (tests/tests/pod_steps/); without a
/// cluster the task fails before its first step, saying why, and nothing runs on the host.
#[tokio::test]
async fn a_kubernetes_label_without_a_cluster_fails_before_the_steps() {
    let f = Fixture::new();
    let mut settings = f.settings();
    settings.builds.kubeconfig = Some(f.dir.path().join("no-such-kubeconfig"));
    let payload = "name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: k8s\n    steps:\n      - run: echo on-host\n";
    let (run, events) = execute(
        task(52, payload, context("https://gitea.example/")),
        &settings,
    )
    .await;
    assert_eq!(run.result, Outcome::Failure, "{:#?}", lines(&events));
    assert!(
        lines(&events)
            .iter()
            .any(|l| l.contains("cannot reach the cluster for the job pod")),
        "{:#?}",
        lines(&events)
    );
    assert!(!has_line(&events, "on-host"));
    assert!(!f.workdir_parent().join("52").exists());
}

/// A bare repository at `<server>/org/app.git` whose `main` has two commits; returns the
/// first one's sha (the event's commit is not the branch tip).
fn serve_repository(server: &Path) -> String {
    let src = server.join("src");
    std::fs::create_dir_all(&src).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    std::fs::write(src.join("README"), "first\n").unwrap();
    git(&src, &["add", "README"]);
    git(&src, &["commit", "-q", "-m", "first"]);
    let first = git(&src, &["rev-parse", "HEAD"]);
    std::fs::write(src.join("README"), "second\n").unwrap();
    git(&src, &["commit", "-q", "-am", "second"]);
    std::fs::create_dir_all(server.join("org")).unwrap();
    git(server, &["clone", "-q", "--bare", "src", "org/app.git"]);
    first
}

#[tokio::test]
async fn checkout_fetches_the_events_commit_from_the_server_without_keeping_the_token() {
    let f = Fixture::new();
    let server = f.dir.path().join("server");
    let first = serve_repository(&server);
    let out = f.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let payload = format!(
        r#"name: CI
"on": push
jobs:
  build:
    runs-on: linux
    steps:
      - uses: actions/checkout@v4
        id: co
      - run: |
          echo "readme=$(cat README)"
          echo "head=$(git rev-parse HEAD) branch=$(git rev-parse --abbrev-ref HEAD) commits=$(git rev-list --count HEAD)"
          echo "output=${{{{ steps.co.outputs.commit }}}}"
          cp .git/config {out}/config
      - uses: actions/checkout@v4
        with:
          path: sub/full
          ref: main
          fetch-depth: 0
      - run: echo "full=$(git -C sub/full rev-list --count HEAD)"
"#,
        out = out.display()
    );
    // The checkout clones from the instance as the runner reaches it (its settings), not
    // from the ROOT_URL the context names.
    let mut settings = f.settings();
    settings.instance = format!("file://{}/", server.display());
    let mut ctx = context("https://gitea.root-url.invalid/");
    ctx["sha"] = serde_json::Value::String(first.clone());
    let (run, events) = execute(task(53, &payload, ctx), &settings).await;
    assert_eq!(run.result, Outcome::Success, "{:#?}", lines(&events));
    assert!(has_line(&events, "readme=first"), "{:#?}", lines(&events));
    assert!(
        has_line(&events, &format!("head={first} branch=main commits=1")),
        "{:#?}",
        lines(&events)
    );
    assert!(has_line(&events, &format!("output={first}")));
    assert!(has_line(&events, "full=2"), "{:#?}", lines(&events));
    // The fetch carried the header on its command line, shown masked.
    assert!(
        lines(&events)
            .iter()
            .any(|l| l.starts_with("[command]git -c http.extraheader=*** -c protocol.version=2 ")),
        "{:#?}",
        lines(&events)
    );
    let config = std::fs::read_to_string(out.join("config")).unwrap();
    assert!(config.contains("app.git"), "{config}");
    assert!(
        !config.contains(TOKEN) && !config.to_lowercase().contains("extraheader"),
        "{config}"
    );
    let text = all_text(&events);
    assert!(!text.contains(TOKEN));
    let header = hr_engine::checkout::auth_header(TOKEN);
    let encoded = header.rsplit(' ').next().unwrap();
    assert!(!text.contains(encoded), "the encoded token leaked");
}

/// Two tasks side by side in one process (the daemon's capacity): the end of one job
/// stops only its own leftover processes, never the other job's running step.
#[tokio::test]
async fn concurrent_tasks_do_not_stop_each_others_steps() {
    let f = Fixture::new();
    let slow = "name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: linux\n    steps:\n      - run: sleep 2; echo slow-done\n";
    let quick = "name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: linux\n    steps:\n      - run: echo quick-done\n";
    let settings = f.settings();
    let ((slow_run, slow_events), (quick_run, _)) = tokio::join!(
        execute(task(54, slow, context("https://gitea.example/")), &settings),
        execute(
            task(55, quick, context("https://gitea.example/")),
            &settings
        ),
    );
    assert_eq!(quick_run.result, Outcome::Success);
    assert_eq!(
        slow_run.result,
        Outcome::Success,
        "{:#?}",
        lines(&slow_events)
    );
    assert!(has_line(&slow_events, "slow-done"));
}

/// Gitea fixes the matrix leg (single-value lists) and names the job after it; the leg's
/// values reach `matrix`, and the name is not suffixed twice.
#[tokio::test]
async fn a_fixed_matrix_leg_keeps_the_servers_name_and_values() {
    let f = Fixture::new();
    let payload = r#"name: CI
"on": push
jobs:
  test:
    name: test (linux, 18)
    runs-on: linux
    strategy:
      matrix:
        os: [linux]
        node: ["18"]
    steps:
      - run: echo "os=${{ matrix.os }} node=${{ matrix.node }} total=${{ strategy.job-total }}"
"#;
    let (run, events) = execute(
        task(56, payload, context("https://gitea.example/")),
        &f.settings(),
    )
    .await;
    assert_eq!(run.result, Outcome::Success, "{:#?}", lines(&events));
    assert!(
        has_line(&events, "os=linux node=18 total=1"),
        "{:#?}",
        lines(&events)
    );
    let names: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::JobStarted { job } => Some(job.name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["test (linux, 18)"]);
}

/// `uses: owner/repo@ref` is fetched from the context's `gitea_default_actions_url`.
#[tokio::test]
async fn remote_actions_come_from_the_default_actions_url() {
    let f = Fixture::new();
    let mirror = f.dir.path().join("mirror");
    let action = mirror.join("acme").join("greet");
    std::fs::create_dir_all(&action).unwrap();
    git(&action, &["init", "-q", "-b", "main"]);
    std::fs::write(
        action.join("action.yml"),
        "name: greet\ninputs:\n  who:\n    default: nobody\nruns:\n  using: composite\n  steps:\n    - run: echo \"hello ${{ inputs.who }} from the mirror\"\n      shell: bash\n",
    )
    .unwrap();
    git(&action, &["add", "action.yml"]);
    git(&action, &["commit", "-q", "-m", "greet"]);
    git(&action, &["tag", "v1"]);
    let payload = "name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: linux\n    steps:\n      - uses: acme/greet@v1\n        with:\n          who: gitea\n";
    let mut ctx = context("https://gitea.example/");
    ctx["gitea_default_actions_url"] =
        serde_json::Value::String(format!("file://{}", mirror.display()));
    let (run, events) = execute(task(57, payload, ctx.clone()), &f.settings()).await;
    assert_eq!(run.result, Outcome::Success, "{:#?}", lines(&events));
    assert!(
        has_line(&events, "hello gitea from the mirror"),
        "{:#?}",
        lines(&events)
    );
    // Forgejo's key wins over Gitea's when a server sends both.
    let mirror_url = ctx["gitea_default_actions_url"].clone();
    ctx["forgejo_default_actions_url"] = mirror_url.clone();
    ctx["gitea_default_actions_url"] = serde_json::Value::String("file:///nonexistent".into());
    let (run, events) = execute(task(58, payload, ctx.clone()), &f.settings()).await;
    assert_eq!(run.result, Outcome::Success, "{:#?}", lines(&events));
    assert!(has_line(&events, "hello gitea from the mirror"));
    // A server defaulting to GitHub: runner.github_mirror stands in for it.
    ctx.as_object_mut()
        .unwrap()
        .remove("forgejo_default_actions_url");
    ctx["gitea_default_actions_url"] = serde_json::Value::String("https://github.com".into());
    let mut settings = f.settings();
    settings.github_mirror = mirror_url.as_str().map(str::to_string);
    let (run, events) = execute(task(60, payload, ctx), &settings).await;
    assert_eq!(run.result, Outcome::Success, "{:#?}", lines(&events));
    assert!(has_line(&events, "hello gitea from the mirror"));
}

/// After a cancel, the second stop (`hard_cancel`) ends the `always()` steps too.
#[tokio::test]
async fn a_hard_cancel_stops_always_steps_too() {
    let f = Fixture::new();
    let payload = r#"name: CI
"on": push
jobs:
  build:
    runs-on: linux
    steps:
      - run: sleep 30
      - if: always()
        run: echo cleanup-started; sleep 30; echo cleanup-finished
"#;
    let (cancel, hard) = (CancellationToken::new(), CancellationToken::new());
    let (c, h) = (cancel.clone(), hard.clone());
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        c.cancel();
        tokio::time::sleep(Duration::from_millis(1200)).await;
        h.cancel();
    });
    let (sink, mut rx) = EventSink::channel();
    let begun = Instant::now();
    let run = run_task(
        task(58, payload, context("https://gitea.example/")),
        &f.settings(),
        sink,
        cancel,
        hard,
    )
    .await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    assert_eq!(run.result, Outcome::Cancelled, "{:#?}", lines(&events));
    assert!(begun.elapsed() < Duration::from_secs(20));
    assert!(
        has_line(&events, "cleanup-started"),
        "{:#?}",
        lines(&events)
    );
    assert!(!has_line(&events, "cleanup-finished"));
}

/// A task cancelled before its job started ends Cancelled without running a step.
#[tokio::test]
async fn a_task_cancelled_before_it_starts_ends_cancelled() {
    let f = Fixture::new();
    let payload = "name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: linux\n    steps:\n      - run: echo never-ran\n";
    let cancel = CancellationToken::new();
    cancel.cancel();
    let (run, events) = run_with(
        task(59, payload, context("https://gitea.example/")),
        &f.settings(),
        cancel,
    )
    .await;
    assert_eq!(run.result, Outcome::Cancelled, "{:#?}", lines(&events));
    assert!(!has_line(&events, "never-ran"));
    assert!(has_line(&events, "the job was cancelled before it started"));
    assert!(!f.workdir_parent().join("59").exists());
}
