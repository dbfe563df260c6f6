//! The Kaniko builder against the loopback fake Kubernetes API server, whose kubelet builds
//! every Job's context with buildah and pushes to a real registry: dual builds with their
//! five tags and digests, live pod logs, failures that name the variant, fail-fast pod
//! reasons, cancel and timeout, API errors, the reaper and the namespace guard, and the
//! `check`, `cleanup` and `status` commands run as the real binary. Every manifest sent is
//! validated with `kubernetes-validate --strict`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use actions::build::{BuildRequest, OutputsStyle, TagTemplates, VariantRequest};
use harness::fake_kube::{DenyRule, FakeKube, FakeKubeOptions, validate_manifests};
use harness::registry::{Registry, require_program};
use hybrid_runner::build::kaniko::{
    BuildTimings, KanikoBuilder, KanikoConfig, NamespaceGuard, TaskIds, Variant, reap_expired,
};
use hybrid_runner::build::{BuildError, BuildJob, BuildLog, BuildLogLine, ImageBuilder};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// A fake cluster, a registry, and a folder; `None` when buildah or the registry is missing
/// outside CI.
struct Rig {
    fake: FakeKube,
    registry: Registry,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    runner_id: String,
}

fn rig(options: FakeKubeOptions) -> Option<Rig> {
    if !require_program("buildah", "the fake kubelet builds with buildah") {
        return None;
    }
    let registry = Registry::start()?;
    let fake = FakeKube::start(options);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = fake.write_kubeconfig(dir.path());
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let runner_id = format!(
        "test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    Some(Rig {
        fake,
        registry,
        dir,
        kubeconfig,
        runner_id,
    })
}

impl Rig {
    fn config(&self) -> KanikoConfig {
        KanikoConfig {
            runner_id: self.runner_id.clone(),
            insecure_registries: vec![self.registry.host.clone()],
            ..KanikoConfig::default()
        }
    }

    fn image(&self, name: &str) -> String {
        format!("{}/{name}", self.registry.host)
    }

    /// A context folder `name` with the given files.
    fn context(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let ctx = self.dir.path().join(name);
        std::fs::create_dir_all(&ctx).unwrap();
        for (file, text) in files {
            std::fs::write(ctx.join(file), text).unwrap();
        }
        ctx
    }

    fn job(&self, context: &Path, image: &str, variants: &[Variant]) -> BuildJob {
        BuildJob {
            request: BuildRequest {
                context: PathBuf::from("."),
                variants: variants
                    .iter()
                    .map(|&variant| VariantRequest {
                        variant,
                        dockerfile: variant.default_dockerfile().to_string(),
                        tags: actions::build::dual_tags(
                            image,
                            SHA,
                            variant,
                            &TagTemplates::default(),
                        ),
                    })
                    .collect(),
                build_args: Vec::new(),
                target: None,
                labels: Vec::new(),
                push: true,
                cache: false,
                outputs_for: OutputsStyle::Dual,
            },
            workspace: context.to_path_buf(),
            sha: SHA.to_string(),
            task: TaskIds {
                task: format!("task-{}", self.runner_id),
                job: image.rsplit('/').next().unwrap().to_string(),
                started_at: SystemTime::now(),
            },
            timeout: Duration::from_secs(120),
            insecure_registries: Vec::new(),
        }
    }

