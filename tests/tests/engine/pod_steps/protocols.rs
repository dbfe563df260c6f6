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
    let (server, sha) = app_server(
        rig.dir.path(),
        &[
            ("README", "from the server\n"),
            ("deep/file.txt", "nested\n"),
        ],
    );
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
    set_context(&mut t, "sha", &sha);
    let settings = rig.settings_served_by(&server);
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
