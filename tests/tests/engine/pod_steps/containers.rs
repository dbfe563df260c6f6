//! `container:` and `services:` of a Gitea task: the job pod runs the job container's
//! image with its env from a Secret (never in the pod's manifest), its options mapped,
//! `job.container` filled; a container a pod cannot run fails the job at its line, before
//! any namespace exists; a runner without a cluster refuses such jobs naming the remedy.

use harness::fake_kube::{FakeKubeOptions, validate_manifests};
use hr_engine::events::Outcome;

use super::common::*;

const CONTAINER_JOB: &str = r###"name: CI
"on": push
jobs:
  build:
    runs-on: linux
    container:
      image: alpine:3
      env:
        FROM_CONTAINER: ${{ secrets.MY_SECRET }}
        PLAIN: plain-value
      options: --cpus 1 --memory 1g --user 0 --add-host gateway:10.1.2.3
      credentials:
        username: ci-bot
        password: ${{ secrets.MY_SECRET }}
    steps:
      - run: |
          echo "container id=${{ job.container.id }} network=${{ job.container.network }}"
          echo "in the pod: $(cat /etc/hostname 2>/dev/null | wc -c) pwd=$(pwd)"
"###;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_job_runs_in_a_pod_of_its_image_with_its_env_in_a_secret() {
    if !sandbox_available() {
        return;
    }
    let rig = Rig::new(FakeKubeOptions::default());
    let (run, events) = execute(task(301, CONTAINER_JOB), &rig.settings()).await;
    assert_eq!(run.result, Outcome::Success, "{:#?}", lines(&events));
    let manifests = rig.fake.sent_manifests();
    let pod = manifests
        .iter()
        .find(|m| m["kind"] == "Pod")
        .expect("a job pod");
    let namespace = pod["metadata"]["namespace"].as_str().unwrap();
    // `linux` is a host label, but the job asked for a container.
    assert!(
        lines(&events)
            .iter()
            .any(|l| l == &format!("Job pod {namespace}/job is running (image alpine:3)")),
        "{:#?}",
        lines(&events)
    );
    assert!(
        has(
            &events,
            &format!("container id={namespace}/job network={namespace}")
        ),
        "{:#?}",
        lines(&events)
    );
    let steps = &pod["spec"]["containers"][0];
    assert_eq!(steps["image"], "alpine:3");
    assert_eq!(steps["resources"]["limits"]["cpu"], "1000m");
    assert_eq!(steps["resources"]["limits"]["memory"], "1Gi");
    assert_eq!(steps["securityContext"]["runAsUser"], 0);
    assert_eq!(
        pod["spec"]["hostAliases"][0],
        serde_json::json!({"ip": "10.1.2.3", "hostnames": ["gateway"]})
    );
    let env = steps["env"].as_array().unwrap();
    assert_eq!(env.len(), 2);
    for e in env {
        assert!(e.get("value").is_none(), "{e}");
        assert_eq!(e["valueFrom"]["secretKeyRef"]["name"], "job-env");
    }
    assert_eq!(pod["spec"]["imagePullSecrets"][0]["name"], "job-registry");
    // The secret is in the Secrets only, created before the pod in the job namespace.
    let text = serde_json::to_string(pod).unwrap();
    assert!(!text.contains(SECRET), "{text}");
    let secrets: Vec<_> = manifests.iter().filter(|m| m["kind"] == "Secret").collect();
    assert_eq!(secrets.len(), 2, "{secrets:#?}");
    assert!(
        secrets
            .iter()
            .all(|s| s["metadata"]["namespace"] == namespace)
    );
    assert_eq!(
        secrets[1]["type"], "kubernetes.io/dockerconfigjson",
        "{secrets:#?}"
    );
    let order: Vec<&str> = manifests
        .iter()
        .filter_map(|m| m["kind"].as_str())
        .filter(|k| ["Namespace", "Secret", "Pod"].contains(k))
        .collect();
    assert_eq!(order, ["Namespace", "Secret", "Secret", "Pod"]);
    // Nothing the job printed shows the secret.
    assert!(lines(&events).iter().all(|l| !l.contains(SECRET)));
    if !validate_manifests(&manifests) {
        eprintln!("notice: manifests not validated");
    }
    rig.assert_no_secret_in_urls();
    rig.assert_namespaces_deleted().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_a_pod_cannot_run_fails_the_job_at_its_line_before_any_namespace() {
    let rig = Rig::new(FakeKubeOptions::default());
    for (payload, wanted) in [
        (
            "name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: linux\n    container:\n      image: alpine:3\n      options: --privileged\n    steps:\n      - run: echo never\n",
            "error: ci.yml:8:16: container.options: `--privileged` cannot be given to a pod",
        ),
        (
            "name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: linux\n    services:\n      db:\n        image: postgres:16\n        volumes: [/srv/data:/var/lib/postgresql/data]\n    steps:\n      - run: echo never\n",
            "error: ci.yml:9:19: services.db.volumes: `/srv/data:/var/lib/postgresql/data` mounts the host folder /srv/data",
        ),
    ] {
        let (run, events) = execute(task(302, payload), &rig.settings()).await;
        assert_eq!(run.result, Outcome::Failure);
        assert!(
            lines(&events).iter().any(|l| l.starts_with(wanted)),
            "wanted {wanted}\n{:#?}",
            lines(&events)
        );
        assert!(!lines(&events).iter().any(|l| l.contains("never")));
    }
    assert!(
        !rig.fake
            .sent_manifests()
            .iter()
            .any(|m| m["kind"] == "Namespace"),
        "no namespace for a job that cannot run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_cluster_a_container_job_is_refused_naming_the_config_section() {
    let rig = Rig::new(FakeKubeOptions::default());
    let mut settings = rig.settings();
    settings.kubernetes_configured = false;
    settings.labels = hr_engine::labels::Label::parse_list("linux:host").unwrap();
    let (run, events) = execute(task(303, CONTAINER_JOB), &settings).await;
    assert_eq!(run.result, Outcome::Failure);
    assert!(
        lines(&events).iter().any(|l| l.contains(
            "job 'build' runs in `container: alpine:3`, which needs a Kubernetes cluster for its pod; add a kubernetes: section to the runner's config"
        )),
        "{:#?}",
        lines(&events)
    );
    assert!(rig.fake.sent_manifests().is_empty());
}