    /// Waits until no build namespace of this runner is left (the fake removes a deleted
    /// namespace after its Terminating delay).
    fn assert_no_namespace_left(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left: Vec<_> = self
                .fake
                .namespaces()
                .into_iter()
                .filter(|(name, _)| name.starts_with("hr-"))
                .collect();
            if left.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "namespaces left: {left:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A log that keeps its lines.
fn recording_log() -> (BuildLog, Arc<Mutex<Vec<BuildLogLine>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    (
        BuildLog::new(move |line| sink.lock().unwrap().push(line)),
        lines,
    )
}

fn build(
    rig: &Rig,
    config: KanikoConfig,
    job: &BuildJob,
    cancel: CancellationToken,
) -> (
    Result<(hybrid_runner::build::BuildOutcome, BuildTimings), BuildError>,
    Vec<BuildLogLine>,
) {
    let (log, lines) = recording_log();
    let result = runtime().block_on(async {
        let builder = KanikoBuilder::connect(Some(&rig.kubeconfig), None, config)
            .await
            .unwrap();
        builder.build_timed(job, &log, &cancel).await
    });
    let lines = lines.lock().unwrap().clone();
    (result, lines)
}

const DOCKERFILE: &str = "FROM scratch\nCOPY hello.txt /hello.txt\n";
const DOCKERFILE_K8S: &str = "FROM scratch\nCOPY hello.txt /hello-k8s.txt\n";

#[test]
fn dual_build_pushes_five_tags_with_the_digests_it_reports() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let ctx = rig.context(
        "dual",
        &[
            ("Dockerfile", DOCKERFILE),
            ("Dockerfile.k8s", DOCKERFILE_K8S),
            ("hello.txt", "hello from the dual build\n"),
        ],
    );
    let image = rig.image("dual");
    let job = rig.job(&ctx, &image, &Variant::ALL);
    // Through the enum every caller uses.
    let (log, lines) = recording_log();
    let outcome = runtime().block_on(async {
        let builder = KanikoBuilder::connect(Some(&rig.kubeconfig), None, rig.config())
            .await
            .unwrap();
        let builder = ImageBuilder::Kaniko(builder);
        assert_eq!(builder.name(), "kaniko");
        builder.build(&job, &log, &CancellationToken::new()).await
    });
    let outcome = outcome.unwrap_or_else(|e| panic!("build failed: {e}"));

    let mut tags = rig.registry.tags("dual");
    tags.sort();
    let mut expected = vec![
        "latest".to_string(),
        "docker-latest".to_string(),
        format!("docker-{SHA}"),
        "k8s-latest".to_string(),
        format!("k8s-{SHA}"),
    ];
    expected.sort();
    assert_eq!(tags, expected);
    assert_eq!(outcome.images.len(), 2);
    for image_out in &outcome.images {
        assert!(image_out.digest.starts_with("sha256:"), "{image_out:?}");
        for tag in &image_out.tags {
            let tag = tag.rsplit(':').next().unwrap();
            assert_eq!(
                rig.registry.digest("dual", tag).as_deref(),
                Some(image_out.digest.as_str()),
                "tag {tag}"
            );
        }
    }
    assert_ne!(outcome.images[0].digest, outcome.images[1].digest);
    assert_eq!(outcome.images[0].variant, Variant::Docker);
    assert_eq!(outcome.images[0].tags.len(), 3);

    // The pods' logs reached the build log, tagged with their variant.
    let lines = lines.lock().unwrap().clone();
    for variant in Variant::ALL {
        assert!(
            lines.iter().any(|l| l.variant == Some(variant)),
            "no log line of {variant}: {lines:?}"
        );
    }
    rig.assert_no_namespace_left();

    // Every deletion of a build namespace asked for background propagation.
    let deletions: Vec<_> = rig
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE" && r.path.starts_with("/api/v1/namespaces/hr-"))
        .collect();
    assert_eq!(deletions.len(), 1, "{deletions:?}");
    let body = deletions[0].body.clone().unwrap_or_default();
    assert_eq!(body["propagationPolicy"], "Background", "{body}");

    validate_manifests(&rig.fake.sent_manifests());
}

#[test]
fn failing_dockerfile_fails_naming_the_variant() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let ctx = rig.context(
        "broken",
        &[(
            "Dockerfile",
            "FROM scratch\nCOPY missing.txt /missing.txt\n",
        )],
    );
    let job = rig.job(&ctx, &rig.image("broken"), &[Variant::Docker]);
    let (result, lines) = build(&rig, rig.config(), &job, CancellationToken::new());
    match result {
        Err(BuildError::Failed { variant, message }) => {
            assert_eq!(variant, Variant::Docker);
            assert!(message.contains("kaniko-docker failed"), "{message}");
        }
        other => panic!("expected a failed docker build, got {other:?}"),
    }
    let text = BuildError::Failed {
        variant: Variant::Docker,
        message: String::new(),
    }
    .to_string();
    assert!(text.starts_with("docker image build failed"), "{text}");
    assert!(!lines.is_empty(), "the failing build's log was streamed");
    assert!(rig.registry.tags("broken").is_empty());
    rig.assert_no_namespace_left();
}

