//! The real `hybrid-runner daemon` process end to end against the fake Gitea: `register`,
//! then `daemon --once` runs one task of two run steps on this host; the fake shows the
//! task SUCCESS, both steps' states and their lines in order, once each, the log closed;
//! `GITHUB_SERVER_URL` is the address the runner registered with.
//! (The fault, load and cancellation suites live in the other `gitea_daemon*` files.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use harness::fake_gitea::{FakeGitea, FakeGiteaOptions, pb};

const WORKFLOW: &str = r#"name: smoke
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - name: first
        run: |
          echo one-a
          echo one-b
      - name: second
        run: |
          echo two-a
          echo two-b
          echo "server=$GITHUB_SERVER_URL"
"#;

fn cli(dir: &Path) -> Command {
    let mut command = harness::cli::command();
    command
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("HYBRID_RUNNER_HOST_WORKDIR_PARENT", dir.join("work"))
        .env("HYBRID_RUNNER_RUNNER_FETCH_INTERVAL", "100ms")
        .env("HYBRID_RUNNER_RUNNER_FETCH_INTERVAL_MAX", "200ms")
        .env(
            "HYBRID_RUNNER_KUBERNETES_KUBECONFIG",
            dir.join("no-kubeconfig"),
        )
        .env_remove("KUBECONFIG")
        .env_remove("GITEA_RUNNER_REGISTRATION_TOKEN");
    command
}

/// Runs `command` to its end, killing it after `limit`.
fn output_within(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn register_then_daemon_once_runs_a_two_step_task() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let registered = cli(dir.path())
        .args(["register", "--no-interactive", "--instance", &fake.url()])
        .args(["--token", FakeGitea::REGISTRATION_TOKEN])
        .args(["--name", "smoke", "--labels", "ubuntu-latest:host"])
        .output()
        .unwrap();
    assert!(
        registered.status.success(),
        "{}",
        String::from_utf8_lossy(&registered.stderr)
    );
    let id = fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], WORKFLOW));

    let mut daemon = cli(dir.path());
    daemon.args(["daemon", "--once"]);
    let out = output_within(daemon, Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{stderr}", out.status);

    let task = fake
        .wait_task_finished(id, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("not finished: {:?}\n{stderr}", fake.task(id)));
    assert_eq!(task.result(), Some(pb::Result::Success), "{stderr}");
    for step in [0, 1] {
        let state = &task.steps[&step];
        assert_eq!(state.result, pb::Result::Success, "step {step}: {state:?}");
        assert!(state.started_at.is_some() && state.stopped_at.is_some());
    }
    assert_eq!(
        task.step_log(0),
        ["one-a", "one-b"].map(String::from),
        "{:#?}",
        task.log_lines()
    );
    // The instance as the runner registered with it, not the ROOT_URL of the context.
    assert_eq!(
        task.step_log(1),
        [
            "two-a".to_string(),
            "two-b".to_string(),
            format!("server={}", fake.url().trim_end_matches('/'))
        ],
        "{:#?}",
        task.log_lines()
    );
    let lines = task.log_lines();
    let at = |text: &str| {
        let found: Vec<usize> = (0..lines.len()).filter(|i| lines[*i] == text).collect();
        assert_eq!(found.len(), 1, "{text} once in {lines:#?}");
        found[0]
    };
    assert!(at("one-a") < at("one-b") && at("one-b") < at("two-a") && at("two-a") < at("two-b"));
    assert!(task.log_closed);
    // The daemon went through Declare with its capabilities, and left its spool empty.
    let runner = &fake.runners()[0];
    assert_eq!(runner.capabilities, ["cancelling"]);
    assert_eq!(runner.tasks, [id]);
    let spool = dir.path().join(".runner-spool");
    let left: Vec<_> = std::fs::read_dir(&spool)
        .map(|entries| entries.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "spool keeps {left:?}");
}
