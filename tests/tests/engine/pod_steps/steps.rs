//! `run:` steps in the pod: env, file commands, masking, exit codes, `always()`, cancel,
//! timeout, background processes, and the cost of a step.

use std::time::{Duration, Instant};

use harness::fake_kube::{FakeKubeOptions, validate_manifests};
use hr_engine::events::{Event, EventSink, LogKind, Outcome};
use hr_gitea::task::run_task;
use tokio_util::sync::CancellationToken;

use super::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_steps_share_env_outputs_and_files_in_the_pod() {
    if !sandbox_available() {
        return;
    }
    let rig = Rig::new(FakeKubeOptions::default());
    // Transient API errors while the job starts are retried.
    rig.fake.fail_next("POST", "/namespaces", 1);
    rig.fake.fail_next("POST", "/pods", 2);
    rig.fake.fail_next("GET", "/pods/job", 1);
    // And an exec refused before it started (the first step's) is tried again.
    rig.fake.fail_next("GET", "/exec", 1);
    let payload = r###"name: CI
"on": push
env:
  WORKFLOW_VAR: from-workflow
jobs:
  build:
    runs-on: k8s
    outputs:
      answer: ${{ steps.one.outputs.answer }}
    steps:
      - id: one
        run: |
          echo "pwd=$(pwd) workspace=$GITHUB_WORKSPACE"
          echo "workflow=$WORKFLOW_VAR runner_envs=$FROM_RUNNER_ENVS"
          echo "secret is $MY_SECRET"
          echo "FOO=bar baz" >> "$GITHUB_ENV"
          echo "answer=42" >> "$GITHUB_OUTPUT"
          { echo "multi<<EOF"; echo "line one"; echo "line two"; echo "EOF"; } >> "$GITHUB_OUTPUT"
          echo "::add-mask::pod-made-secret"
          echo "the pod-made-secret is hidden"
          echo "/opt/pod-tools" >> "$GITHUB_PATH"
          echo "## summary" >> "$GITHUB_STEP_SUMMARY"
          mkdir -p sub
          echo kept > sub/file.txt
          echo "to stderr" >&2
          echo "own s=$s o=$o e=$e"
        env:
          MY_SECRET: ${{ secrets.MY_SECRET }}
          # Names the exec's shell once used for its own variables.
          s: mine-s
          o: mine-o
          e: mine-e
      - run: |
          echo "foo=$FOO answer=${{ steps.one.outputs.answer }}"
          echo "multi=${{ steps.one.outputs.multi }}"
          echo "path=$PATH"
          echo "in $(pwd): $(cat file.txt)"
          echo "temp=$RUNNER_TEMP env_file=$GITHUB_ENV tool_cache=$RUNNER_TOOL_CACHE"
          ls /__t/_step/env.sh 2>/dev/null || echo "no env.sh left"
          grep -rl pod-secret /__t/_step 2>/dev/null || echo "no secret in /__t/_step"
        working-directory: sub
      - run: exit 3
      - run: echo never
      - if: always()
        run: echo "always ran with foo=$FOO"
"###;
    let (run, events) = execute(task(101, payload), &rig.settings()).await;
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Failure, "{all:#?}");
    assert!(
        all.iter()
            .any(|l| l.starts_with("Job pod hr-") && l.contains("is running")),
        "{all:#?}"
    );
    for wanted in [
        "pwd=/__w/app workspace=/__w/app",
        "workflow=from-workflow runner_envs=configured",
        "secret is ***",
        "to stderr",
        "own s=mine-s o=mine-o e=mine-e",
        "foo=bar baz answer=42",
        "multi=line one",
        "line two",
        "the *** is hidden",
        "path=/opt/pod-tools:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "in /__w/app/sub: kept",
        "no env.sh left",
        "no secret in /__t/_step",
        "Process completed with exit code 3.",
        "always ran with foo=bar baz",
    ] {
        assert!(has(&events, wanted), "missing {wanted:?} in {all:#?}");
    }
    assert!(!has(&events, "never"), "{all:#?}");
    assert!(
        all.iter()
            .any(|l| l == "temp=/__t env_file=/__t/_files/set_env tool_cache=/__t/_tool"),
        "{all:#?}"
    );
    assert!(
        !all.iter().any(|l| l.contains(SECRET)),
        "the secret leaked: {all:#?}"
    );
    assert_eq!(run.outputs, vec![("answer".to_string(), "42".to_string())]);
    rig.assert_namespaces_deleted().await;
    rig.assert_no_secret_in_urls();
    let posts = |suffix: &str| {
        rig.fake
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with(suffix))
            .count()
    };
    assert_eq!(posts("/pods"), 3, "two failed tries, then the pod");
    assert_eq!(
        posts("/api/v1/namespaces"),
        2,
        "one failed try, then the namespace"
    );
    let manifests = rig.fake.sent_manifests();
    let pod = manifests.iter().find(|m| m["kind"] == "Pod").unwrap();
    assert_eq!(pod["spec"]["automountServiceAccountToken"], false);
    assert_eq!(pod["spec"]["containers"][0]["image"], "node:20-bookworm");
    if !validate_manifests(&manifests) {
        eprintln!("kubernetes-validate is not installed: manifests not validated");
    }
    // The host never ran a step: the task folder is gone, and nothing was written there.
    assert!(!rig.dir.path().join("work").join("101").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_step_stops_in_the_pod_and_always_steps_still_run() {
    if !sandbox_available() {
        return;
    }
    let rig = Rig::new(FakeKubeOptions::default());
    let payload = r###"name: CI
"on": push
jobs:
  build:
    runs-on: k8s-alpine
    steps:
      - run: |
          echo started
          sleep 60
          echo not-reached
      - if: always()
        run: echo cleanup ran
      - run: echo skipped-after-cancel
"###;
    let settings = rig.settings();
    let (sink, mut rx) = EventSink::channel();
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let run = {
        let cancel = cancel.clone();
        let settings = settings.clone();
        let t = task(102, payload);
        tokio::spawn(
            async move { run_task(t, &settings, sink, cancel, CancellationToken::new()).await },
        )
    };
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        let seen = matches!(&e, Event::Log { line, .. } if line == "started");
        events.push(e);
        if seen {
            break;
        }
    }
    cancel.cancel();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    let run = run.await.unwrap();
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Cancelled, "{all:#?}");
    assert!(has(&events, "cleanup ran"), "{all:#?}");
    assert!(!has(&events, "not-reached"), "{all:#?}");
    assert!(!has(&events, "skipped-after-cancel"), "{all:#?}");
    // SIGINT reached the step's process group at once (not the TERM/KILL deadlines).
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let pod = rig
        .fake
        .sent_manifests()
        .into_iter()
        .find(|m| m["kind"] == "Pod")
        .unwrap();
    assert_eq!(pod["spec"]["containers"][0]["image"], "alpine:3");
    let signals = rig
        .fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/exec") && format!("{:?}", r.query).contains("kill -INT"))
        .count();
    assert_eq!(signals, 1, "one SIGINT exec");
    let escalations = rig
        .fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/exec") && format!("{:?}", r.query).contains("kill -TERM"))
        .count();
    assert_eq!(escalations, 0, "SIGINT alone stopped the step");
    rig.assert_namespaces_deleted().await;
    rig.assert_no_secret_in_urls();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_timeout_stops_the_step_in_the_pod_and_fails_it() {
    if !sandbox_available() {
        return;
    }
    let rig = Rig::new(FakeKubeOptions::default());
    let payload = r###"name: CI
"on": push
jobs:
  build:
    runs-on: k8s
    steps:
      - run: |
          echo "begin"
          sleep 30
          echo not-reached
        timeout-minutes: 0.02
      - if: always()
        run: echo "next step ran"
"###;
    let started = Instant::now();
    let (run, events) = execute(task(106, payload), &rig.settings()).await;
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Failure, "{all:#?}");
    assert!(
        has(&events, "begin") && !has(&events, "not-reached"),
        "{all:#?}"
    );
    assert!(
        all.iter().any(|l| l.contains("has timed out after")),
        "{all:#?}"
    );
    assert!(has(&events, "next step ran"), "{all:#?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    rig.assert_namespaces_deleted().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_process_does_not_hold_the_step_open() {
    if !sandbox_available() {
        return;
    }
    let rig = Rig::new(FakeKubeOptions::default());
    // The background process keeps the step's stdout open for 30 s; a kubelet (and the
    // fake) keeps an exec open while anything holds its stdout.
    let payload = r###"name: CI
"on": push
jobs:
  build:
    runs-on: k8s
    steps:
      - run: |
          (sleep 30; echo too-late) &
          echo "server started"
      - run: echo "next step"
"###;
    let started = Instant::now();
    let (run, events) = execute(task(112, payload), &rig.settings()).await;
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Success, "{all:#?}");
    assert!(
        has(&events, "server started") && has(&events, "next step"),
        "{all:#?}"
    );
    assert!(!has(&events, "too-late"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    rig.assert_namespaces_deleted().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_exec_per_step_brings_back_its_output_and_files() {
    if !sandbox_available() {
        return;
    }
    let rig = Rig::new(FakeKubeOptions::default());
    // The third step kills the exec's shell (its parent): the exec ends without the files.
    let payload = r###"name: CI
"on": push
jobs:
  build:
    runs-on: k8s
    steps:
      - id: a
        run: |
          echo "A=from-a" >> "$GITHUB_ENV"
          echo "out=1" >> "$GITHUB_OUTPUT"
          printf 'no newline at the end'
      - run: |
          echo "A=$A out=${{ steps.a.outputs.out }}"
          echo
      - run: |
          echo "B=lost" >> "$GITHUB_ENV"
          echo "killing the exec's shell"
          kill -9 $PPID
        continue-on-error: true
      - run: echo "B=[$B]"
"###;
    let (run, events) = execute(task(113, payload), &rig.settings()).await;
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Success, "{all:#?}");
    let output = |index: usize| -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Log {
                    step: Some(step),
                    kind: LogKind::Stdout,
                    line,
                    ..
                } if step.index == index => Some(line.clone()),
                _ => None,
            })
            .collect()
    };
    // A last line without newline reaches the log; an empty last line stays, once.
    assert_eq!(output(0), ["no newline at the end"], "{all:#?}");
    assert_eq!(output(1), ["A=from-a out=1", ""], "{all:#?}");
    assert_eq!(output(2), ["killing the exec's shell"], "{all:#?}");
    assert_eq!(output(3), ["B=[]"], "{all:#?}");
    assert!(
        all.iter()
            .any(|l| l.contains("ended before its GITHUB_* files came back")),
        "{all:#?}"
    );
    let execs = rig
        .fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/exec"))
        .count();
    // One exec per step, and one when the pod started: the copy of the event file.
    assert_eq!(execs, 5, "one exec per step");
    rig.assert_namespaces_deleted().await;
}

