//! A GitHub runner with a `kubernetes://IMAGE` label runs its jobs in a pod of the job's
//! own namespace, as a Gitea runner does: the real `hybrid-runner daemon` against the fake
//! GitHub and the fake Kubernetes API server (whose kubelet runs the steps in a sandbox).
//! Skipped with a notice where the sandbox cannot run.

use std::time::Duration;

use harness::daemon_process::{DaemonOptions, RunnerHome};
use harness::fake_github::FakeGitHub;
use harness::fake_kube::{FakeKube, FakeKubeOptions, sandbox_available, validate_manifests};

use crate::daemon_jobs::{message, script};

#[test]
fn a_kubernetes_label_runs_a_github_job_in_a_pod_of_its_namespace() {
    if !sandbox_available() {
        return;
    }
    let kube = FakeKube::start(FakeKubeOptions::default());
    let fake = FakeGitHub::start();
    let home = RunnerHome::register_github(&fake, "gh-pods", "pods:kubernetes://alpine:3", "", &[]);
    let step = "77777777-0000-4000-8000-0000000000a1";
    let job = fake.queue_job(
        &home.uuid,
        message(vec![script(
            step,
            "in-pod",
            "echo \"in the pod: $GREETING ${{ secrets.MY_SECRET }}\"; echo v=7 >> \"$GITHUB_OUTPUT\"",
        )]),
    );
    let kubeconfig = kube.write_kubeconfig(home.dir.path());
    let mut daemon = home.start(&DaemonOptions::default().arg("--once").env(
        "HYBRID_RUNNER_KUBERNETES_KUBECONFIG",
        kubeconfig.to_str().unwrap(),
    ));
    let status = daemon
        .wait_exit(Duration::from_secs(120))
        .unwrap_or_else(|| panic!("the daemon did not end:\n{}", daemon.output()));
    let output = daemon.output();
    assert!(status.success(), "{output}");
    let record = fake.job(&job.runner_request_id).unwrap();
    let job_log = String::from_utf8_lossy(&fake.log(&job.job_id, None).unwrap().data).into_owned();
    assert_eq!(
        record.completions[0]["conclusion"], "succeeded",
        "{job_log}"
    );
    assert!(
        job_log.contains("Label pods: the steps run in a pod"),
        "{job_log}"
    );
    let log =
        String::from_utf8_lossy(&fake.log(&job.job_id, Some(step)).unwrap().data).into_owned();
    assert!(log.contains("in the pod: hello ***"), "{log}");
    let manifests = kube.sent_manifests();
    let pod = manifests
        .iter()
        .find(|m| m["kind"] == "Pod")
        .unwrap_or_else(|| panic!("no pod: {job_log}"));
    assert_eq!(pod["spec"]["containers"][0]["image"], "alpine:3");
    assert!(
        !pod.to_string().contains("s3cr3t-value-42"),
        "the secret is in the pod's manifest"
    );
    validate_manifests(&manifests);
    // The job's namespace is gone.
    kube.assert_no_namespace_left();
}
