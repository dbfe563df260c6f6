//! `uses:` in pod jobs: checkout copied in, JavaScript and composite actions in the pod,
//! image builds from the pod's workspace, Docker actions refused.

use harness::fake_kube::FakeKubeOptions;
use hr_engine::events::Outcome;

use super::common::*;

const GREET_ACTION: &str = "name: greet\ninputs:\n  who:\n    required: true\noutputs:\n  greeting:\n    description: the greeting\nruns:\n  using: node20\n  main: index.js\n  post: post.js\n";
const GREET_MAIN: &str = r#"const fs = require('fs');
const who = process.env.INPUT_WHO;
console.log(`hello ${who} in ${process.cwd()} from ${process.env.GITHUB_ACTION_PATH}`);
fs.appendFileSync(process.env.GITHUB_OUTPUT, `greeting=hi ${who}\n`);
fs.appendFileSync(process.env.GITHUB_STATE, `who=${who}\n`);
"#;
const GREET_POST: &str = "console.log(`post for ${process.env.STATE_who}`);\n";
const TWICE_ACTION: &str = "name: twice\nruns:\n  using: composite\n  steps:\n    - run: echo \"composite in $(pwd) at $GITHUB_ACTION_PATH\"\n      shell: bash\n    - run: echo \"composite twice=$(ls \"$GITHUB_ACTION_PATH\")\"\n      shell: sh\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_reaches_the_pods_workspace() {
    if !sandbox_available() {
        return;
    }
    let rig = Rig::new(FakeKubeOptions::default());
    let (server, sha) = app_server(
        rig.dir.path(),
        &[
            ("README", "from the server\n"),
            ("deep/er/file.txt", "nested\n"),
        ],
    );
    let payload = r###"name: CI
"on": push
jobs:
  build:
    runs-on: k8s
    steps:
      - uses: actions/checkout@v4
      - run: |
          echo "readme=$(cat README) nested=$(cat deep/er/file.txt)"
          echo "head=$(git rev-parse HEAD)"
      - if: always()
        run: echo after-checkout
"###;
    let mut t = task(104, payload);
    set_context(&mut t, "sha", &sha);
    let settings = rig.settings_served_by(&server);
    let (run, events) = execute(t, &settings).await;
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Success, "{all:#?}");
    assert!(
        has(&events, "readme=from the server nested=nested"),
        "{all:#?}"
    );
    assert!(has(&events, &format!("head={sha}")), "{all:#?}");
    assert!(has(&events, "after-checkout"), "{all:#?}");
    rig.assert_namespaces_deleted().await;
    rig.assert_no_secret_in_urls();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_and_composite_actions_run_in_the_pod() {
    if !sandbox_available() {
        return;
    }
    let rig = Rig::new(FakeKubeOptions::default());
    // The repository, with a local composite action.
    let (server, sha) = app_server(rig.dir.path(), &[("twice/action.yml", TWICE_ACTION)]);
    // A remote JavaScript action on the actions mirror.
    let mirror = rig.dir.path().join("mirror");
    repository(
        &mirror,
        "acme/greet",
        &[
            ("action.yml", GREET_ACTION),
            ("index.js", GREET_MAIN),
            ("post.js", GREET_POST),
        ],
    );
    let payload = r###"name: CI
"on": push
jobs:
  build:
    runs-on: k8s
    steps:
      - uses: actions/checkout@v4
      - id: greet
        uses: acme/greet@v1
        with:
          who: pods
      - run: echo "greeting=${{ steps.greet.outputs.greeting }}"
      - uses: ./twice
"###;
    let mut t = task(111, payload);
    set_context(&mut t, "sha", &sha);
    let mirror_url = format!("file://{}", mirror.display());
    set_context(&mut t, "gitea_default_actions_url", &mirror_url);
    let settings = rig.settings_served_by(&server);
    let (run, events) = execute(t, &settings).await;
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Success, "{all:#?}");
    for wanted in [
        "hello pods in /__w/app from /__t/_actions/0",
        "greeting=hi pods",
        // The engine's own form of a local action's path (the same on the host).
        "composite in /__w/app at /__w/app/./twice",
        "composite twice=action.yml",
        "post for pods",
    ] {
        assert!(has(&events, wanted), "missing {wanted:?} in {all:#?}");
    }
    assert!(
        all.iter().any(|l| l.starts_with("Copied the action ")
            && l.ends_with("into the job pod at /__t/_actions/0")),
        "{all:#?}"
    );
    rig.assert_namespaces_deleted().await;
    rig.assert_no_secret_in_urls();
}

