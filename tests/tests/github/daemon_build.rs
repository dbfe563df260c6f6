//! An image build in a GitHub job, run by the real `hybrid-runner daemon` against the fake
//! GitHub: the built-in `hybrid-runner/build` step becomes two Kaniko Jobs on the fake
//! Kubernetes API server (whose kubelet builds with buildah) pushing the five dual tags to
//! a real registry, exactly as in a Gitea task; the build namespace is gone afterwards, and
//! the step's outputs reach later steps. Skipped with a notice when buildah or
//! docker-registry is missing outside CI.

use std::time::Duration;

use harness::daemon_process::{DaemonOptions, RunnerHome};
use harness::fake_github::FakeGitHub;
use harness::fake_kube::{FakeKube, FakeKubeOptions, validate_manifests};
use harness::registry::{Registry, require_program};
use serde_json::json;

use crate::daemon_jobs::{message, script};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

#[test]
fn a_build_step_of_a_github_job_becomes_two_kaniko_jobs_and_five_tags() {
    if !require_program("buildah", "the fake kubelet builds with buildah") {
        return;
    }
    let Some(registry) = Registry::start() else {
        return;
    };
    let kube = FakeKube::start(FakeKubeOptions::default());
    let fake = FakeGitHub::start();
    let home = RunnerHome::register_github(&fake, "gh-build", "", "", &[]);
    let build = json!({
        "type": "action", "id": "77777777-0000-4000-8000-000000000002", "contextName": "img",
        "reference": {"type": "repository", "name": "hybrid-runner/build", "ref": "v1", "repositoryType": "GitHub"},
        "inputs": {"type": 2, "map": [{"key": "image", "value": format!("{}/app", registry.host)}]},
        "condition": "success()",
    });
    let job = fake.queue_job(
        &home.uuid,
        message(vec![
            script(
                "77777777-0000-4000-8000-000000000001",
                "sources",
                "printf 'FROM scratch\\nCOPY hello.txt /hello.txt\\n' > Dockerfile\nprintf 'FROM scratch\\nCOPY hello.txt /hello-k8s.txt\\n' > Dockerfile.k8s\necho 'hello from a github job' > hello.txt",
            ),
            build,
            script(
                "77777777-0000-4000-8000-000000000003",
                "digest",
                "echo \"k8s-digest=${{ steps.img.outputs.k8s-digest }}\"",
            ),
        ]),
    );
    let kubeconfig = kube.write_kubeconfig(home.dir.path());
    let mut daemon = home.start(
        &DaemonOptions::default()
            .arg("--once")
            .env(
                "HYBRID_RUNNER_KUBERNETES_KUBECONFIG",
                kubeconfig.to_str().unwrap(),
            )
            .env(
                "HYBRID_RUNNER_KUBERNETES_INSECURE_REGISTRIES",
                registry.host.as_str(),
            ),
    );
    let status = daemon
        .wait_exit(Duration::from_secs(300))
        .unwrap_or_else(|| panic!("the daemon did not end:\n{}", daemon.output()));
    let output = daemon.output();
    assert!(status.success(), "{output}");
    let record = fake.job(&job.runner_request_id).unwrap();
    assert_eq!(record.completions.len(), 1, "{output}");
    assert_eq!(record.completions[0]["conclusion"], "succeeded", "{output}");
    let mut tags = registry.tags("app");
    tags.sort();
    assert_eq!(tags, harness::registry::five_dual_tags(SHA), "{output}");
    let k8s = registry.digest("app", "k8s-latest").unwrap();
    let digest_log = fake
        .log(&job.job_id, Some("77777777-0000-4000-8000-000000000003"))
        .unwrap();
    assert!(
        String::from_utf8_lossy(&digest_log.data).contains(&format!("k8s-digest={k8s}")),
        "{output}"
    );
    let manifests = kube.sent_manifests();
    assert_eq!(
        manifests.iter().filter(|m| m["kind"] == "Job").count(),
        2,
        "one Kaniko Job per variant:\n{output}"
    );
    validate_manifests(&manifests);
    kube.assert_no_namespace_left();
}
