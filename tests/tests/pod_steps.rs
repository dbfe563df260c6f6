//! Jobs whose `runs-on` picks a `kubernetes` label run their `run:` steps in a pod of the
//! job's own namespace, against the loopback fake API server (`harness::fake_kube`, whose
//! `pods/exec` runs each command in a per-pod sandbox on this host; needs root, `unshare`,
//! `nsenter`, else the tests say so and pass): env, `GITHUB_ENV` / `GITHUB_OUTPUT` /
//! `GITHUB_PATH` across steps, working directories, masking, a failing step's exit code,
//! `always()`, cancellation mid-step, a pod that cannot start, the namespace deleted on
//! every path, every manifest valid, and no secret in any request URL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use harness::fake_kube::{FakeKube, FakeKubeOptions, validate_manifests};
use hybrid_runner::exec::assignment::JobRun;
use hybrid_runner::exec::events::{Event, EventSink, Outcome};
use hybrid_runner::source::gitea::labels::Label;
use hybrid_runner::source::gitea::proto::runner::v1::Task;
use hybrid_runner::source::gitea::proto::well_known::Struct;
use hybrid_runner::source::gitea::task::{TaskSettings, run_task};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "pod-secret-4f3e2d1c";
const TOKEN: &str = "task-token-a1b2c3d4";