/// The registry fixture is blocking: this test drives its own runtime.
#[test]
fn a_built_in_build_uses_the_pods_workspace() {
    if !sandbox_available()
        || !harness::registry::require_program("buildah", "the fake kubelet builds with buildah")
    {
        return;
    }
    let Some(registry) = harness::registry::Registry::start() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rig = runtime.block_on(async { Rig::new(FakeKubeOptions::default()) });
    let mut settings = rig.settings();
    settings.builds.builder = hr_image::BuilderChoice::Kaniko;
    settings.builds.insecure_registries = vec![registry.host.clone()];
    let payload = format!(
        r###"name: CI
"on": push
jobs:
  build:
    runs-on: k8s
    steps:
      - run: |
          printf 'FROM scratch\nCOPY hello.txt /hello.txt\n' > Dockerfile
          echo "made in the pod" > hello.txt
      - id: img
        uses: hybrid-runner/build@v1
        with:
          image: {host}/podapp
          variants: docker
      - run: echo "built=${{{{ steps.img.outcome }}}}"
"###,
        host = registry.host
    );
    let (run, events) = runtime.block_on(execute(task(109, &payload), &settings));
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Success, "{all:#?}");
    assert!(
        all.iter()
            .any(|l| l.starts_with("Copied the job pod's workspace /__w/app to the runner")),
        "{all:#?}"
    );
    assert!(has(&events, "built=success"), "{all:#?}");
    runtime.block_on(rig.assert_namespaces_deleted());
    let tags = registry.tags("podapp");
    assert!(tags.contains(&"docker-latest".to_string()), "{tags:?}");
}

/// Copying the pod's workspace out for a build never hangs the step: when the exec's
/// stream stalls (the `stall_execs` fault: the pod's `tar -c` never sends a byte nor ends)
/// the copy gives up after `copy_idle_timeout` with an error that says so, and the job
/// goes on to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_copy_out_of_the_pod_fails_in_bounded_time() {
    if !sandbox_available() {
        return;
    }
    let mut options = FakeKubeOptions::default();
    options.faults.stall_execs = vec!["tar -c -f -".to_string()];
    let rig = Rig::new(options);
    let mut settings = rig.settings();
    settings.builds.builder = hr_image::BuilderChoice::Kaniko;
    settings.pods.copy_idle_timeout = std::time::Duration::from_secs(2);
    let payload = r###"name: CI
"on": push
jobs:
  build:
    runs-on: k8s
    steps:
      - run: echo made > hello.txt
      - uses: hybrid-runner/build@v1
        with:
          image: 127.0.0.1:9/stalled
          variants: docker
      - if: always()
        run: echo after-the-copy
"###;
    let started = std::time::Instant::now();
    let (run, events) = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        execute(task(110, payload), &settings),
    )
    .await
    .expect("the job hung on a stalled copy out of the pod");
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Failure, "{all:#?}");
    assert!(
        all.iter().any(|l| l.contains(
            "the pod's tar sent nothing for 2 s (no end of its output); the exec's stream stalled"
        )),
        "{all:#?}"
    );
    assert!(has(&events, "after-the-copy"), "{all:#?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    rig.assert_namespaces_deleted().await;
}
