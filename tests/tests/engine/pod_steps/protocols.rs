//! Pod jobs on an API server that speaks only `v4.channel.k8s.io` (Kubernetes 1.29 and
//! older, or the v5 gate off): no stdin close signal there, so steps and copies into the
//! pod must end their input in-band.

use std::time::Duration;

use harness::fake_kube::{FakeKubeOptions, V4_CHANNEL};
use hr_engine::events::Outcome;

use super::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_and_the_checkout_copy_work_over_the_v4_exec_protocol() {
    if !sandbox_available() {
        return;
    }
    let rig = Rig::new(FakeKubeOptions {
        stream_protocols: vec![V4_CHANNEL.to_string()],
        ..FakeKubeOptions::default()
    });
    let server = rig.dir.path().join("server");
    let src = server.join("src");
    std::fs::create_dir_all(src.join("deep")).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    std::fs::write(src.join("README"), "from the server\n").unwrap();
    std::fs::write(src.join("deep/file.txt"), "nested\n").unwrap();
    git(&src, &["add", "."]);
    git(&src, &["commit", "-q", "-m", "first"]);
    let sha = git(&src, &["rev-parse", "HEAD"]);
    std::fs::create_dir_all(server.join("org")).unwrap();
    git(&server, &["clone", "-q", "--bare", "src", "org/app.git"]);
    let payload = r###"name: CI
"on": push
jobs:
  build:
    runs-on: k8s
    outputs:
      answer: ${{ steps.one.outputs.answer }}
    steps:
      - uses: actions/checkout@v4
      - id: one
        run: |
          echo "readme=$(cat README) nested=$(cat deep/file.txt)"
          echo "secret is $MY_SECRET"
          echo "answer=42" >> "$GITHUB_OUTPUT"
          echo "FOO=from-env-file" >> "$GITHUB_ENV"
        env:
          MY_SECRET: ${{ secrets.MY_SECRET }}
      - run: echo "foo=$FOO"
      - run: exit 3
      - if: always()
        run: echo always-ran
"###;
    let mut t = task(120, payload);
    let mut context: serde_json::Value = serde_json::to_value(t.context.take().unwrap()).unwrap();
    context["sha"] = serde_json::Value::String(sha);
    t.context = Some(serde_json::from_value(context).unwrap());
    let mut settings = rig.settings();
    settings.instance = format!("file://{}/", server.display());
    // A step that waits for a stdin close that never comes would hang: bounded here.
    let (run, events) = tokio::time::timeout(Duration::from_secs(60), execute(t, &settings))
        .await
        .expect("the pod job did not finish in 60 s over v4.channel.k8s.io");
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Failure, "{all:#?}");
    for wanted in [
        "readme=from the server nested=nested",
        "secret is ***",
        "foo=from-env-file",
        "Process completed with exit code 3.",
        "always-ran",
    ] {
        assert!(has(&events, wanted), "missing {wanted:?} in {all:#?}");
    }
    assert_eq!(run.outputs, vec![("answer".to_string(), "42".to_string())]);
    rig.assert_namespaces_deleted().await;
    rig.assert_no_secret_in_urls();
}
