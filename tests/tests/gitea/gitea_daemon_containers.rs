#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Container jobs in Gitea tasks run by the real `hybrid-runner daemon`, registered with
//! Gitea's usual `ubuntu-latest:docker://IMAGE` label and configured for Kubernetes from
//! `HYBRID_RUNNER_KUBERNETES_*`: the label's image is the job pod's, a service is a sidecar
//! reached by name, and the job namespace is gone afterwards. Images: static busybox built
//! with buildah and served by a real loopback registry; the fake kubelet runs them.

use harness::daemon_checks::{describe_task, job_payload, row_count, wait_finished};
use harness::daemon_process::{DaemonOptions, RunnerHome};
use harness::fake_gitea::{FakeGitea, FakeGiteaOptions, pb};
use harness::fake_kube::{FakeKube, FakeKubeOptions, sandbox_available, validate_manifests};
use harness::images::{busybox_image, echo_image};
use harness::registry::Registry;

#[test]
fn a_docker_label_job_with_a_service_runs_in_a_pod_on_the_cluster() {
    if !sandbox_available() {
        return;
    }
    let Some(registry) = Registry::start() else {
        return;
    };
    let (Some(busybox), Some(echo)) = (busybox_image(&registry), echo_image(&registry, 7002, 1))
    else {
        return;
    };
    let kube = FakeKube::start(FakeKubeOptions::default());
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = RunnerHome::register(&fake, &format!("ubuntu-latest:docker://{busybox}"), "");
    let kubeconfig = kube.write_kubeconfig(home.dir.path());
    let job = format!(
        r#"    services:
      echo:
        image: {echo}
        options: --health-cmd "nc -w 1 localhost 7002 </dev/null" --health-interval 1s --health-retries 20
    steps:
      - run: echo "echo says $(echo hello-service | nc -w 2 echo 7002) in $(busybox | head -1 | cut -c1-7)"
"#
    );
    let id = fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &job_payload(&job)));
    let daemon = home.start(&DaemonOptions::default().env(
        "HYBRID_RUNNER_KUBERNETES_KUBECONFIG",
        kubeconfig.to_str().unwrap(),
    ));
    let task = wait_finished(&fake, &daemon, id);
    let all = describe_task(&task, &daemon);
    assert_eq!(task.result(), Some(pb::Result::Success), "{all}");
    assert_eq!(
        row_count(&task, "echo says hello-service in BusyBox"),
        1,
        "{all}"
    );
    let manifests = kube.sent_manifests();
    let pod = manifests
        .iter()
        .find(|m| m["kind"] == "Pod")
        .expect("a job pod");
    assert_eq!(pod["spec"]["containers"][0]["image"], busybox.as_str());
    assert_eq!(pod["spec"]["initContainers"][0]["name"], "svc-echo");
    kube.assert_no_namespace_left();
    validate_manifests(&manifests);
}
