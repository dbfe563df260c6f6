#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The local builder (`ImageBuilder::Local`) with a real buildah against a real registry:
//! both variants built in parallel and pushed with their digests, a failing variant named,
//! cancel and timeout stopping a hung buildah.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use actions::image_build::{BuildRequest, OutputsStyle, TagTemplates, Variant, VariantRequest};
use harness::buildah::PrivateStorage;
use harness::registry::{Registry, require_program};
use hr_cluster::TaskIds;
use hr_image::local::{LocalBuilder, LocalTool};
use hr_image::{BuildError, BuildJob, BuildLog, BuildLogLine, BuildProgress, ImageBuilder};
use tokio_util::sync::CancellationToken;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn job(workspace: &Path, image: &str, variants: &[Variant], push: bool) -> BuildJob {
    let templates = TagTemplates::default();
    BuildJob {
        request: BuildRequest {
            context: ".".into(),
            variants: variants
                .iter()
                .map(|&variant| VariantRequest {
                    variant,
                    dockerfile: variant.default_dockerfile().to_string(),
                    tags: actions::image_build::dual_tags(image, SHA, variant, &templates),
                })
                .collect(),
            build_args: vec![("GREETING".into(), "hi".into())],
            target: None,
            labels: Vec::new(),
            push,
            cache: true,
            skip_unchanged: false,
            outputs_for: OutputsStyle::Dual,
        },
        workspace: workspace.to_path_buf(),
        sha: SHA.to_string(),
        task: TaskIds {
            task: "t1".into(),
            job: "build".into(),
            started_at: SystemTime::now(),
        },
        timeout: Duration::from_secs(120),
        insecure_registries: image
            .split_once('/')
            .map(|(host, _)| vec![host.to_string()])
            .unwrap_or_default(),
    }
}

fn write_context(dir: &Path, docker: &str, k8s: &str) {
    std::fs::write(dir.join("hello.txt"), "hello\n").unwrap();
    std::fs::write(dir.join("Dockerfile"), docker).unwrap();
    std::fs::write(dir.join("Dockerfile.k8s"), k8s).unwrap();
}

type Recorded = (
    Arc<Mutex<Vec<BuildLogLine>>>,
    Arc<Mutex<Vec<BuildProgress>>>,
);

fn recording_log() -> (BuildLog, Recorded) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let events = Arc::new(Mutex::new(Vec::new()));
    let (l, e) = (Arc::clone(&lines), Arc::clone(&events));
    let log = BuildLog::new(move |line| l.lock().unwrap().push(line))
        .with_progress(move |event| e.lock().unwrap().push(event));
    (log, (lines, events))
}

/// Runs a build on a fresh runtime (the registry fixture's blocking client must stay out
/// of async code).
trait RunBlocking {
    fn run(
        &self,
        job: &BuildJob,
        log: &BuildLog,
        cancel: &CancellationToken,
    ) -> Result<hr_image::BuildOutcome, BuildError>;
}

impl RunBlocking for ImageBuilder {
    fn run(
        &self,
        job: &BuildJob,
        log: &BuildLog,
        cancel: &CancellationToken,
    ) -> Result<hr_image::BuildOutcome, BuildError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(self.build(job, log, cancel))
    }
}

fn tools_present() -> bool {
    require_program("buildah", "the local builder tests build with buildah")
}