/// Whether the fake's exec sandbox can run here (root, unshare, nsenter).
fn sandbox_available() -> bool {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let tools = ["unshare", "nsenter", "chroot"].iter().all(|t| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !(root && tools) {
        eprintln!(
            "skipped: the fake kubelet's exec sandbox needs root, unshare, nsenter and chroot"
        );
    }
    root && tools
}

struct Rig {
    fake: FakeKube,
    dir: tempfile::TempDir,
}

impl Rig {
    fn new(options: FakeKubeOptions) -> Rig {
        Rig {
            fake: FakeKube::start(options),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn settings(&self) -> TaskSettings {
        let builds = hybrid_runner::exec::build::BuildSettings {
            docker_shim: false,
            kubeconfig: Some(self.fake.write_kubeconfig(self.dir.path())),
            runner_id: "pod-runner".into(),
            namespace_prefix: "hr".into(),
            ..Default::default()
        };
        TaskSettings {
            instance: "https://gitea.example/".into(),
            runner_name: "pod-runner".into(),
            labels: Label::parse_list("linux:host,k8s:kubernetes,k8s-alpine:kubernetes://alpine:3")
                .unwrap(),
            capabilities: None,
            workdir_parent: self.dir.path().join("work"),
            action_cache: self.dir.path().join("actions"),
            envs: vec![("FROM_RUNNER_ENVS".into(), "configured".into())],
            builds,
            timeout: Duration::from_secs(600),
            pods: Default::default(),
        }
    }

    /// Every namespace this runner made is deleted (a deletion a guard started from its
    /// `Drop` may take a moment) and then gone.
    async fn assert_namespaces_deleted(&self) {
        let deleted = |ns: &str| {
            self.fake
                .requests()
                .iter()
                .any(|r| r.method == "DELETE" && r.path == format!("/api/v1/namespaces/{ns}"))
        };
        let created: Vec<String> = self
            .fake
            .sent_manifests()
            .iter()
            .filter(|m| m["kind"] == "Namespace")
            .map(|m| m["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert!(!created.is_empty(), "no job namespace was created");
        for ns in &created {
            for _ in 0..100 {
                if deleted(ns) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(deleted(ns), "namespace {ns} was not deleted");
        }
        let client = self.fake.client();
        let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
        for _ in 0..100 {
            let left: Vec<String> = api
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .filter_map(|n| n.metadata.name)
                .filter(|n| created.contains(n))
                .collect();
            if left.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the job namespaces {created:?} are still there");
    }

    /// No request carried a secret or the task token in its path or query.
    fn assert_no_secret_in_urls(&self) {
        for r in self.fake.requests() {
            let url = format!("{} {:?}", r.path, r.query);
            for secret in [SECRET, TOKEN] {
                assert!(!url.contains(secret), "a secret in {} {url}", r.method);
            }
        }
    }
}

fn task(id: i64, payload: &str) -> Task {
    let context: Struct = serde_json::from_value(serde_json::json!({
        "event": {}, "event_name": "push", "job": "build", "ref": "refs/heads/main",
        "repository": "org/app", "repository_owner": "org", "run_id": "9", "run_number": "1",
        "server_url": "https://gitea.example/", "sha": "0123456789abcdef0123456789abcdef01234567",
        "workflow": "ci.yml", "token": TOKEN,
    }))
    .unwrap();
    Task {
        id,
        workflow_payload: Some(payload.as_bytes().to_vec()),
        context: Some(context),
        secrets: [
            ("MY_SECRET".to_string(), SECRET.to_string()),
            ("GITHUB_TOKEN".to_string(), TOKEN.to_string()),
        ]
        .into(),
        ..Default::default()
    }
}

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

fn has(events: &[Event], wanted: &str) -> bool {
    lines(events).iter().any(|l| l == wanted)
}

async fn execute(task: Task, settings: &TaskSettings) -> (JobRun, Vec<Event>) {
    let (sink, mut rx) = EventSink::channel();
    let run = run_task(
        task,
        settings,
        sink,
        CancellationToken::new(),
        CancellationToken::new(),
    )
    .await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (run, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_steps_share_env_outputs_and_files_in_the_pod() {
    if !sandbox_available() {
        return;
    }
    let rig = Rig::new(FakeKubeOptions::default());
    // Transient API errors while the job starts are retried.
    rig.fake.fail_next("POST", "/namespaces", 1);
    rig.fake.fail_next("POST", "/pods", 2);
    rig.fake.fail_next("GET", "/pods/job", 1);
    // And an exec refused before it started (the first step's) is tried again.
    rig.fake.fail_next("GET", "/exec", 1);
    let payload = r###"name: CI
"on": push
env:
  WORKFLOW_VAR: from-workflow
jobs:
  build:
    runs-on: k8s
    outputs:
      answer: ${{ steps.one.outputs.answer }}
    steps:
      - id: one
        run: |
          echo "pwd=$(pwd) workspace=$GITHUB_WORKSPACE"
          echo "workflow=$WORKFLOW_VAR runner_envs=$FROM_RUNNER_ENVS"
          echo "secret is $MY_SECRET"
          echo "FOO=bar baz" >> "$GITHUB_ENV"
          echo "answer=42" >> "$GITHUB_OUTPUT"
          { echo "multi<<EOF"; echo "line one"; echo "line two"; echo "EOF"; } >> "$GITHUB_OUTPUT"
          echo "::add-mask::pod-made-secret"
          echo "the pod-made-secret is hidden"
          echo "/opt/pod-tools" >> "$GITHUB_PATH"
          echo "## summary" >> "$GITHUB_STEP_SUMMARY"
          mkdir -p sub
          echo kept > sub/file.txt
          echo "to stderr" >&2
        env:
          MY_SECRET: ${{ secrets.MY_SECRET }}
      - run: |
          echo "foo=$FOO answer=${{ steps.one.outputs.answer }}"
          echo "multi=${{ steps.one.outputs.multi }}"
          echo "path=$PATH"
          echo "in $(pwd): $(cat file.txt)"
          echo "temp=$RUNNER_TEMP env_file=$GITHUB_ENV"
          ls /__t/_step/env.sh 2>/dev/null || echo "no env.sh left"
          grep -rl pod-secret /__t/_step 2>/dev/null || echo "no secret in /__t/_step"
        working-directory: sub
      - run: exit 3
      - run: echo never
      - if: always()
        run: echo "always ran with foo=$FOO"
"###;
    let (run, events) = execute(task(101, payload), &rig.settings()).await;
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Failure, "{all:#?}");
    assert!(
        all.iter()
            .any(|l| l.starts_with("Job pod hr-") && l.contains("is running")),
        "{all:#?}"
    );
    for wanted in [
        "pwd=/__w/app workspace=/__w/app",
        "workflow=from-workflow runner_envs=configured",
        "secret is ***",
        "to stderr",
        "foo=bar baz answer=42",
        "multi=line one",
        "line two",
        "the *** is hidden",
        "path=/opt/pod-tools:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "in /__w/app/sub: kept",
        "no env.sh left",
        "no secret in /__t/_step",
        "Process completed with exit code 3.",
        "always ran with foo=bar baz",
    ] {
        assert!(has(&events, wanted), "missing {wanted:?} in {all:#?}");
    }
    assert!(!has(&events, "never"), "{all:#?}");
    assert!(
        all.iter()
            .any(|l| l.starts_with("temp=/__t env_file=/__t/_files/set_env")),
        "{all:#?}"
    );
    assert!(
        !all.iter().any(|l| l.contains(SECRET)),
        "the secret leaked: {all:#?}"
    );
    assert_eq!(run.outputs, vec![("answer".to_string(), "42".to_string())]);
    rig.assert_namespaces_deleted().await;
    rig.assert_no_secret_in_urls();
    let posts = |suffix: &str| {
        rig.fake
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with(suffix))
            .count()
    };
    assert_eq!(posts("/pods"), 3, "two failed tries, then the pod");
    assert_eq!(
        posts("/api/v1/namespaces"),
        2,
        "one failed try, then the namespace"
    );
    let manifests = rig.fake.sent_manifests();
    let pod = manifests.iter().find(|m| m["kind"] == "Pod").unwrap();
    assert_eq!(pod["spec"]["automountServiceAccountToken"], false);
    assert_eq!(pod["spec"]["containers"][0]["image"], "node:20-bookworm");
    if !validate_manifests(&manifests) {
        eprintln!("kubernetes-validate is not installed: manifests not validated");
    }
    // The host never ran a step: the task folder is gone, and nothing was written there.
    assert!(!rig.dir.path().join("work").join("101").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_step_stops_in_the_pod_and_always_steps_still_run() {
    if !sandbox_available() {
        return;
    }
    let rig = Rig::new(FakeKubeOptions::default());
    let payload = r###"name: CI
"on": push
jobs:
  build:
    runs-on: k8s-alpine
    steps:
      - run: |
          echo started
          sleep 60
          echo not-reached
      - if: always()
        run: echo cleanup ran
      - run: echo skipped-after-cancel
"###;
    let settings = rig.settings();
    let (sink, mut rx) = EventSink::channel();
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let run = {
        let cancel = cancel.clone();
        let settings = settings.clone();
        let t = task(102, payload);
        tokio::spawn(
            async move { run_task(t, &settings, sink, cancel, CancellationToken::new()).await },
        )
    };
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        let seen = matches!(&e, Event::Log { line, .. } if line == "started");
        events.push(e);
        if seen {
            break;
        }
    }
    cancel.cancel();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    let run = run.await.unwrap();
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Cancelled, "{all:#?}");
    assert!(has(&events, "cleanup ran"), "{all:#?}");
    assert!(!has(&events, "not-reached"), "{all:#?}");
    assert!(!has(&events, "skipped-after-cancel"), "{all:#?}");
    // SIGINT reached the step's process group at once (not the TERM/KILL deadlines).
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let pod = rig
        .fake
        .sent_manifests()
        .into_iter()
        .find(|m| m["kind"] == "Pod")
        .unwrap();
    assert_eq!(pod["spec"]["containers"][0]["image"], "alpine:3");
    let signals = rig
        .fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/exec") && format!("{:?}", r.query).contains("kill -INT"))
        .count();
    assert_eq!(signals, 1, "one SIGINT exec");
    let escalations = rig
        .fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/exec") && format!("{:?}", r.query).contains("kill -TERM"))
        .count();
    assert_eq!(escalations, 0, "SIGINT alone stopped the step");
    rig.assert_namespaces_deleted().await;
    rig.assert_no_secret_in_urls();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_cannot_pull_its_image_fails_the_task_and_leaves_nothing() {
    let mut options = FakeKubeOptions::default();
    options.faults.image_pull_failure = true;
    let rig = Rig::new(options);
    let payload = "name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: k8s\n    steps:\n      - run: echo never\n";
    let started = Instant::now();
    let (run, events) = execute(task(103, payload), &rig.settings()).await;
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Failure, "{all:#?}");
    assert!(
        all.iter()
            .any(|l| l.contains("did not start") && l.contains("ImagePull")),
        "{all:#?}"
    );
    assert!(!has(&events, "never"));
    assert!(started.elapsed() < Duration::from_secs(30));
    rig.assert_namespaces_deleted().await;
    assert!(!rig.dir.path().join("work").join("103").exists());
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_reaches_the_pods_workspace_and_docker_actions_are_refused() {
    if !sandbox_available() {
        return;
    }
    let rig = Rig::new(FakeKubeOptions::default());
    let server = rig.dir.path().join("server");
    let src = server.join("src");
    std::fs::create_dir_all(&src).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    std::fs::write(src.join("README"), "from the server\n").unwrap();
    std::fs::create_dir_all(src.join("deep/er")).unwrap();
    std::fs::write(src.join("deep/er/file.txt"), "nested\n").unwrap();
    git(&src, &["add", "."]);
    git(&src, &["commit", "-q", "-m", "first"]);
    let sha = git(&src, &["rev-parse", "HEAD"]);
    std::fs::create_dir_all(server.join("org")).unwrap();
    git(&server, &["clone", "-q", "--bare", "src", "org/app.git"]);
    let payload = r###"name: CI
"on": push
jobs:
  build:
    runs-on: k8s
    steps:
      - uses: actions/checkout@v4
      - run: |
          echo "readme=$(cat README) nested=$(cat deep/er/file.txt)"
          echo "head=$(git rev-parse HEAD)"
      - uses: docker://alpine:3
      - if: always()
        run: echo after-refusal
"###;
    let mut t = task(104, payload);
    let mut context: serde_json::Value = serde_json::to_value(t.context.take().unwrap()).unwrap();
    context["server_url"] = serde_json::Value::String(format!("file://{}/", server.display()));
    context["sha"] = serde_json::Value::String(sha.clone());
    t.context = Some(serde_json::from_value(context).unwrap());
    let (run, events) = execute(t, &rig.settings()).await;
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Failure, "{all:#?}");
    assert!(
        has(&events, "readme=from the server nested=nested"),
        "{all:#?}"
    );
    assert!(has(&events, &format!("head={sha}")), "{all:#?}");
    assert!(
        all.iter()
            .any(|l| l.contains("Docker actions need a container backend")),
        "{all:#?}"
    );
    assert!(has(&events, "after-refusal"), "{all:#?}");
    rig.assert_namespaces_deleted().await;
    rig.assert_no_secret_in_urls();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_while_the_pod_starts_cancels_the_task_and_deletes_the_namespace() {
    let mut options = FakeKubeOptions::default();
    options.faults.unschedulable = true;
    let rig = Rig::new(options);
    let payload = "name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: k8s\n    steps:\n      - run: echo never\n";
    let settings = rig.settings();
    let cancel = CancellationToken::new();
    let (sink, mut rx) = EventSink::channel();
    let run = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            run_task(
                task(105, payload),
                &settings,
                sink,
                cancel,
                CancellationToken::new(),
            )
            .await
        })
    };
    // The pod was created and waits for a node.
    for _ in 0..200 {
        if rig.fake.sent_manifests().iter().any(|m| m["kind"] == "Pod") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    cancel.cancel();
    let run = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the task ends soon after the cancel")
        .unwrap();
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    assert_eq!(run.result, Outcome::Cancelled, "{:#?}", lines(&events));
    assert!(!has(&events, "never"));
    rig.assert_namespaces_deleted().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_timeout_stops_the_step_in_the_pod_and_fails_it() {
    if !sandbox_available() {
        return;
    }
    let rig = Rig::new(FakeKubeOptions::default());
    let payload = r###"name: CI
"on": push
jobs:
  build:
    runs-on: k8s
    steps:
      - run: |
          echo "begin"
          sleep 30
          echo not-reached
        timeout-minutes: 0.02
      - if: always()
        run: echo "next step ran"
"###;
    let started = Instant::now();
    let (run, events) = execute(task(106, payload), &rig.settings()).await;
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Failure, "{all:#?}");
    assert!(
        has(&events, "begin") && !has(&events, "not-reached"),
        "{all:#?}"
    );
    assert!(
        all.iter().any(|l| l.contains("has timed out after")),
        "{all:#?}"
    );
    assert!(has(&events, "next step ran"), "{all:#?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    rig.assert_namespaces_deleted().await;
}

/// The ClusterRole `generate-manifests` renders for `labels`, as the fake's allow-list.
fn granted_by_cluster_role(labels: &[&str]) -> Vec<harness::fake_kube::DenyRule> {
    let mut settings = hybrid_runner::deploy::DeploySettings::new(
        "https://gitea.example.com",
        "registry.example.com/hybrid-runner:0.1.0",
    );
    settings.labels = labels.iter().map(|l| l.to_string()).collect();
    let m = hybrid_runner::deploy::deploy_manifests(&settings).unwrap();
    let mut rules = Vec::new();
    for rule in m.cluster_role.rules.unwrap() {
        for resource in rule.resources.iter().flatten() {
            for verb in &rule.verbs {
                rules.push(harness::fake_kube::DenyRule::new(verb, resource));
            }
        }
    }
    rules
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rendered_cluster_role_is_enough_for_job_pods_only_with_a_kubernetes_label() {
    if !sandbox_available() {
        return;
    }
    let payload = "name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: k8s\n    steps:\n      - run: echo in-the-pod\n";
    // A runner deployed with a kubernetes label may run job pods.
    let mut options = FakeKubeOptions::default();
    options.faults.allow_only = Some(granted_by_cluster_role(&["k8s:kubernetes"]));
    let rig = Rig::new(options);
    let (run, events) = execute(task(107, payload), &rig.settings()).await;
    assert_eq!(run.result, Outcome::Success, "{:#?}", lines(&events));
    assert!(has(&events, "in-the-pod"));
    rig.assert_namespaces_deleted().await;
    // One deployed with host labels only may not: exec is refused, the task says why.
    let mut options = FakeKubeOptions::default();
    options.faults.allow_only = Some(granted_by_cluster_role(&["linux:host"]));
    let rig = Rig::new(options);
    let (run, events) = execute(task(108, payload), &rig.settings()).await;
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Failure, "{all:#?}");
    assert!(
        all.iter()
            .any(|l| l.contains("pods/exec") && l.contains("hybrid-runner check")),
        "{all:#?}"
    );
    assert!(!has(&events, "in-the-pod"));
    rig.assert_namespaces_deleted().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_with_job_pods_asks_for_pods_exec() {
    use hybrid_runner::build::kaniko::{
        CheckOptions, CheckStatus, KanikoBuilder, KanikoConfig, run_checks,
    };
    let mut options = FakeKubeOptions::default();
    options.faults.allow_only = Some(granted_by_cluster_role(&["linux:host"]));
    // `check` asks with SelfSubjectAccessReviews, which every user may create.
    if let Some(rules) = options.faults.allow_only.as_mut() {
        rules.push(harness::fake_kube::DenyRule::new(
            "create",
            "selfsubjectaccessreviews",
        ));
    }
    let rig = Rig::new(options);
    let kubeconfig = rig.fake.write_kubeconfig(rig.dir.path());
    let builder = KanikoBuilder::connect(Some(&kubeconfig), None, KanikoConfig::default())
        .await
        .unwrap();
    let status_of = |checks: &[hybrid_runner::build::kaniko::Check], name: &str| {
        checks
            .iter()
            .find(|c| c.name.starts_with(name))
            .map(|c| c.status)
    };
    let plain = run_checks(&builder, &CheckOptions::default()).await;
    assert_eq!(status_of(&plain, "permission pods/exec"), None);
    let with_pods = run_checks(
        &builder,
        &CheckOptions {
            job_pods: true,
            ..CheckOptions::default()
        },
    )
    .await;
    assert_eq!(
        status_of(&with_pods, "permission pods/exec"),
        Some(CheckStatus::Fail),
        "{with_pods:#?}"
    );
    assert_eq!(
        status_of(&with_pods, "permission namespaces"),
        Some(CheckStatus::Ok),
        "{with_pods:#?}"
    );
}

/// The registry fixture is blocking: this test drives its own runtime.
#[test]
fn a_built_in_build_uses_the_pods_workspace() {
    if !sandbox_available()
        || !harness::registry::require_program("buildah", "the fake kubelet builds with buildah")
    {
        return;
    }
    let Some(registry) = harness::registry::Registry::start() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rig = runtime.block_on(async { Rig::new(FakeKubeOptions::default()) });
    let mut settings = rig.settings();
    settings.builds.builder = hybrid_runner::build::BuilderChoice::Kaniko;
    settings.builds.insecure_registries = vec![registry.host.clone()];
    let payload = format!(
        r###"name: CI
"on": push
jobs:
  build:
    runs-on: k8s
    steps:
      - run: |
          printf 'FROM scratch\nCOPY hello.txt /hello.txt\n' > Dockerfile
          echo "made in the pod" > hello.txt
      - id: img
        uses: hybrid-runner/build@v1
        with:
          image: {host}/podapp
          variants: docker
      - run: echo "built=${{{{ steps.img.outcome }}}}"
"###,
        host = registry.host
    );
    let (run, events) = runtime.block_on(execute(task(109, &payload), &settings));
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Success, "{all:#?}");
    assert!(
        all.iter()
            .any(|l| l.starts_with("Copied the job pod's workspace /__w/app to the runner")),
        "{all:#?}"
    );
    assert!(has(&events, "built=success"), "{all:#?}");
    runtime.block_on(rig.assert_namespaces_deleted());
    let tags = registry.tags("podapp");
    assert!(tags.contains(&"docker-latest".to_string()), "{tags:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_dropped_mid_step_still_deletes_its_namespace() {
    if !sandbox_available() {
        return;
    }
    let rig = Rig::new(FakeKubeOptions::default());
    let payload = "name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: k8s\n    steps:\n      - run: |\n          echo started\n          sleep 60\n";
    let settings = rig.settings();
    let (sink, mut rx) = EventSink::channel();
    let handle = tokio::spawn(async move {
        run_task(
            task(110, payload),
            &settings,
            sink,
            CancellationToken::new(),
            CancellationToken::new(),
        )
        .await
    });
    while let Some(e) = rx.recv().await {
        if matches!(&e, Event::Log { line, .. } if line == "started") {
            break;
        }
    }
    // The daemon going away without a cancel: the future is dropped mid-step.
    handle.abort();
    assert!(handle.await.unwrap_err().is_cancelled());
    rig.assert_namespaces_deleted().await;
}

/// A git repository at `<root>/<path>` holding `files`, tagged `v1`; returns its HEAD.
fn repository(root: &std::path::Path, path: &str, files: &[(&str, &str)]) -> String {
    let dir = root.join(path);
    std::fs::create_dir_all(&dir).unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    for (name, text) in files {
        let file = dir.join(name);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "-q", "-m", "init"]);
    git(&dir, &["tag", "v1"]);
    git(&dir, &["rev-parse", "HEAD"])
}

const GREET_ACTION: &str = "name: greet\ninputs:\n  who:\n    required: true\noutputs:\n  greeting:\n    description: the greeting\nruns:\n  using: node20\n  main: index.js\n  post: post.js\n";
const GREET_MAIN: &str = r#"const fs = require('fs');
const who = process.env.INPUT_WHO;
console.log(`hello ${who} in ${process.cwd()} from ${process.env.GITHUB_ACTION_PATH}`);
fs.appendFileSync(process.env.GITHUB_OUTPUT, `greeting=hi ${who}\n`);
fs.appendFileSync(process.env.GITHUB_STATE, `who=${who}\n`);
"#;
const GREET_POST: &str = "console.log(`post for ${process.env.STATE_who}`);\n";
const TWICE_ACTION: &str = "name: twice\nruns:\n  using: composite\n  steps:\n    - run: echo \"composite in $(pwd) at $GITHUB_ACTION_PATH\"\n      shell: bash\n    - run: echo \"composite twice=$(ls \"$GITHUB_ACTION_PATH\")\"\n      shell: sh\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_and_composite_actions_run_in_the_pod() {
    if !sandbox_available() {
        return;
    }
    let rig = Rig::new(FakeKubeOptions::default());
    let server = rig.dir.path().join("server");
    // The repository, with a local composite action.
    let src = rig.dir.path().join("src");
    let sha = repository(&src, "app", &[("twice/action.yml", TWICE_ACTION)]);
    std::fs::create_dir_all(server.join("org")).unwrap();
    let bare_source = src.join("app").display().to_string();
    git(
        &server,
        &["clone", "-q", "--bare", &bare_source, "org/app.git"],
    );
    // A remote JavaScript action on the actions mirror.
    let mirror = rig.dir.path().join("mirror");
    repository(
        &mirror,
        "acme/greet",
        &[
            ("action.yml", GREET_ACTION),
            ("index.js", GREET_MAIN),
            ("post.js", GREET_POST),
        ],
    );
    let payload = r###"name: CI
"on": push
jobs:
  build:
    runs-on: k8s
    steps:
      - uses: actions/checkout@v4
      - id: greet
        uses: acme/greet@v1
        with:
          who: pods
      - run: echo "greeting=${{ steps.greet.outputs.greeting }}"
      - uses: ./twice
"###;
    let mut t = task(111, payload);
    let mut context: serde_json::Value = serde_json::to_value(t.context.take().unwrap()).unwrap();
    context["server_url"] = serde_json::Value::String(format!("file://{}/", server.display()));
    context["sha"] = serde_json::Value::String(sha);
    context["gitea_default_actions_url"] =
        serde_json::Value::String(format!("file://{}", mirror.display()));
    t.context = Some(serde_json::from_value(context).unwrap());
    let (run, events) = execute(t, &rig.settings()).await;
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Success, "{all:#?}");
    for wanted in [
        "hello pods in /__w/app from /__t/_actions/0",
        "greeting=hi pods",
        // The engine's own form of a local action's path (the same on the host).
        "composite in /__w/app at /__w/app/./twice",
        "composite twice=action.yml",
        "post for pods",
    ] {
        assert!(has(&events, wanted), "missing {wanted:?} in {all:#?}");
    }
    assert!(
        all.iter().any(|l| l.starts_with("Copied the action ")
            && l.ends_with("into the job pod at /__t/_actions/0")),
        "{all:#?}"
    );
    rig.assert_namespaces_deleted().await;
    rig.assert_no_secret_in_urls();
}

/// A figure, not a check: `cargo test -p hybrid-runner-tests --test pod_steps -- --ignored
/// --nocapture pod_step_overhead` prints the pod start and the time per trivial step
/// (two execs each) against the fake API server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement"]
async fn pod_step_overhead() {
    if !sandbox_available() {
        return;
    }
    let rig = Rig::new(FakeKubeOptions::default());
    let settings = rig.settings();
    let steps = 20;
    let mut payload =
        "name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: k8s\n    steps:\n".to_string();
    for i in 0..steps {
        payload.push_str(&format!("      - run: echo step-{i}\n"));
    }
    let started = Instant::now();
    let (run, events) = execute(task(120, "name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: k8s\n    steps:\n      - run: \"true\"\n"), &settings).await;
    assert_eq!(run.result, Outcome::Success, "{:#?}", lines(&events));
    let one = started.elapsed();
    let started = Instant::now();
    let (run, events) = execute(task(121, &payload), &settings).await;
    assert_eq!(run.result, Outcome::Success, "{:#?}", lines(&events));
    let many = started.elapsed();
    let per_step = (many - one) / (steps - 1);
    eprintln!("job with 1 step: {one:?}; with {steps} steps: {many:?}; per step: {per_step:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_process_does_not_hold_the_step_open() {
    if !sandbox_available() {
        return;
    }
    let rig = Rig::new(FakeKubeOptions::default());
    // The background process keeps the step's stdout open for 30 s; a kubelet (and the
    // fake) keeps an exec open while anything holds its stdout.
    let payload = r###"name: CI
"on": push
jobs:
  build:
    runs-on: k8s
    steps:
      - run: |
          (sleep 30; echo too-late) &
          echo "server started"
      - run: echo "next step"
"###;
    let started = Instant::now();
    let (run, events) = execute(task(112, payload), &rig.settings()).await;
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Success, "{all:#?}");
    assert!(
        has(&events, "server started") && has(&events, "next step"),
        "{all:#?}"
    );
    assert!(!has(&events, "too-late"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    rig.assert_namespaces_deleted().await;
}
