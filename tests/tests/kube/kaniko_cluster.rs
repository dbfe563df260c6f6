//! Cleanup and the cluster commands against the loopback fake Kubernetes API server: the
//! reaper deletes only this runner's expired namespaces, a build dropped or panicking still
//! deletes its namespace, and `check`, `status`, `logs` and `cleanup` run as the real
//! binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use harness::fake_kube::{DenyRule, FakeKubeOptions, validate_manifests};
use hr_cluster::{NamespaceGuard, reap_expired};
use hr_image::BuildLog;
use hr_image::kaniko::{KanikoBuilder, Variant};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;

use harness::kaniko::*;

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
fn reaper_deletes_only_expired_namespaces_of_this_runner() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    seed_namespaces(&rig);
    let deleted = runtime().block_on(async {
        reap_expired(
            &rig.fake.client(),
            &rig.config().runner_id,
            SystemTime::now(),
        )
        .await
    });
    assert_eq!(deleted.unwrap(), vec!["hr-old".to_string()]);
    let mut left = active_namespaces(&rig);
    left.sort();
    assert_eq!(left, ["hr-fresh", "hr-other-runner", "hr-unmanaged"]);
}

/// The daemon's reaper runs at start-up and then every interval: a namespace of this
/// runner that is expired after the first pass is deleted by a later one, and cancelling
/// ends the loop.
#[test]
fn the_daemon_reaper_runs_again_every_interval() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let stop = CancellationToken::new();
    let rt = runtime();
    let reaper = rt.spawn(
        hr_gitea::daemon::startup::reap_build_namespaces_periodically(
            Some(rig.kubeconfig.clone()),
            None,
            rig.config(),
            Duration::from_millis(300),
            stop.clone(),
        ),
    );
    // Left behind after the start-up pass (its list of namespaces).
    let listed = || {
        rig.fake
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path == "/api/v1/namespaces")
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while listed() == 0 {
        assert!(std::time::Instant::now() < deadline, "no start-up pass");
        std::thread::sleep(Duration::from_millis(10));
    }
    rt.block_on(async {
        Api::<Namespace>::all(rig.fake.client())
            .create(
                &PostParams::default(),
                &namespace("hr-late", &rig.runner_id, "2020-01-01T00:00:00Z", true),
            )
            .await
            .unwrap();
    });
    assert!(active_namespaces(&rig).contains(&"hr-late".to_string()));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while active_namespaces(&rig).contains(&"hr-late".to_string()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the left-behind namespace was not reaped again"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.cancel();
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), reaper).await })
        .expect("the reaper ends when stopped")
        .unwrap();
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
        // The default context mode loads large contexts with a loader pod into a PVC.
        "ok   permission pods: create, get, list, watch, delete (allowed)",
        "ok   permission persistentvolumeclaims: create, get, delete (allowed)",
        "ok   permission pods/attach: get, create (allowed)",
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
    // The namespace, ConfigMap and access reviews it sent are valid objects.
    validate_manifests(&rig.fake.sent_manifests());

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
    // --follow on a finished container prints the whole log and ends.
    let (code, followed, _) = run_cli(&rig, &["logs", &ns, "--follow"]);
    assert_eq!(code, 0);
    assert_eq!(followed, stdout);
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

/// `hybrid-runner build --builder kaniko` runs the dual build through the fake cluster and
/// pushes all five tags.
#[test]
fn build_command_with_the_kaniko_builder() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let ctx = rig.context(
        "cli-build",
        &[
            ("Dockerfile", DOCKERFILE),
            ("Dockerfile.k8s", DOCKERFILE_K8S),
            ("hello.txt", "built by the CLI\n"),
        ],
    );
    let image = rig.image("cli-build");
    let out = harness::cli::command()
        .arg("build")
        .arg(&ctx)
        .args(["--image", &image, "--builder", "kaniko", "--sha", SHA])
        .args(["--insecure-registry", &rig.registry.host])
        .arg("--kubeconfig")
        .arg(&rig.kubeconfig)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let mut tags = rig.registry.tags("cli-build");
    tags.sort();
    let expected = harness::registry::five_dual_tags(SHA);
    assert_eq!(tags, expected, "{stdout}\n{stderr}");
    rig.assert_no_namespace_left();
}
