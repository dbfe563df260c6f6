//! What the Kaniko test files share: a rig of the fake Kubernetes API server, a real
//! registry and a folder; builds through `KanikoBuilder`; namespaces seeded for the
//! reaper; the `hybrid-runner` binary run against the fake. Shared by the `kube` and
//! `deploy` test binaries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::fake_kube::{FakeKube, FakeKubeOptions};
use crate::registry::{Registry, require_program};
use actions::image_build::{BuildRequest, OutputsStyle, TagTemplates, VariantRequest};
use hr_cluster::TaskIds;
use hr_image::kaniko::{BuildTimings, KanikoBuilder, KanikoConfig, Variant};
use hr_image::{BuildError, BuildJob, BuildLog, BuildLogLine, BuildOutcome};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;

pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// A fake cluster, a registry, and a folder; `None` when buildah or the registry is missing
/// outside CI.
#[derive(Debug)]
pub struct Rig {
    pub fake: FakeKube,
    pub registry: Registry,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub runner_id: String,
}

pub fn rig(options: FakeKubeOptions) -> Option<Rig> {
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
    pub fn config(&self) -> KanikoConfig {
        KanikoConfig {
            runner_id: self.runner_id.clone(),
            insecure_registries: vec![self.registry.host.clone()],
            ..KanikoConfig::default()
        }
    }

    pub fn image(&self, name: &str) -> String {
        format!("{}/{name}", self.registry.host)
    }

    /// A context folder `name` with the given files.
    pub fn context(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let ctx = self.dir.path().join(name);
        std::fs::create_dir_all(&ctx).unwrap();
        for (file, text) in files {
            std::fs::write(ctx.join(file), text).unwrap();
        }
        ctx
    }

    pub fn job(&self, context: &Path, image: &str, variants: &[Variant]) -> BuildJob {
        BuildJob {
            request: BuildRequest {
                context: PathBuf::from("."),
                variants: variants
                    .iter()
                    .map(|&variant| VariantRequest {
                        variant,
                        dockerfile: variant.default_dockerfile().to_string(),
                        tags: actions::image_build::dual_tags(
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
                skip_unchanged: false,
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
    pub fn assert_no_namespace_left(&self) {
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

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A log that keeps its lines.
pub fn recording_log() -> (BuildLog, Arc<Mutex<Vec<BuildLogLine>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    (
        BuildLog::new(move |line| sink.lock().unwrap().push(line)),
        lines,
    )
}

pub fn build(
    rig: &Rig,
    config: KanikoConfig,
    job: &BuildJob,
    cancel: CancellationToken,
) -> (
    Result<(BuildOutcome, BuildTimings), BuildError>,
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

pub const DOCKERFILE: &str = "FROM scratch\nCOPY hello.txt /hello.txt\n";
pub const DOCKERFILE_K8S: &str = "FROM scratch\nCOPY hello.txt /hello-k8s.txt\n";

/// A build whose pod never schedules, so it is still running when it is cancelled or
/// times out.
pub fn stuck_rig() -> Option<Rig> {
    let mut options = FakeKubeOptions::default();
    options.faults.unschedulable = true;
    rig(options)
}

pub fn namespace(name: &str, runner: &str, expires: &str, managed: bool) -> Namespace {
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
pub fn seed_namespaces(rig: &Rig) {
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

pub fn active_namespaces(rig: &Rig) -> Vec<String> {
    rig.fake
        .namespaces()
        .into_iter()
        .filter(|(_, phase)| phase == "Active")
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("hr-"))
        .collect()
}

pub fn run_cli(rig: &Rig, args: &[&str]) -> (i32, String, String) {
    let out = crate::cli::command()
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

/// Every file under `dir`, sorted.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
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
