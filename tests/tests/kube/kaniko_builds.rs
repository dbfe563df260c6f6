//! The Kaniko builder against the loopback fake Kubernetes API server, whose kubelet builds
//! every Job's context with buildah and pushes to a real registry: dual builds with their
//! five tags and digests, live pod logs, failures that name the variant, fail-fast pod
//! reasons, cancel and timeout, API errors, same-named namespaces, and the runner-side
//! latency to the Jobs created. Every manifest sent is validated with
//! `kubernetes-validate --strict`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use harness::fake_kube::{FakeKubeOptions, validate_manifests};
use hr_image::kaniko::{KanikoBuilder, KanikoConfig, Variant};
use hr_image::{BuildError, ImageBuilder};
use tokio_util::sync::CancellationToken;

use harness::kaniko::*;

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
    let expected = harness::registry::five_dual_tags(SHA);
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
    for dir in ["crates"] {
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
                message.contains("was deleted before it finished")
                    || message.contains("is being deleted"),
                "{message}"
            )
        }
        other => panic!("expected a failed build, got {other:?}"),
    }
    // The message (not a timeout) shows the deletion ended the build; no wall-clock bound,
    // since the CLI run above may include building the binary on a loaded machine.
    eprintln!("build ended {:?} after it started", started.elapsed());
    rig.assert_no_namespace_left();
}