/// A figure, not a check: `cargo test -p hybrid-runner-tests --test engine -- --ignored
/// --nocapture pod_step_overhead` prints the pod start and the time per trivial step
/// (one exec each) against the fake API server, next to the same jobs on this host (the
/// peer: a step's own process, no exec), three rounds each, interleaved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement"]
async fn pod_step_overhead() {
    if !sandbox_available() {
        return;
    }
    let rig = Rig::new(FakeKubeOptions::default());
    let settings = rig.settings();
    let steps = 20;
    let job = |label: &str, n: u32| {
        let mut payload =
            format!("name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: {label}\n    steps:\n");
        for i in 0..n {
            payload.push_str(&format!("      - run: echo step-{i}\n"));
        }
        payload
    };
    let mut id = 120;
    let mut figures: Vec<(&str, Vec<std::time::Duration>)> =
        vec![("pod", Vec::new()), ("host", Vec::new())];
    for _ in 0..3 {
        for (label, per_step) in figures.iter_mut() {
            let label_name = if *label == "pod" { "k8s" } else { "linux" };
            let mut took = Vec::new();
            for n in [1, steps] {
                id += 1;
                let started = Instant::now();
                let (run, events) = execute(task(id, &job(label_name, n)), &settings).await;
                assert_eq!(run.result, Outcome::Success, "{:#?}", lines(&events));
                took.push(started.elapsed());
            }
            per_step.push((took[1] - took[0]) / (steps - 1));
            if *label == "pod" {
                eprintln!(
                    "pod job with 1 step: {:?}; with {steps} steps: {:?}",
                    took[0], took[1]
                );
            }
        }
    }
    for (label, mut per_step) in figures {
        per_step.sort();
        eprintln!(
            "per step in a {label} job: median {:?} (rounds {per_step:?})",
            per_step[1]
        );
    }
}