#[test]
fn image_pull_failure_fails_fast_with_the_reason() {
    let mut options = FakeKubeOptions::default();
    options.faults.image_pull_failure = true;
    let Some(rig) = rig(options) else {
        return;
    };
    let ctx = rig.context("pull", &[("Dockerfile", DOCKERFILE), ("hello.txt", "x")]);
    let job = rig.job(&ctx, &rig.image("pull"), &[Variant::Docker]);
    let started = Instant::now();
    let (result, _) = build(&rig, rig.config(), &job, CancellationToken::new());
    let elapsed = started.elapsed();
    match result {
        Err(BuildError::Failed { variant, message }) => {
            assert_eq!(variant, Variant::Docker);
            assert!(
                message.contains("ErrImagePull") || message.contains("ImagePullBackOff"),
                "{message}"
            );
            assert!(message.contains("executor_image"), "{message}");
        }
        other => panic!("expected a failed build, got {other:?}"),
    }
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    rig.assert_no_namespace_left();
}

#[test]
fn unschedulable_pod_fails_after_the_deadline() {
    let mut options = FakeKubeOptions::default();
    options.faults.unschedulable = true;
    let Some(rig) = rig(options) else {
        return;
    };
    let ctx = rig.context("unsched", &[("Dockerfile", DOCKERFILE), ("hello.txt", "x")]);
    let job = rig.job(&ctx, &rig.image("unsched"), &[Variant::Docker]);
    let config = KanikoConfig {
        unschedulable_timeout: Duration::from_secs(1),
        ..rig.config()
    };
    let started = Instant::now();
    let (result, _) = build(&rig, config, &job, CancellationToken::new());
    match result {
        Err(BuildError::Failed { message, .. }) => {
            assert!(message.contains("could not be scheduled"), "{message}")
        }
        other => panic!("expected a failed build, got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_secs(1));
    rig.assert_no_namespace_left();
}

/// A build whose pod never schedules, so it is still running when it is cancelled or
/// times out.
fn stuck_rig() -> Option<Rig> {
    let mut options = FakeKubeOptions::default();
    options.faults.unschedulable = true;
    rig(options)
}

#[test]
fn cancel_mid_build_deletes_the_jobs_and_the_namespace() {
    let Some(rig) = stuck_rig() else {
        return;
    };
    let ctx = rig.context("cancel", &[("Dockerfile", DOCKERFILE), ("hello.txt", "x")]);
    let job = rig.job(&ctx, &rig.image("cancel"), &[Variant::Docker]);
    let cancel = CancellationToken::new();
    let canceller = cancel.clone();
    let jobs_seen = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(20);
            while rig.fake.objects("Job", None).is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let seen = !rig.fake.objects("Job", None).is_empty();
            canceller.cancel();
            seen
        });
        let (result, _) = build(&rig, rig.config(), &job, cancel);
        assert!(
            matches!(result, Err(BuildError::Cancelled)),
            "expected Cancelled, got {result:?}"
        );
        watcher.join().unwrap()
    });
    assert!(jobs_seen, "the Job was created before the cancel");
    let job_deletes: Vec<_> = rig
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE" && r.path.contains("/jobs/"))
        .collect();
    assert_eq!(job_deletes.len(), 1, "{job_deletes:?}");
    let body = job_deletes[0].body.clone().unwrap_or_default();
    assert_eq!(body["propagationPolicy"], "Background", "{body}");
    rig.assert_no_namespace_left();
}

#[test]
fn timeout_ends_the_build_and_deletes_the_namespace() {
    let Some(rig) = stuck_rig() else {
        return;
    };
    let ctx = rig.context("timeout", &[("Dockerfile", DOCKERFILE), ("hello.txt", "x")]);
    let mut job = rig.job(&ctx, &rig.image("timeout"), &[Variant::Docker]);
    job.timeout = Duration::from_secs(2);
    let (result, _) = build(&rig, rig.config(), &job, CancellationToken::new());
    assert!(
        matches!(result, Err(BuildError::TimedOut(t)) if t == Duration::from_secs(2)),
        "{result:?}"
    );
    rig.assert_no_namespace_left();
}