#[test]
fn dual_build_pushes_five_tags_with_the_reported_digests() {
    let Some(registry) = Registry::start() else {
        return;
    };
    if !tools_present() {
        return;
    }
    let storage = PrivateStorage::new();
    let ws = tempfile::tempdir().unwrap();
    write_context(
        ws.path(),
        "FROM scratch\nARG GREETING\nCOPY hello.txt /docker.txt\n",
        "FROM scratch\nCOPY hello.txt /k8s.txt\n",
    );
    let image = format!("{}/local/app", registry.host);
    let job = job(ws.path(), &image, &Variant::ALL, true);
    let (log, (lines, events)) = recording_log();
    let outcome = storage
        .builder()
        .run(&job, &log, &CancellationToken::new())
        .unwrap_or_else(|e| panic!("build failed: {e}\n{:#?}", lines.lock().unwrap()));

    let mut expected = vec![
        "docker-latest".to_string(),
        format!("docker-{SHA}"),
        "k8s-latest".to_string(),
        format!("k8s-{SHA}"),
        "latest".to_string(),
    ];
    expected.sort();
    assert_eq!(registry.tags("local/app"), expected);
    assert_eq!(outcome.images.len(), 2);
    let docker = &outcome.images[0];
    let k8s = &outcome.images[1];
    assert_eq!(
        (docker.variant, k8s.variant),
        (Variant::Docker, Variant::K8s)
    );
    assert_ne!(docker.digest, k8s.digest);
    for tag in ["latest", "docker-latest", &format!("docker-{SHA}")] {
        assert_eq!(
            registry.digest("local/app", tag),
            Some(docker.digest.clone())
        );
    }
    for tag in ["k8s-latest", &format!("k8s-{SHA}")] {
        assert_eq!(registry.digest("local/app", tag), Some(k8s.digest.clone()));
    }
    assert_eq!(docker.tags, job.request.variants[0].tags);

    let lines = lines.lock().unwrap();
    for variant in Variant::ALL {
        assert!(
            lines
                .iter()
                .any(|l| l.variant == Some(variant) && l.line.contains("COMMIT")),
            "no COMMIT line of {variant} in {lines:#?}"
        );
    }
    assert!(lines.iter().any(|l| l.line.starts_with("$ buildah push")));
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 4, "{events:#?}");
    assert!(events.contains(&BuildProgress::Started(Variant::K8s)));
    assert!(events.contains(&BuildProgress::Built(k8s.clone())));
}

#[test]
fn without_push_the_local_digest_is_reported_and_nothing_is_pushed() {
    let Some(registry) = Registry::start() else {
        return;
    };
    if !tools_present() {
        return;
    }
    let storage = PrivateStorage::new();
    let ws = tempfile::tempdir().unwrap();
    write_context(ws.path(), "FROM scratch\nCOPY hello.txt /a\n", "unused");
    let image = format!("{}/local/nopush", registry.host);
    let job = job(ws.path(), &image, &[Variant::Docker], false);
    let outcome = storage
        .builder()
        .run(&job, &BuildLog::discard(), &CancellationToken::new())
        .unwrap();
    assert!(
        outcome.images[0].digest.starts_with("sha256:"),
        "{outcome:?}"
    );
    assert!(registry.tags("local/nopush").is_empty());
}

#[test]
fn a_failing_variant_is_named_with_the_builders_last_lines() {
    let Some(registry) = Registry::start() else {
        return;
    };
    if !tools_present() {
        return;
    }
    let storage = PrivateStorage::new();
    let ws = tempfile::tempdir().unwrap();
    write_context(
        ws.path(),
        "FROM scratch\nCOPY hello.txt /a\n",
        "FROM scratch\nCOPY missing-file.txt /a\n",
    );
    let image = format!("{}/local/broken", registry.host);
    let job = job(ws.path(), &image, &Variant::ALL, true);
    let (log, (_, events)) = recording_log();
    let error = storage
        .builder()
        .run(&job, &log, &CancellationToken::new())
        .unwrap_err();
    let BuildError::Failed { variant, message } = &error else {
        panic!("expected a failed build, got {error:?}");
    };
    assert_eq!(*variant, Variant::K8s);
    assert!(message.contains("missing-file.txt"), "{message}");
    assert!(
        error.to_string().starts_with("k8s image build failed"),
        "{error}"
    );
    // The docker variant is independent and still pushed.
    assert_eq!(registry.tags("local/broken").len(), 3);
    let events = events.lock().unwrap();
    assert!(events.iter().any(|e| matches!(
        e,
        BuildProgress::Failed {
            variant: Variant::K8s,
            ..
        }
    )));
}

/// A loopback port that accepts connections and never answers: buildah pulling a base
/// image from it hangs until it is stopped.
fn silent_registry() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    (listener, host)
}

fn hung_job(ws: &Path, silent: &str, timeout: Duration) -> BuildJob {
    std::fs::write(
        ws.join("Dockerfile"),
        format!("FROM {silent}/never/answers:1\n"),
    )
    .unwrap();
    let mut job = job(ws, "127.0.0.1:1/local/hung", &[Variant::Docker], true);
    job.timeout = timeout;
    job
}

