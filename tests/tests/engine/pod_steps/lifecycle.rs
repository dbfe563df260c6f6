//! The job pod and its namespace on every path (a pod that cannot start, a cancel while
//! it starts, a dropped task), and the permissions it needs (the rendered ClusterRole,
//! `check --job-pods`).

use std::time::{Duration, Instant};

use harness::fake_kube::FakeKubeOptions;
use hr_engine::events::{Event, EventSink, Outcome};
use hr_gitea::task::run_task;
use tokio_util::sync::CancellationToken;

use super::common::*;

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
    use hr_image::kaniko::{CheckOptions, CheckStatus, KanikoBuilder, KanikoConfig, run_checks};
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
    let status_of = |checks: &[hr_image::kaniko::Check], name: &str| {
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