#[test]
fn a_dropped_build_still_deletes_its_namespace() {
    let Some(rig) = stuck_rig() else {
        return;
    };
    let ctx = rig.context("dropped", &[("Dockerfile", DOCKERFILE), ("hello.txt", "x")]);
    let job = rig.job(&ctx, &rig.image("dropped"), &[Variant::Docker]);
    runtime().block_on(async {
        let builder = KanikoBuilder::connect(Some(&rig.kubeconfig), None, rig.config())
            .await
            .unwrap();
        let cancel = CancellationToken::new();
        let log = BuildLog::discard();
        let build = builder.build(&job, &log, &cancel);
        // The caller gives up on the build future itself, without cancelling it.
        let dropped = tokio::time::timeout(Duration::from_millis(1500), build).await;
        assert!(dropped.is_err(), "the stuck build cannot finish");
        // Let the deletion the guard spawned run.
        tokio::time::sleep(Duration::from_millis(300)).await;
    });
    assert!(
        rig.fake
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/jobs")),
        "the Job was created before the drop"
    );
    rig.assert_no_namespace_left();
}

#[test]
fn api_500s_on_create_are_retried() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    rig.fake.fail_next("POST", "/configmaps", 2);
    rig.fake.fail_next("POST", "/jobs", 2);
    rig.fake.fail_next("POST", "/api/v1/namespaces", 1);
    let ctx = rig.context(
        "retry",
        &[("Dockerfile", DOCKERFILE), ("hello.txt", "retried\n")],
    );
    let job = rig.job(&ctx, &rig.image("retry"), &[Variant::Docker]);
    let (result, _) = build(&rig, rig.config(), &job, CancellationToken::new());
    let (outcome, _) = result.unwrap_or_else(|e| panic!("build failed: {e}"));
    assert_eq!(
        rig.registry.digest("retry", "docker-latest"),
        Some(outcome.images[0].digest.clone())
    );
    rig.assert_no_namespace_left();
}

#[test]
fn api_500s_that_persist_are_reported_and_cleaned_up() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    rig.fake.fail_next("POST", "/configmaps", 100);
    let ctx = rig.context("down", &[("Dockerfile", DOCKERFILE), ("hello.txt", "x")]);
    let job = rig.job(&ctx, &rig.image("down"), &[Variant::Docker]);
    let (result, _) = build(&rig, rig.config(), &job, CancellationToken::new());
    match result {
        Err(BuildError::Unavailable { builder, message }) => {
            assert_eq!(builder, "kaniko");
            assert!(message.contains("ConfigMap"), "{message}");
            assert!(message.contains("HTTP 500"), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    rig.assert_no_namespace_left();
}

fn namespace(name: &str, runner: &str, expires: &str, managed: bool) -> Namespace {
    let mut labels = BTreeMap::from([("hybrid-runner/runner-id".to_string(), runner.to_string())]);
    if managed {
        labels.insert(
            "app.kubernetes.io/managed-by".to_string(),
            "hybrid-runner".to_string(),
        );
    }
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                "hybrid-runner/expires-at".to_string(),
                expires.to_string(),
            )])),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Creates namespaces of this runner (expired, fresh), another runner's and an unmanaged
/// one, all named `hr-*`.
fn seed_namespaces(rig: &Rig) {
    runtime().block_on(async {
        let api: Api<Namespace> = Api::all(rig.fake.client());
        for ns in [
            namespace("hr-old", &rig.runner_id, "2020-01-01T00:00:00Z", true),
            namespace("hr-fresh", &rig.runner_id, "2999-01-01T00:00:00Z", true),
            namespace(
                "hr-other-runner",
                "someone-else",
                "2020-01-01T00:00:00Z",
                true,
            ),
            namespace(
                "hr-unmanaged",
                &rig.runner_id,
                "2020-01-01T00:00:00Z",
                false,
            ),
        ] {
            api.create(&PostParams::default(), &ns).await.unwrap();
        }
    });
}

fn active_namespaces(rig: &Rig) -> Vec<String> {
    rig.fake
        .namespaces()
        .into_iter()
        .filter(|(_, phase)| phase == "Active")
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("hr-"))
        .collect()
}