/// The args of every Kaniko container the runner sent, in order.
fn sent_kaniko_args(rig: &Rig) -> Vec<Vec<String>> {
    rig.fake
        .sent_manifests()
        .iter()
        .filter(|m| m["kind"] == "Job")
        .flat_map(|m| {
            m["spec"]["template"]["spec"]["containers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|c| c["name"] == "kaniko")
        .map(|c| {
            c["args"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect()
        })
        .collect()
}

#[test]
fn a_build_that_pushes_nothing_runs_without_the_cache_unless_a_cache_repo_is_set() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let ctx = rig.context("nopush", &[("Dockerfile", DOCKERFILE), ("hello.txt", "x")]);
    let mut job = rig.job(&ctx, &rig.image("nopush"), &[Variant::Docker]);
    job.request.push = false;
    job.request.cache = true;
    // Kaniko refuses --cache=true --no-push without --cache-repo (the fake as well), so
    // the runner turns the cache off for this build and says so.
    let config = KanikoConfig {
        cache: true,
        ..rig.config()
    };
    let (result, lines) = build(&rig, config, &job, CancellationToken::new());
    let lines: Vec<String> = lines.into_iter().map(|l| l.line).collect();
    result.unwrap_or_else(|e| panic!("build failed: {e}\n{}", lines.join("\n")));
    assert!(
        lines.iter().any(|l| l.contains("the layer cache is off")),
        "{lines:?}"
    );
    let args = sent_kaniko_args(&rig);
    assert_eq!(args.len(), 1, "{args:?}");
    assert!(args[0].contains(&"--no-push".to_string()), "{:?}", args[0]);
    assert!(
        !args[0].iter().any(|a| a.starts_with("--cache")),
        "{:?}",
        args[0]
    );
    assert!(rig.registry.tags("nopush").is_empty());
    rig.assert_no_namespace_left();
    validate_manifests(&rig.fake.sent_manifests());

    // With a cache repository the cache stays on, in that repository.
    let Some(rig) = harness::kaniko::rig(FakeKubeOptions::default()) else {
        return;
    };
    let ctx = rig.context("nopush", &[("Dockerfile", DOCKERFILE), ("hello.txt", "x")]);
    let mut job = rig.job(&ctx, &rig.image("nopush"), &[Variant::Docker]);
    job.request.push = false;
    job.request.cache = true;
    let cache_repo = rig.image("nopush-cache");
    let config = KanikoConfig {
        cache: true,
        cache_repo: Some(cache_repo.clone()),
        ..rig.config()
    };
    let (result, lines) = build(&rig, config, &job, CancellationToken::new());
    let lines: Vec<String> = lines.into_iter().map(|l| l.line).collect();
    result.unwrap_or_else(|e| panic!("build failed: {e}\n{}", lines.join("\n")));
    assert!(
        !lines.iter().any(|l| l.contains("the layer cache is off")),
        "{lines:?}"
    );
    let args = sent_kaniko_args(&rig);
    for expected in [
        "--no-push".to_string(),
        "--cache=true".to_string(),
        format!("--cache-repo={cache_repo}"),
    ] {
        assert!(args[0].contains(&expected), "{expected} missing: {args:?}");
    }
    rig.assert_no_namespace_left();
    validate_manifests(&rig.fake.sent_manifests());
}

#[test]
fn the_fake_kaniko_refuses_the_cache_without_a_push_or_a_cache_repo() {
    // The fake enforces Kaniko's rule: a Job sent with that combination fails with
    // Kaniko's words, so a runner that sent it would fail the test above.
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let ctx = rig.context("refused", &[("Dockerfile", DOCKERFILE), ("hello.txt", "x")]);
    let job = rig.job(&ctx, &rig.image("refused"), &[Variant::Docker]);
    // The request pushes, so the runner keeps --cache=true; a template argument adds
    // --no-push behind its back, the way an old runner sent it.
    let templates = rig.dir.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    let builtin = hr_image::kaniko::Template::KanikoJob;
    std::fs::write(
        templates.join(builtin.file_name()),
        format!("{}          args: [\"--no-push\"]\n", builtin.builtin()),
    )
    .unwrap();
    let config = KanikoConfig {
        cache: true,
        template_dir: Some(templates),
        ..rig.config()
    };
    let mut job = job;
    job.request.cache = true;
    let (result, lines) = build(&rig, config, &job, CancellationToken::new());
    let lines: Vec<String> = lines.into_iter().map(|l| l.line).collect();
    assert!(result.is_err(), "the build should fail: {lines:?}");
    assert!(
        lines.iter().any(|l| l.contains(
            "Error: cache flags invalid: if using cache with --no-push, specify cache repo with --cache-repo"
        )),
        "{lines:?}"
    );
    rig.assert_no_namespace_left();
}

/// A pod the API server refuses (Pod Security, the namespace's ResourceQuota, its
/// LimitRange) never comes, and only the Job's `FailedCreate` Event says so: the build fails at once with
/// the API server's message, rather than waiting out its timeout, and its namespace is
/// still deleted.
#[test]
fn a_kaniko_pod_refused_by_pod_security_quota_or_limit_range_fails_at_once_with_the_reason() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let ctx = rig.context("refused", &[("Dockerfile", DOCKERFILE), ("hello.txt", "x")]);
    let job = rig.job(&ctx, &rig.image("refused"), &[Variant::Docker]);
    let quota = KanikoConfig {
        quota: Some([("pods".to_string(), "0".to_string())].into()),
        ..rig.config()
    };
    let limits = KanikoConfig {
        limit_range: Some(hr_image::kaniko::LimitRangeConfig {
            max: [("memory".to_string(), "2Gi".to_string())].into(),
            ..Default::default()
        }),
        ..rig.config()
    };
    // A custom Job template whose pod Pod Security `baseline` (the build namespace's
    // level) refuses.
    let templates = rig.dir.path().join("privileged-templates");
    std::fs::create_dir_all(&templates).unwrap();
    let builtin = std::fs::read_to_string(
        harness::workspace_root().join("crates/image/templates/kaniko/kaniko-job.yaml"),
    )
    .unwrap();
    std::fs::write(
        templates.join("kaniko-job.yaml"),
        format!(
            "{}\n          securityContext:\n            privileged: true\n",
            builtin.trim_end()
        ),
    )
    .unwrap();
    let privileged = KanikoConfig {
        template_dir: Some(templates),
        ..rig.config()
    };
    for (config, expected) in [
        (
            privileged,
            "is forbidden: violates PodSecurity \"baseline:latest\": privileged (container \"kaniko\" must not set securityContext.privileged=true)",
        ),
        (
            quota,
            "is forbidden: exceeded quota: build-quota, requested: pods=1, used: pods=0, limited: pods=0",
        ),
        (
            limits,
            "is forbidden: maximum memory usage per Container is 2Gi, but limit is 4Gi",
        ),
    ] {
        let started = Instant::now();
        let (result, _) = build(&rig, config, &job, CancellationToken::new());
        let elapsed = started.elapsed();
        match result {
            Err(BuildError::Failed { variant, message }) => {
                assert_eq!(variant, Variant::Docker);
                assert!(message.contains(expected), "{message}");
                assert!(
                    message.contains("the API server refused the pod of Job kaniko-docker"),
                    "{message}"
                );
            }
            other => panic!("expected a failed build, got {other:?}"),
        }
        assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
        rig.assert_no_namespace_left();
    }
    assert!(rig.registry.tags("refused").is_empty());
    validate_manifests(&rig.fake.sent_manifests());
}

/// A Kaniko pod the kubelet evicts (node pressure) fails the Job with
/// `BackoffLimitExceeded`, which alone does not say why: the build's error names the
/// eviction and its message, from the pod's `status.reason` / `DisruptionTarget`.
#[test]
fn an_evicted_kaniko_pod_is_named_in_the_error() {
    let mut options = FakeKubeOptions::default();
    let eviction = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 38Mi. Container kaniko was using 3500Mi, request is 1Gi, has larger consumption of memory.";
    options.faults.evict = Some(eviction.to_string());
    let Some(rig) = rig(options) else {
        return;
    };
    let ctx = rig.context("evicted", &[("Dockerfile", DOCKERFILE), ("hello.txt", "x")]);
    let job = rig.job(&ctx, &rig.image("evicted"), &[Variant::Docker]);
    let (result, _) = build(&rig, rig.config(), &job, CancellationToken::new());
    match result {
        Err(BuildError::Failed { variant, message }) => {
            assert_eq!(variant, Variant::Docker);
            assert!(message.contains("BackoffLimitExceeded"), "{message}");
            assert!(
                message.contains(&format!("was ended by the cluster (Evicted: {eviction})")),
                "{message}"
            );
        }
        other => panic!("expected a failed build, got {other:?}"),
    }
    rig.assert_no_namespace_left();
}
