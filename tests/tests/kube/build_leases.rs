//! Build leases against the fake API server: a build holds a Lease in its namespace and
//! renews it; the daemon's reaper deletes the namespace of a build whose lease stopped
//! moving (its runner is gone, whichever runner it was) and leaves live builds alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use harness::fake_kube::FakeKubeOptions;
use hr_cluster::leases::{BUILD_LEASE_NAME, hold_build_lease, process_instance};
use hr_image::BuildLog;
use hr_image::kaniko::{KanikoBuilder, Variant};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio_util::sync::CancellationToken;

use harness::kaniko::*;

fn lease(holder: &str, runner: &str, duration_s: i32) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(BUILD_LEASE_NAME.to_string()),
            labels: Some(BTreeMap::from([
                (
                    "app.kubernetes.io/managed-by".to_string(),
                    "hybrid-runner".to_string(),
                ),
                ("hybrid-runner/runner-id".to_string(), runner.to_string()),
            ])),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.to_string()),
            lease_duration_seconds: Some(duration_s),
            renew_time: Some(MicroTime(Timestamp::now())),
            ..Default::default()
        }),
    }
}

fn renew_time(rt: &tokio::runtime::Runtime, client: &kube::Client, ns: &str) -> Option<String> {
    rt.block_on(async {
        let api: Api<Lease> = Api::namespaced(client.clone(), ns);
        let lease = api.get_opt(BUILD_LEASE_NAME).await.unwrap()?;
        Some(lease.spec?.renew_time?.0.to_string())
    })
}

/// The reaper (as the daemon runs it, every 200 ms here) deletes the namespace of another
/// runner's build whose lease stood still past 1.5 × its 1 s duration, and keeps one whose
/// lease another process keeps renewing, one without a lease, and this process's own.
#[test]
fn the_reaper_deletes_builds_whose_runner_stopped_renewing_and_keeps_live_ones() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let rt = runtime();
    let _in_runtime = rt.enter();
    let client = rig.fake.client();
    let far = "2999-01-01T00:00:00Z";
    rt.block_on(async {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        for (ns, runner) in [
            ("hr-orphan", "crashed-runner"),
            ("hr-live", "busy-runner"),
            ("hr-own", rig.runner_id.as_str()),
            ("hr-no-lease", "old-version-runner"),
        ] {
            namespaces
                .create(&PostParams::default(), &namespace(ns, runner, far, true))
                .await
                .unwrap();
        }
        for (ns, holder, runner) in [
            ("hr-orphan", "crashed-process", "crashed-runner"),
            ("hr-live", "busy-process", "busy-runner"),
            ("hr-own", process_instance(), rig.runner_id.as_str()),
        ] {
            Api::<Lease>::namespaced(client.clone(), ns)
                .create(&PostParams::default(), &lease(holder, runner, 1))
                .await
                .unwrap();
        }
    });
    let stop = CancellationToken::new();
    let reaper = rt.spawn(
        hr_gitea::daemon::startup::reap_build_namespaces_periodically(
            Some(rig.kubeconfig.clone()),
            None,
            rig.config(),
            Duration::from_millis(200),
            stop.clone(),
        ),
    );
    // busy-runner renews every 300 ms (its lease would lapse after 1.5 s without).
    let renewals = {
        let client = client.clone();
        rt.spawn(async move {
            let api: Api<Lease> = Api::namespaced(client, "hr-live");
            loop {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let patch = serde_json::json!({"spec": {"renewTime": MicroTime(Timestamp::now())}});
                api.patch(
                    BUILD_LEASE_NAME,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .unwrap();
            }
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while active_namespaces(&rig).contains(&"hr-orphan".to_string()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the orphaned build's namespace was not reaped"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Three more seconds of passes: the others stay.
    std::thread::sleep(Duration::from_secs(3));
    let mut left = active_namespaces(&rig);
    left.sort();
    assert_eq!(left, ["hr-live", "hr-no-lease", "hr-own"]);
    stop.cancel();
    renewals.abort();
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), reaper).await })
        .expect("the reaper ends when stopped")
        .unwrap();
    // The reaper found leases by listing them once per pass, cluster-wide.
    assert!(rig.fake.requests().iter().any(|r| r.method == "GET"
        && r.path == "/apis/coordination.k8s.io/v1/leases"
        && r.query.iter().any(|(k, _)| k == "labelSelector")));
}

/// A build creates its namespace's lease, held by this process, and renews it while it
/// runs.
#[test]
fn a_build_holds_a_lease_and_renews_it() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let rt = runtime();
    let _in_runtime = rt.enter();
    let client = rig.fake.client();
    // The lease of a real build: created in its namespace, held by this process.
    let ctx = rig.context("leased", &[("Dockerfile", DOCKERFILE), ("hello.txt", "a")]);
    let job = rig.job(&ctx, &rig.image("leased"), &[Variant::Docker]);
    let outcome = rt.block_on(async {
        let builder = KanikoBuilder::connect(Some(&rig.kubeconfig), None, rig.config())
            .await
            .unwrap();
        builder
            .build(&job, &BuildLog::discard(), &CancellationToken::new())
            .await
    });
    outcome.unwrap();
    let created: Vec<_> = rig
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/leases"))
        .collect();
    assert_eq!(created.len(), 1, "one lease per build");
    let body: Lease = serde_json::from_value(created[0].body.clone().unwrap()).unwrap();
    assert_eq!(
        body.spec.unwrap().holder_identity.as_deref(),
        Some(process_instance())
    );
    rig.assert_no_namespace_left();

    // Renewal, with a short period: renewTime moves.
    rt.block_on(async {
        Api::<Namespace>::all(client.clone())
            .create(
                &PostParams::default(),
                &namespace("hr-renewed", &rig.runner_id, "2999-01-01T00:00:00Z", true),
            )
            .await
            .unwrap();
    });
    let holder = rt.spawn(hold_build_lease(
        client.clone(),
        "hr-renewed".to_string(),
        rig.runner_id.clone(),
        Duration::from_millis(100),
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let first = loop {
        if let Some(t) = renew_time(&rt, &client, "hr-renewed") {
            break t;
        }
        assert!(std::time::Instant::now() < deadline, "no lease created");
        std::thread::sleep(Duration::from_millis(20));
    };
    while renew_time(&rt, &client, "hr-renewed").as_deref() == Some(first.as_str()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the lease was not renewed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    holder.abort();
    assert!(rig.fake.requests().iter().any(|r| r.method == "PATCH"
        && r.path
            == format!(
                "/apis/coordination.k8s.io/v1/namespaces/hr-renewed/leases/{BUILD_LEASE_NAME}"
            )));
}