#[test]
fn reaper_deletes_only_expired_namespaces_of_this_runner() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    seed_namespaces(&rig);
    let deleted = runtime().block_on(async {
        reap_expired(&rig.fake.client(), &rig.config(), SystemTime::now()).await
    });
    assert_eq!(deleted.unwrap(), vec!["hr-old".to_string()]);
    let mut left = active_namespaces(&rig);
    left.sort();
    assert_eq!(left, ["hr-fresh", "hr-other-runner", "hr-unmanaged"]);
}

#[test]
fn a_panicking_build_still_deletes_its_namespace() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    runtime().block_on(async {
        let api: Api<Namespace> = Api::all(rig.fake.client());
        let ns = namespace("hr-panics", &rig.runner_id, "2999-01-01T00:00:00Z", true);
        api.create(&PostParams::default(), &ns).await.unwrap();
        let config: kube::Config = kube::Config::new(rig.fake.url().parse().unwrap());
        let client = rig.fake.client();
        let task = tokio::spawn(async move {
            let _guard = NamespaceGuard::new(client, config, "hr-panics");
            panic!("a build step panicked");
        });
        assert!(task.await.unwrap_err().is_panic());
    });
    assert!(!active_namespaces(&rig).contains(&"hr-panics".to_string()));
    rig.assert_no_namespace_left();
}

/// The `hybrid-runner` binary, built once per test process.
fn binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "-q",
                "-p",
                "hybrid-runner",
                "--bin",
                "hybrid-runner",
            ])
            .current_dir(harness::workspace_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build of the binary failed");
        // tests/…/target/debug/deps/kaniko_builds-… → target/debug/hybrid-runner
        let exe = std::env::current_exe().unwrap();
        exe.parent()
            .and_then(Path::parent)
            .unwrap()
            .join("hybrid-runner")
    })
    .clone()
}