fn no_buildah_left(storage: &PrivateStorage) -> bool {
    let needle = storage.conf().display().to_string();
    std::fs::read_dir("/proc").unwrap().flatten().all(|entry| {
        std::fs::read(entry.path().join("environ"))
            .map(|env| !String::from_utf8_lossy(&env).contains(&needle))
            .unwrap_or(true)
    })
}

#[test]
fn cancel_stops_a_hung_buildah_and_reports_cancelled() {
    if !tools_present() {
        return;
    }
    let (_listener, silent) = silent_registry();
    let storage = PrivateStorage::new();
    let ws = tempfile::tempdir().unwrap();
    let job = hung_job(ws.path(), &silent, Duration::from_secs(120));
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        trigger.cancel();
    });
    let started = Instant::now();
    let error = storage
        .builder()
        .run(&job, &BuildLog::discard(), &cancel)
        .unwrap_err();
    assert!(matches!(error, BuildError::Cancelled), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(
        no_buildah_left(&storage),
        "a buildah process outlived the cancel"
    );
}

#[test]
fn the_job_timeout_stops_a_hung_buildah() {
    if !tools_present() {
        return;
    }
    let (_listener, silent) = silent_registry();
    let storage = PrivateStorage::new();
    let ws = tempfile::tempdir().unwrap();
    let job = hung_job(ws.path(), &silent, Duration::from_secs(2));
    let error = storage
        .builder()
        .run(&job, &BuildLog::discard(), &CancellationToken::new())
        .unwrap_err();
    assert!(
        matches!(error, BuildError::TimedOut(d) if d == Duration::from_secs(2)),
        "{error:?}"
    );
    assert!(
        no_buildah_left(&storage),
        "a buildah process outlived the timeout"
    );
}

#[test]
fn a_missing_program_is_unavailable() {
    let ws = tempfile::tempdir().unwrap();
    write_context(ws.path(), "FROM scratch\n", "FROM scratch\n");
    let job = job(ws.path(), "127.0.0.1:1/x", &[Variant::Docker], true);
    let builder = ImageBuilder::Local(LocalBuilder::new(LocalTool::Podman, "/nonexistent/podman"));
    assert_eq!(builder.name(), "podman");
    let error = builder
        .run(&job, &BuildLog::discard(), &CancellationToken::new())
        .unwrap_err();
    assert!(
        matches!(&error, BuildError::Unavailable { builder: "podman", message } if message.contains("/nonexistent/podman")),
        "{error:?}"
    );
}

#[test]
fn a_base_image_on_an_insecure_registry_is_pulled_without_tls() {
    let Some(registry) = Registry::start() else {
        return;
    };
    if !tools_present() {
        return;
    }
    // Push a base image, then build on top of it from a fresh storage (so it must be pulled).
    let ws = tempfile::tempdir().unwrap();
    write_context(
        ws.path(),
        "FROM scratch\nCOPY hello.txt /base.txt\n",
        "unused",
    );
    let base = format!("{}/local/base", registry.host);
    let job_base = job(ws.path(), &base, &[Variant::Docker], true);
    PrivateStorage::new()
        .builder()
        .run(&job_base, &BuildLog::discard(), &CancellationToken::new())
        .unwrap();

    let app_ws = tempfile::tempdir().unwrap();
    write_context(
        app_ws.path(),
        &format!("FROM {base}:latest\nCOPY hello.txt /app.txt\n"),
        "unused",
    );
    let image = format!("{}/local/on-base", registry.host);
    let mut job = job(app_ws.path(), &image, &[Variant::Docker], true);
    let (log, (lines, _)) = recording_log();
    let outcome = PrivateStorage::new()
        .builder()
        .run(&job, &log, &CancellationToken::new())
        .unwrap_or_else(|e| panic!("{e}\n{:#?}", lines.lock().unwrap()));
    assert_eq!(
        registry.digest("local/on-base", "latest"),
        Some(outcome.images[0].digest.clone())
    );
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.line.starts_with("$ buildah bud --tls-verify=false"))
    );

    // Without the registry marked insecure, the pull fails: the flag is what made it work.
    job.insecure_registries.clear();
    let error = PrivateStorage::new()
        .builder()
        .run(&job, &BuildLog::discard(), &CancellationToken::new())
        .unwrap_err();
    assert!(matches!(error, BuildError::Failed { .. }), "{error:?}");
}
