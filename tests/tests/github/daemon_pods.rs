//! A GitHub runner with a `kubernetes://IMAGE` label runs its jobs in a pod of the job's
//! own namespace, as a Gitea runner does: the real `hybrid-runner daemon` against the fake
//! GitHub and the fake Kubernetes API server (whose kubelet runs the steps in a sandbox).
//! A job's `container:` and `services:` put it in a pod whatever the label. Skipped with a
//! notice where the sandbox cannot run.

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

/// A GitHub job's `container:` and `services:` (the message's `jobContainer` and
/// `jobServiceContainers` template tokens, expressions left for the runner as actions/runner
/// leaves them) on a runner with host labels only: the job still runs in a pod, its service
/// a sidecar reached by name, the secret in the service's env kept out of the manifest.
#[test]
fn a_github_job_container_and_service_run_in_a_pod() {
    if !sandbox_available() {
        return;
    }
    let Some(registry) = harness::registry::Registry::start() else {
        return;
    };
    let (Some(busybox), Some(echo)) = (
        harness::images::busybox_image(&registry),
        harness::images::echo_image(&registry, 7003, 0),
    ) else {
        return;
    };
    let kube = FakeKube::start(FakeKubeOptions::default());
    let fake = FakeGitHub::start();
    let home = RunnerHome::register_github(&fake, "gh-services", "linux:host", "", &[]);
    let step = "77777777-0000-4000-8000-0000000000b1";
    let mut run = script(
        step,
        "with-service",
        "echo \"reply: $(echo over-the-wire | nc -w 2 cache 7003) port ${{ job.services.cache.ports['7003'] }}\"",
    );
    // No `shell:` in the workflow: GitHub sends none, and the image (busybox) has no bash.
    run["inputs"]["map"]
        .as_array_mut()
        .unwrap()
        .retain(|e| e["key"] != "shell");
    let mut job_message = message(vec![run]);
    job_message["jobContainer"] = serde_json::json!({"type": 2, "map": [
        {"key": "image", "value": busybox},
    ]});
    job_message["jobServiceContainers"] = serde_json::json!({"type": 2, "map": [
        {"key": "cache", "value": {"type": 2, "map": [
            {"key": "image", "value": echo},
            {"key": "ports", "value": {"type": 1, "seq": ["7003"]}},
            {"key": "env", "value": {"type": 2, "map": [
                {"key": "TOKEN", "value": {"type": 3, "expr": "secrets.MY_SECRET"}},
            ]}},
            {"key": "options", "value": "--health-cmd \"nc -w 1 localhost 7003 </dev/null\" --health-interval 1s --health-retries 20"},
        ]}},
    ]});
    let job = fake.queue_job(&home.uuid, job_message);
    let kubeconfig = kube.write_kubeconfig(home.dir.path());
    let mut daemon = home.start(&DaemonOptions::default().arg("--once").env(
        "HYBRID_RUNNER_KUBERNETES_KUBECONFIG",
        kubeconfig.to_str().unwrap(),
    ));
    let status = daemon
        .wait_exit(Duration::from_secs(120))
        .unwrap_or_else(|| panic!("the daemon did not end:\n{}", daemon.output()));
    assert!(status.success(), "{}", daemon.output());
    let record = fake.job(&job.runner_request_id).unwrap();
    let job_log = String::from_utf8_lossy(&fake.log(&job.job_id, None).unwrap().data).into_owned();
    assert_eq!(
        record.completions[0]["conclusion"], "succeeded",
        "{job_log}"
    );
    let log =
        String::from_utf8_lossy(&fake.log(&job.job_id, Some(step)).unwrap().data).into_owned();
    assert!(
        log.contains("reply: over-the-wire port 7003"),
        "{log}\n{job_log}"
    );
    let manifests = kube.sent_manifests();
    let pod = manifests.iter().find(|m| m["kind"] == "Pod").unwrap();
    assert_eq!(pod["spec"]["containers"][0]["image"], busybox.as_str());
    assert_eq!(pod["spec"]["initContainers"][0]["image"], echo.as_str());
    assert!(!pod.to_string().contains("s3cr3t-value-42"));
    validate_manifests(&manifests);
    kube.assert_no_namespace_left();
}