fn run_cli(rig: &Rig, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(binary())
        .args(args)
        .arg("--kubeconfig")
        .arg(&rig.kubeconfig)
        .arg("--runner-id")
        .arg(&rig.runner_id)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_command_passes_and_reports_denied_permissions() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let image = rig.image("checked");
    let host = rig.registry.host.clone();
    let args = ["check", "--image", &image, "--insecure-registry", &host];
    let (code, stdout, stderr) = run_cli(&rig, &args);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    for check in [
        "ok   cluster reachable (v1.31.0",
        "ok   permission batch/jobs: create, get, list, watch, delete (allowed)",
        "ok   permission pods/log: get",
        "ok   namespace round trip",
        "ok   configmap round trip",
        &format!("ok   registry reachable (http://{host}/v2/) (HTTP 200)"),
        "ok   executor image configured (ghcr.io/osscontainertools/kaniko:",
    ] {
        assert!(stdout.contains(check), "missing {check:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
    // The round trip left nothing behind.
    assert!(active_namespaces(&rig).is_empty());

    rig.fake
        .update_faults(|f| f.deny.push(DenyRule::new("delete", "jobs")));
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let (code, stdout, _) = run_cli(&rig, &json_args);
    assert_eq!(code, 1, "{stdout}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["ok"], false);
    let jobs = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["name"]
                .as_str()
                .unwrap()
                .starts_with("permission batch/jobs")
        })
        .unwrap();
    assert_eq!(jobs["status"], "fail");
    assert!(
        jobs["detail"].as_str().unwrap().contains("delete"),
        "{jobs}"
    );
}

#[test]
fn cleanup_and_status_commands() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    seed_namespaces(&rig);
    let (code, stdout, stderr) = run_cli(&rig, &["status"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("hr-old  Active"), "{stdout}");
    assert!(stdout.contains("hr-fresh  Active"), "{stdout}");
    assert!(!stdout.contains("hr-other-runner"), "{stdout}");
    assert!(!stdout.contains("hr-unmanaged"), "{stdout}");
    assert!(stdout.contains("expired"), "{stdout}");

    let (code, stdout, _) = run_cli(&rig, &["cleanup", "--dry-run"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("would delete namespace hr-old"), "{stdout}");
    assert_eq!(active_namespaces(&rig).len(), 4, "dry run deletes nothing");

    let (code, stdout, _) = run_cli(&rig, &["cleanup"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("deleted namespace hr-old"), "{stdout}");
    assert!(!stdout.contains("hr-fresh"), "{stdout}");

    let (code, stdout, _) = run_cli(&rig, &["cleanup", "--all", "--json"]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["namespaces"], serde_json::json!(["hr-fresh"]));
    let mut left = active_namespaces(&rig);
    left.sort();
    assert_eq!(left, ["hr-other-runner", "hr-unmanaged"]);
}

/// Runner-side latency from build start to every Job created, for a context of ~1 MB of
/// files (it must fit a ConfigMap packed).
#[test]
fn latency_to_jobs_created_for_a_1_mb_context() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let ctx = rig.context("latency", &[("Dockerfile", DOCKERFILE), ("hello.txt", "x")]);
    // About 1 MB of real source files: this workspace's own Rust sources.
    let root = harness::workspace_root();
    let mut copied = 0u64;
    for dir in ["runner/src", "workflows/src", "actions/src"] {
        for entry in walk(&root.join(dir)) {
            if copied >= 1_000_000 {
                break;
            }
            let to = ctx.join("src").join(entry.strip_prefix(&root).unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            copied += std::fs::copy(&entry, &to).unwrap();
        }
    }
    assert!(copied >= 1_000_000, "only {copied} bytes of sources");
    let job = rig.job(&ctx, &rig.image("latency"), &[Variant::Docker]);
    let (result, _) = build(&rig, rig.config(), &job, CancellationToken::new());
    let (_, timings) = result.unwrap_or_else(|e| panic!("build failed: {e}"));
    println!(
        "latency: context of {copied} bytes, {} bytes packed, packed after {:?}, jobs created after {:?}, finished after {:?}",
        timings.context_bytes, timings.packed, timings.jobs_created, timings.finished
    );
    assert!(timings.jobs_created >= timings.packed);
    assert!(timings.jobs_created < Duration::from_secs(5), "{timings:?}");
    rig.assert_no_namespace_left();
}

/// Every file under `dir`, sorted.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// When the namespace deletion keeps failing the build still succeeds (with a warning),
/// and the namespace left behind shows in `status`, its Kaniko log in `logs`, and
/// `cleanup --all` removes it.
#[test]
fn a_namespace_left_behind_shows_in_status_and_logs_until_cleanup() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let ctx = rig.context(
        "leftover",
        &[("Dockerfile", DOCKERFILE), ("hello.txt", "left over\n")],
    );
    let job = rig.job(&ctx, &rig.image("leftover"), &[Variant::Docker]);
    rig.fake.fail_next("DELETE", "/api/v1/namespaces/hr-", 1000);
    let (result, lines) = build(&rig, rig.config(), &job, CancellationToken::new());
    let (outcome, timings) = result.unwrap_or_else(|e| panic!("build failed: {e}"));
    assert!(outcome.images[0].digest.starts_with("sha256:"));
    assert!(
        lines
            .iter()
            .any(|l| l.variant.is_none() && l.line.contains("cannot delete the build namespace")),
        "{lines:?}"
    );
    let ns = timings.namespace.clone();
    assert_eq!(active_namespaces(&rig), std::slice::from_ref(&ns));
    rig.fake.update_faults(|f| f.api_errors.clear());

    let (code, stdout, stderr) = run_cli(&rig, &["status"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&format!("{ns}  Active")), "{stdout}");
    assert!(
        stdout.contains("kaniko-docker  docker  succeeded"),
        "{stdout}"
    );

    let (code, stdout, stderr) = run_cli(&rig, &["logs", &ns]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("[kaniko-docker] "), "{stdout}");
    assert!(stdout.contains("Pushing image to"), "{stdout}");
    let (code, stdout, _) = run_cli(&rig, &["logs", &format!("{ns}/kaniko-docker")]);
    assert_eq!(code, 0);
    assert!(!stdout.contains("[kaniko-docker]"), "{stdout}");
    assert!(stdout.contains("Pushing image to"), "{stdout}");

    let (code, stdout, _) = run_cli(&rig, &["cleanup", "--all"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains(&format!("deleted namespace {ns}")),
        "{stdout}"
    );
    rig.assert_no_namespace_left();
}

/// Two builds of the same task and job share a namespace name: the second waits until the
/// first one's namespace has finished terminating, then builds.
#[test]
fn a_rebuild_waits_out_the_terminating_namespace_of_the_last_build() {
    let mut options = FakeKubeOptions::default();
    options.faults.namespace_deletion_delay = Some(Duration::from_secs(2));
    let Some(rig) = rig(options) else {
        return;
    };
    let ctx = rig.context(
        "again",
        &[("Dockerfile", DOCKERFILE), ("hello.txt", "again\n")],
    );
    let job = rig.job(&ctx, &rig.image("again"), &[Variant::Docker]);
    let (first, _) = build(&rig, rig.config(), &job, CancellationToken::new());
    let (_, first_timings) = first.unwrap_or_else(|e| panic!("first build failed: {e}"));
    assert!(
        rig.fake
            .namespaces()
            .contains(&(first_timings.namespace.clone(), "Terminating".to_string())),
        "{:?}",
        rig.fake.namespaces()
    );
    let (second, lines) = build(&rig, rig.config(), &job, CancellationToken::new());
    let (_, second_timings) = second.unwrap_or_else(|e| panic!("second build failed: {e}"));
    assert_eq!(first_timings.namespace, second_timings.namespace);
    assert!(
        lines
            .iter()
            .any(|l| l.line.contains("of an earlier build to be deleted")),
        "{lines:?}"
    );
    rig.assert_no_namespace_left();
}

/// A second build of the same task and job while the first still runs is refused with a
/// clear message, and does not touch the first one's namespace.
#[test]
fn a_concurrent_build_of_the_same_task_is_refused() {
    let Some(rig) = stuck_rig() else {
        return;
    };
    let ctx = rig.context("twice", &[("Dockerfile", DOCKERFILE), ("hello.txt", "x")]);
    let job = rig.job(&ctx, &rig.image("twice"), &[Variant::Docker]);
    let cancel = CancellationToken::new();
    std::thread::scope(|scope| {
        let first = scope.spawn(|| build(&rig, rig.config(), &job, cancel.clone()).0);
        let deadline = Instant::now() + Duration::from_secs(20);
        while rig.fake.objects("Job", None).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let (second, _) = build(&rig, rig.config(), &job, CancellationToken::new());
        match second {
            Err(BuildError::Unavailable { message, .. }) => {
                assert!(message.contains("in use by another build"), "{message}")
            }
            other => panic!("expected the second build to be refused, got {other:?}"),
        }
        assert_eq!(
            active_namespaces(&rig).len(),
            1,
            "the first build's namespace stays"
        );
        cancel.cancel();
        let first = first.join().unwrap();
        assert!(matches!(first, Err(BuildError::Cancelled)), "{first:?}");
    });
    rig.assert_no_namespace_left();
}

/// A build whose namespace is deleted from outside (`cleanup --all` while it runs) fails at
/// once instead of waiting for its timeout.
#[test]
fn a_build_whose_namespace_is_deleted_fails_at_once() {
    let Some(rig) = stuck_rig() else {
        return;
    };
    let ctx = rig.context("yanked", &[("Dockerfile", DOCKERFILE), ("hello.txt", "x")]);
    let job = rig.job(&ctx, &rig.image("yanked"), &[Variant::Docker]);
    let started = Instant::now();
    let result = std::thread::scope(|scope| {
        let build = scope.spawn(|| build(&rig, rig.config(), &job, CancellationToken::new()).0);
        let deadline = Instant::now() + Duration::from_secs(20);
        while rig.fake.objects("Job", None).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let (code, stdout, stderr) = run_cli(&rig, &["cleanup", "--all"]);
        assert_eq!(code, 0, "{stdout}{stderr}");
        build.join().unwrap()
    });
    match result {
        Err(BuildError::Failed { message, .. }) => {
            assert!(
                message.contains("was deleted before it finished"),
                "{message}"
            )
        }
        other => panic!("expected a failed build, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    rig.assert_no_namespace_left();
}
