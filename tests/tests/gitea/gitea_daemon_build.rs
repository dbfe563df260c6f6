#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Build steps in Gitea tasks run by the real `hybrid-runner daemon`: the built-in
//! `hybrid-runner/build` becomes Kaniko Jobs on the fake Kubernetes API server
//! (`harness::fake_kube`, whose kubelet builds with buildah) pushing five tags to a real
//! registry, with the builder configured from `HYBRID_RUNNER_KUBERNETES_*`; the build
//! namespace is gone afterwards; a cancel from the server mid-build deletes it too. Skipped
//! with a notice when buildah or docker-registry is missing outside CI.

use harness::daemon_checks::{WAIT, describe_task, job_payload, row_count, wait_finished};
use harness::daemon_process::{Daemon, DaemonOptions, RunnerHome};
use harness::fake_gitea::{FakeGitea, FakeGiteaOptions, SHA, pb};
use harness::fake_kube::{FakeKube, FakeKubeOptions, validate_manifests};
use harness::registry::{Registry, require_program};

fn home(fake: &FakeGitea) -> RunnerHome {
    RunnerHome::register(fake, "ubuntu-latest:host", "")
}

/// A fake cluster, a registry, a registered runner whose daemon builds on them.
struct Rig {
    kube: FakeKube,
    registry: Registry,
    fake: FakeGitea,
    home: RunnerHome,
}

fn rig(options: FakeKubeOptions) -> Option<Rig> {
    if !require_program("buildah", "the fake kubelet builds with buildah") {
        return None;
    }
    let registry = Registry::start()?;
    let kube = FakeKube::start(options);
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = home(&fake);
    Some(Rig {
        kube,
        registry,
        fake,
        home,
    })
}

impl Rig {
    /// The daemon, its `kubernetes:` settings from the environment.
    fn daemon(&self) -> Daemon {
        let kubeconfig = self.kube.write_kubeconfig(self.home.dir.path());
        self.home.start(
            &DaemonOptions::default()
                .env(
                    "HYBRID_RUNNER_KUBERNETES_KUBECONFIG",
                    kubeconfig.to_str().unwrap(),
                )
                .env(
                    "HYBRID_RUNNER_KUBERNETES_INSECURE_REGISTRIES",
                    self.registry.host.as_str(),
                ),
        )
    }

    /// Waits until no namespace but Kubernetes' own is left.
    fn assert_no_namespace_left(&self) {
        self.kube.assert_no_namespace_left();
    }
}

/// A job writing two Dockerfiles and a file, then building `image` with the built-in
/// action, then `after` (more steps).
fn build_job(image: &str, after: &str) -> String {
    format!(
        r#"    steps:
      - name: sources
        shell: bash
        run: |
          printf 'FROM scratch\nCOPY hello.txt /hello.txt\n' > Dockerfile
          printf 'FROM scratch\nCOPY hello.txt /hello-k8s.txt\n' > Dockerfile.k8s
          echo "hello from a gitea task" > hello.txt
      - id: img
        uses: hybrid-runner/build@v1
        with:
          image: {image}
{after}"#
    )
}

#[test]
fn a_build_step_becomes_a_kaniko_job_and_pushes_five_tags() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let job = build_job(
        &format!("{}/app", rig.registry.host),
        "      - run: echo \"k8s-digest=${{ steps.img.outputs.k8s-digest }}\"\n",
    );
    let id = rig
        .fake
        .enqueue_task(rig.fake.task_spec(&["ubuntu-latest"], &job_payload(&job)));
    let daemon = rig.daemon();
    let task = wait_finished(&rig.fake, &daemon, id);
    let all = describe_task(&task, &daemon);
    assert_eq!(task.result(), Some(pb::Result::Success), "{all}");
    let mut tags = rig.registry.tags("app");
    tags.sort();
    let expected = harness::registry::five_dual_tags(SHA);
    assert_eq!(tags, expected, "{all}");
    let k8s = rig.registry.digest("app", "k8s-latest").unwrap();
    assert_eq!(row_count(&task, &format!("k8s-digest={k8s}")), 1, "{all}");
    let manifests = rig.kube.sent_manifests();
    let jobs = manifests.iter().filter(|m| m["kind"] == "Job").count();
    assert_eq!(jobs, 2, "one Kaniko Job per variant:\n{all}");
    assert!(
        manifests.iter().any(|m| m["kind"] == "Namespace"),
        "a build namespace"
    );
    rig.assert_no_namespace_left();
    validate_manifests(&manifests);
}

#[test]
fn a_cancel_from_the_server_mid_build_deletes_the_build_namespace() {
    let mut options = FakeKubeOptions::default();
    options.faults.unschedulable = true;
    let Some(rig) = rig(options) else {
        return;
    };
    let job = build_job(
        &format!("{}/stuck", rig.registry.host),
        "      - if: always()\n        run: echo cleanup-after-build\n",
    );
    let id = rig
        .fake
        .enqueue_task(rig.fake.task_spec(&["ubuntu-latest"], &job_payload(&job)));
    let daemon = rig.daemon();
    // The build's Job exists and its pod cannot be scheduled: the build is waiting.
    rig.fake
        .wait_for(WAIT, |_| {
            (!rig.kube.objects("Job", None).is_empty()).then_some(())
        })
        .unwrap_or_else(|| panic!("no Kaniko Job was created:\n{}", daemon.output()));
    assert!(rig.fake.cancel_task(id));
    let task = wait_finished(&rig.fake, &daemon, id);
    let all = describe_task(&task, &daemon);
    assert_eq!(task.result(), Some(pb::Result::Cancelled), "{all}");
    assert_eq!(task.reported_result, Some(pb::Result::Cancelled), "{all}");
    assert_eq!(
        task.steps.get(&1).map(|s| s.result),
        Some(pb::Result::Cancelled),
        "the build step:\n{all}"
    );
    assert_eq!(row_count(&task, "cleanup-after-build"), 1, "{all}");
    rig.assert_no_namespace_left();
    assert!(rig.registry.tags("stuck").is_empty(), "nothing was pushed");
}
