//! Docker actions in a job pod: `uses: docker://IMAGE` and a `runs.using: docker` action
//! run as ephemeral containers of the pod on the fake kubelet (busybox from the loopback
//! registry), with the workspace at `/github/workspace`, `INPUT_*`, `GITHUB_OUTPUT`
//! through `/github/file_commands`, their exit codes, and a missing image failing the
//! step at once; in a job on this host they run in a step pod that gets the host's
//! workspace before each and gives it back after, and without a cluster they are refused,
//! naming what would run them.

use std::time::{Duration, Instant};

use harness::fake_kube::{FakeKubeOptions, validate_manifests};
use harness::images::busybox_image;
use hr_engine::events::Outcome;

use super::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_steps_run_as_containers_of_the_job_pod() {
    let Some((registry, busybox)) = registry_with(None, busybox_image).await else {
        return;
    };
    let rig = Rig::new(FakeKubeOptions::default());
    let action = format!(
        "name: greet\ninputs:\n  who:\n    default: world\nruns:\n  using: docker\n  image: docker://{busybox}\n  pre-entrypoint: env\n  post-entrypoint: env\n  entrypoint: sh\n  args:\n    - -c\n    - 'echo \"greeting ${{{{ inputs.who }}}} $INPUT_WHO in $GITHUB_WORKSPACE\"; exit 3'\n"
    );
    let (server, sha) = app_server(rig.dir.path(), &[("greet/action.yml", &action)]);
    // A repository Docker action: its `pre-entrypoint` runs when the job starts.
    let mirror = rig.dir.path().join("mirror");
    let remote = format!(
        "name: remote\ninputs:\n  who:\n    default: world\nruns:\n  using: docker\n  image: docker://{busybox}\n  pre-entrypoint: env\n  post-entrypoint: env\n  post-if: success()\n  entrypoint: sh\n  args: ['-c', 'echo remote main $INPUT_WHO']\n"
    );
    repository(&mirror, "acme/docker-greet", &[("action.yml", &remote)]);
    let missing = format!("{}/no-such-image:1", registry.host);
    let payload = format!(
        r###"name: CI
"on": push
jobs:
  build:
    runs-on: linux
    container: {busybox}
    steps:
      - uses: actions/checkout@v4
      - id: d
        uses: docker://{busybox}
        with:
          who: mona
          entrypoint: sh
          args: -c 'echo "from-docker-step $INPUT_WHO in $(pwd) home=$HOME"; echo answer=42 >> "$GITHUB_OUTPUT"; echo made-by-docker > made.txt; echo "secret ${{{{ secrets.MY_SECRET }}}}"'
      - run: echo "file=$(cat made.txt) answer=${{{{ steps.d.outputs.answer }}}} event=$(cat "$GITHUB_EVENT_PATH" | head -c 1)"
      - uses: docker://{busybox}
        with:
          entrypoint: sh
          args: -c 'echo "docker event=$(head -c 1 "$GITHUB_EVENT_PATH") at $GITHUB_EVENT_PATH"'

      - uses: ./greet
        continue-on-error: true
        with:
          who: octo
      - uses: acme/docker-greet@v1
        with:
          who: remote
      - uses: docker://{missing}
        continue-on-error: true
      - run: echo after-all
"###
    );
    let mut t = task(601, &payload);
    set_context(&mut t, "sha", &sha);
    let mirror_url = format!("file://{}", mirror.display());
    set_context(&mut t, "gitea_default_actions_url", &mirror_url);
    let settings = rig.settings_served_by(&server);
    let started = Instant::now();
    let (run, events) = execute(t, &settings).await;
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Success, "{all:#?}");
    for wanted in [
        "from-docker-step mona in /github/workspace home=/github/home",
        "file=made-by-docker answer=42 event={",
        "docker event={ at /github/workflow/event.json",
        "greeting octo octo in /github/workspace",
        "secret ***",
        "after-all",
    ] {
        assert!(has(&events, wanted), "{wanted}\n{all:#?}");
    }
    // The local action's exit code and the missing image's pull error fail their steps.
    assert!(all.iter().any(|l| l.contains("exit code 3")), "{all:#?}");
    assert!(
        all.iter()
            .any(|l| l.contains("ErrImagePull") && l.contains("no-such-image")),
        "{all:#?}"
    );
    // The local action's `pre-entrypoint` never runs (GitHub's warning says so); its
    // `post-entrypoint` (`env`) ran in the action's image, with its inputs.
    let with_input = |who: &str| {
        all.iter()
            .enumerate()
            .filter(|(_, l)| **l == format!("INPUT_WHO={who}"))
            .map(|(i, _)| i)
            .collect::<Vec<_>>()
    };
    assert_eq!(with_input("octo").len(), 1, "{all:#?}");
    assert!(
        all.iter()
            .any(|l| l.contains("`pre` execution is not supported for local action from './greet'")),
        "{all:#?}"
    );
    // The repository action's `pre-entrypoint` ran when the job started, before the
    // first step's output, and its `post-entrypoint` (post-if: success()) at the end.
    let remote = with_input("remote");
    assert_eq!(remote.len(), 2, "{all:#?}");
    let first_main = all
        .iter()
        .position(|l| l.starts_with("from-docker-step"))
        .unwrap();
    assert!(remote[0] < first_main, "{all:#?}");
    assert!(has(&events, "remote main remote"), "{all:#?}");
    assert!(started.elapsed() < Duration::from_secs(120));
    assert!(all.iter().all(|l| !l.contains(SECRET)));
    // The step's env, a secret among it, went by a Secret, never in the pod's patch.
    for r in rig.fake.requests() {
        let body = r.body.as_ref().map(|b| b.to_string()).unwrap_or_default();
        assert!(
            !body.contains(SECRET) || r.path.contains("/secrets"),
            "a secret in {} {}",
            r.method,
            r.path
        );
    }
    validate_manifests(&rig.fake.sent_manifests());
    rig.assert_namespaces_deleted().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_steps_of_a_job_on_this_host_run_in_a_step_pod_with_its_workspace() {
    let Some((_registry, busybox)) = registry_with(None, busybox_image).await else {
        return;
    };
    let rig = Rig::new(FakeKubeOptions::default());
    let (server, sha) = app_server(rig.dir.path(), &[("tracked.txt", "from-git")]);
    let payload = format!(
        r###"name: CI
"on": push
jobs:
  build:
    runs-on: linux
    steps:
      - uses: actions/checkout@v4
      - run: echo from-host > host.txt
      - id: d
        uses: docker://{busybox}
        with:
          entrypoint: sh
          args: -c 'echo "in the pod, $(cat host.txt) $(cat tracked.txt)"; echo made-in-pod > pod.txt; mkdir -p out && echo deep > out/deep.txt; echo answer=7 >> "$GITHUB_OUTPUT"'
      - run: |
          echo "back on the host: $(cat pod.txt) $(cat out/deep.txt) answer=${{{{ steps.d.outputs.answer }}}} host=$(cat host.txt)"
      - uses: docker://{busybox}
        with:
          entrypoint: sh
          args: -c 'echo "second step sees $(cat pod.txt)"; exit 4'
      - if: always()
        run: echo "after the failure $(cat pod.txt)"
"###
    );
    let mut t = task(602, &payload);
    set_context(&mut t, "sha", &sha);
    let mut settings = rig.settings_served_by(&server);
    // The step pod's image needs `sh` and `tar`: busybox has both.
    settings.pods.image = busybox.clone();
    let (run, events) = execute(t, &settings).await;
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Failure, "{all:#?}");
    for wanted in [
        "in the pod, from-host from-git",
        "back on the host: made-in-pod deep answer=7 host=from-host",
        "second step sees made-in-pod",
        "after the failure made-in-pod",
    ] {
        assert!(has(&events, wanted), "{wanted}\n{all:#?}");
    }
    assert!(all.iter().any(|l| l.contains("exit code 4")), "{all:#?}");
    assert!(
        all.iter()
            .any(|l| l.contains("its Docker steps run in the step pod")),
        "{all:#?}"
    );
    // One step pod for both Docker steps; the `run:` steps stayed on this host.
    let namespaces = rig
        .fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v1/namespaces")
        .count();
    assert_eq!(namespaces, 1, "{all:#?}");
    validate_manifests(&rig.fake.sent_manifests());
    rig.assert_namespaces_deleted().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_step_on_a_runner_without_a_cluster_is_refused_naming_what_runs_it() {
    let rig = Rig::new(FakeKubeOptions::default());
    let payload = "name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: linux\n    steps:\n      - uses: docker://alpine:3\n      - if: always()\n        run: echo after-refusal\n";
    let settings = hr_gitea::task::TaskSettings {
        kubernetes_configured: false,
        ..rig.settings()
    };
    let (run, events) = execute(task(603, payload), &settings).await;
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Failure, "{all:#?}");
    assert!(
        all.iter().any(|l| l.contains(
            "uses docker://alpine:3, a Docker action: Docker actions run as containers in a pod, and this runner has no Kubernetes cluster; add a kubernetes: section to the runner's config"
        )),
        "{all:#?}"
    );
    assert!(has(&events, "after-refusal"), "{all:#?}");
    assert!(rig.fake.requests().iter().all(|r| r.method != "POST"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dockerfile_action_is_built_once_and_reused() {
    if !sandbox_available() || !harness::registry::require_program("buildah", "Kaniko builds") {
        return;
    }
    let Some((registry, busybox)) = registry_with(None, busybox_image).await else {
        return;
    };
    let rig = Rig::new(FakeKubeOptions::default());
    let (server, sha) = app_server(
        rig.dir.path(),
        &[
            (
                "hello/action.yml",
                "name: hello\ninputs:\n  who:\n    default: world\nruns:\n  using: docker\n  image: Dockerfile\n  args: ['${{ inputs.who }}']\n",
            ),
            (
                "hello/Dockerfile",
                &format!(
                    "FROM {busybox}\nCOPY entry.sh /entry.sh\nENTRYPOINT [\"sh\", \"/entry.sh\"]\n"
                ),
            ),
            (
                "hello/entry.sh",
                "echo \"hello $1 from a built image, input $INPUT_WHO\"\n",
            ),
        ],
    );
    let payload = format!(
        "name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: linux\n    container: {busybox}\n    steps:\n      - uses: actions/checkout@v4\n      - uses: ./hello\n        with:\n          who: mona\n"
    );
    let mut settings = rig.settings_served_by(&server);
    settings.builds.insecure_registries = vec![registry.host.clone()];
    settings.builds.action_image_repo = Some(format!("{}/actions", registry.host));
    let kaniko_jobs = || {
        rig.fake
            .sent_manifests()
            .iter()
            .filter(|m| m["kind"] == "Job")
            .count()
    };
    for (round, id) in [(1, 611), (2, 612)] {
        let mut t = task(id, &payload);
        set_context(&mut t, "sha", &sha);
        let (run, events) = execute(t, &settings).await;
        let all = lines(&events);
        assert_eq!(run.result, Outcome::Success, "round {round}: {all:#?}");
        assert!(
            has(&events, "hello mona from a built image, input mona"),
            "round {round}: {all:#?}"
        );
        // Built in the first round only; the second finds it in the registry.
        assert_eq!(kaniko_jobs(), 1, "round {round}: {all:#?}");
    }
    let tags = tokio::task::block_in_place(|| registry.tags("actions"));
    assert!(tags.contains(&"local-hello".to_string()), "{tags:?}");
    rig.assert_namespaces_deleted().await;
}
