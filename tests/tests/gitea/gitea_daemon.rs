#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real `hybrid-runner daemon` against the fake Gitea (`harness::fake_gitea`), in
//! working order: `register` writes `.runner`, the daemon declares itself and polls, runs
//! each task through the job engine on this host, and reports it. Checked on the fake's
//! side, as Gitea would store it: the result, the step states (ids, results, log ranges
//! consistent with the stored log), the job outputs, every printed line stored exactly once
//! and in order, secrets masked, `needs` / `vars` / the `github` context reaching the
//! steps; a failing step and `always()`; workflow commands, run-time masks and bad bytes; a
//! payload that cannot run; a 3 MB line; `--once`; ephemeral; capacity; `/metrics` counting
//! real tasks; a missing `.runner`. Build steps, faults and load are in
//! `gitea_daemon_build.rs`, `gitea_daemon_faults.rs` and `gitea_daemon_load.rs`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use harness::daemon_checks::{
    WAIT, describe_task, job_payload, numbered, row_count, rows_where, step_state_problems,
    wait_finished,
};
use harness::daemon_process::{DaemonOptions, RunnerHome};
use harness::fake_gitea::{
    FakeGitea, FakeGiteaOptions, Method, NeedSpec, SHA, TaskStatus, TaskView, pb,
};

fn home(fake: &FakeGitea) -> RunnerHome {
    RunnerHome::register(fake, "ubuntu-latest:host", "")
}

const MAIN_JOB: &str = r#"    needs: [prep]
    env:
      JOB_ENV: job-level
    outputs:
      result: ${{ steps.gen.outputs.value }}
      from-need: ${{ needs.prep.outputs.version }}
    steps:
      - id: gen
        name: numbered lines
        shell: bash
        run: |
          for i in $(seq 1 150); do echo "gen-$i"; done
          echo "value=42" >> "$GITHUB_OUTPUT"
      - name: contexts
        shell: bash
        env:
          DEPLOY: ${{ secrets.DEPLOY_KEY }}
        run: |
          echo "need=${{ needs.prep.outputs.version }}"
          echo "need-result=${{ needs.prep.result }}"
          echo "var=${{ vars.GREETING }}"
          echo "secret=${{ secrets.DEPLOY_KEY }}"
          echo "secret-env=$DEPLOY"
          echo "token=${{ secrets.GITHUB_TOKEN }}"
          echo "job-env=$JOB_ENV"
          echo "sha=${{ github.sha }}"
          echo "repo=${{ github.repository }}"
          echo "env-sha=$GITHUB_SHA"
          echo "env-repo=$GITHUB_REPOSITORY"
          echo "run-id=$GITHUB_RUN_ID"
          echo "gitea-actions=$GITEA_ACTIONS"
          echo "server=$GITHUB_SERVER_URL"
      - name: stderr lines
        shell: bash
        run: for i in $(seq 1 50); do echo "err-$i" >&2; done
"#;

const SECRET: &str = "s3cr3t-deploy-key-9f8e7d";

#[test]
fn a_task_runs_and_every_line_state_and_output_reaches_the_server_once() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = home(&fake);
    let mut spec = fake.task_spec(&["ubuntu-latest"], &job_payload(MAIN_JOB));
    spec.secrets.insert("DEPLOY_KEY".into(), SECRET.into());
    spec.vars.insert("GREETING".into(), "hello-vars".into());
    spec.needs.insert(
        "prep".into(),
        NeedSpec {
            outputs: BTreeMap::from([("version".to_string(), "1.2.3".to_string())]),
            result: pb::Result::Success,
        },
    );
    let token = spec.secrets["GITHUB_TOKEN"].clone();
    let id = fake.enqueue_task(spec);
    let daemon = home.start(&DaemonOptions::default());
    let task = wait_finished(&fake, &daemon, id);
    let all = describe_task(&task, &daemon);

    assert_eq!(task.result(), Some(pb::Result::Success), "{all}");
    assert_eq!(task.reported_result, Some(pb::Result::Success), "{all}");
    assert_eq!(task.runner_uuid.as_deref(), Some(home.uuid.as_str()));

    // Every printed line exactly once, in order, stdout and stderr alike.
    assert_eq!(
        rows_where(&task, |r| r.starts_with("gen-")),
        numbered("gen-", 150),
        "{all}"
    );
    assert_eq!(
        rows_where(&task, |r| r.starts_with("err-")),
        numbered("err-", 50),
        "{all}"
    );
    for row in [
        "need=1.2.3",
        "need-result=success",
        "var=hello-vars",
        "secret=***",
        "secret-env=***",
        "token=***",
        "job-env=job-level",
        &format!("sha={SHA}"),
        "repo=owner/repo",
        &format!("env-sha={SHA}"),
        "env-repo=owner/repo",
        &format!("run-id={id}"),
        "gitea-actions=true",
        &format!("server={}", fake.url()),
    ] {
        assert_eq!(row_count(&task, row), 1, "row {row:?} once:\n{all}");
    }
    // No secret anywhere: not in the log, not in the daemon's own diagnostics.
    for secret in [SECRET, token.as_str()] {
        assert!(
            !task.log.iter().any(|l| l.content.contains(secret)),
            "a secret reached the log:\n{all}"
        );
        assert!(!daemon.output().contains(secret), "a secret reached stderr");
    }

    // Step states by 0-based index, each step's rows inside its own range.
    assert_eq!(task.step_count, Some(3));
    let results: Vec<_> = task.steps.iter().map(|(i, s)| (*i, s.result)).collect();
    assert_eq!(
        results,
        [
            (0, pb::Result::Success),
            (1, pb::Result::Success),
            (2, pb::Result::Success)
        ],
        "{all}"
    );
    assert_eq!(step_state_problems(&task), Vec::<String>::new(), "{all}");
    let gen_rows: Vec<_> = task
        .step_log(0)
        .into_iter()
        .filter(|r| r.starts_with("gen-"))
        .collect();
    assert_eq!(gen_rows, numbered("gen-", 150), "step 0's range:\n{all}");
    assert!(
        task.step_log(1).contains(&"need=1.2.3".to_string()),
        "{all}"
    );
    let err_rows: Vec<_> = task
        .step_log(2)
        .into_iter()
        .filter(|r| r.starts_with("err-"))
        .collect();
    assert_eq!(err_rows, numbered("err-", 50), "step 2's range:\n{all}");
    for (i, step) in &task.steps {
        assert!(
            step.started_at.is_some() && step.stopped_at.is_some(),
            "step {i}: {step:?}"
        );
    }
    assert!(task.stopped_at.is_some(), "the task's stopped_at: {all}");

    // Job outputs, evaluated after the steps.
    assert_eq!(
        task.outputs,
        BTreeMap::from([
            ("from-need".to_string(), "1.2.3".to_string()),
            ("result".to_string(), "42".to_string()),
        ]),
        "{all}"
    );
    assert!(
        task.ignored_outputs.is_empty(),
        "{:?}",
        task.ignored_outputs
    );

    // The log: closed, no gap refused; the final UpdateLog came before the final UpdateTask.
    assert!(task.log_closed);
    assert_eq!(task.log_gaps_refused, 0, "{all}");
    let requests = fake.requests();
    let last_log = requests
        .iter()
        .rposition(|r| {
            r.method == Some(Method::UpdateLog)
                && r.body.as_ref().is_some_and(|b| b["noMore"] == true)
                && r.status == 200
        })
        .expect("a final UpdateLog");
    let final_update = requests
        .iter()
        .position(|r| {
            r.method == Some(Method::UpdateTask)
                && r.body
                    .as_ref()
                    .is_some_and(|b| b["state"]["result"] == "RESULT_SUCCESS")
        })
        .expect("a final UpdateTask");
    assert!(
        last_log < final_update,
        "no_more after the final UpdateTask"
    );

    // Declared as the protocol says: label names and the `cancelling` capability.
    let runner = fake.runner(&home.uuid).unwrap();
    assert!(runner.declares >= 1, "{runner:?}");
    assert_eq!(runner.labels, ["ubuntu-latest"]);
    assert!(
        runner.capabilities.iter().any(|c| c == "cancelling"),
        "{runner:?}"
    );
    println!(
        "rows stored {}, resent {}, UpdateLog calls {}, UpdateTask calls {}",
        task.log.len(),
        task.log_rows_resent,
        fake.requests_of(Method::UpdateLog).len(),
        task.updates
    );
}

#[test]
fn a_failing_step_fails_the_task_and_always_and_failure_steps_still_run() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = home(&fake);
    let job = r#"    steps:
      - run: echo first-step
      - run: |
          echo about-to-fail
          exit 3
      - run: echo never-printed
      - if: always()
        run: echo always-ran
      - if: failure()
        run: echo failure-ran
      - if: success()
        run: echo success-only
"#;
    let id = fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &job_payload(job)));
    let daemon = home.start(&DaemonOptions::default());
    let task = wait_finished(&fake, &daemon, id);
    let all = describe_task(&task, &daemon);
    assert_eq!(task.result(), Some(pb::Result::Failure), "{all}");
    let results: Vec<_> = task.steps.iter().map(|(i, s)| (*i, s.result)).collect();
    assert_eq!(
        results,
        [
            (0, pb::Result::Success),
            (1, pb::Result::Failure),
            (2, pb::Result::Skipped),
            (3, pb::Result::Success),
            (4, pb::Result::Success),
            (5, pb::Result::Skipped),
        ],
        "{all}"
    );
    for row in ["first-step", "about-to-fail", "always-ran", "failure-ran"] {
        assert_eq!(row_count(&task, row), 1, "{row}:\n{all}");
    }
    for row in ["never-printed", "success-only"] {
        assert_eq!(row_count(&task, row), 0, "{row}:\n{all}");
    }
    assert!(
        task.step_log(3).contains(&"always-ran".to_string()),
        "{all}"
    );
    assert_eq!(step_state_problems(&task), Vec::<String>::new(), "{all}");
}

#[test]
fn workflow_commands_masks_and_bad_bytes_reach_the_log_as_gitea_shows_them() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = home(&fake);
    let job = r#"    steps:
      - shell: bash
        run: |
          echo "::add-mask::runtime-secret-123"
          echo "value runtime-secret-123"
          echo "::group::My group"
          echo in-group
          echo "::endgroup::"
          echo "::warning file=a.txt,line=3::careful"
          echo "::debug::hidden-debug"
          printf 'bad-\xff-utf8\n'
          printf 'crlf-line\r\n'
"#;
    let id = fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &job_payload(job)));
    let daemon = home.start(&DaemonOptions::default());
    let task = wait_finished(&fake, &daemon, id);
    let all = describe_task(&task, &daemon);
    assert_eq!(task.result(), Some(pb::Result::Success), "{all}");
    let expected = [
        "value ***",
        "::group::My group",
        "in-group",
        "::endgroup::",
        "::warning file=a.txt,line=3::careful",
        "bad-?-utf8",
        "crlf-line",
    ];
    let shown: Vec<String> = task
        .step_log(0)
        .into_iter()
        .filter(|r| expected.contains(&r.as_str()))
        .collect();
    assert_eq!(shown, expected, "{all}");
    assert!(
        !task
            .log
            .iter()
            .any(|l| l.content.contains("runtime-secret-123")),
        "a mask added at run time leaked:\n{all}"
    );
    assert!(
        !task.log.iter().any(|l| l.content.contains("hidden-debug")),
        "::debug:: without ACTIONS_STEP_DEBUG:\n{all}"
    );
}

#[test]
fn a_huge_line_and_many_short_ones_all_arrive() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = home(&fake);
    let job = r#"    steps:
      - shell: bash
        run: |
          echo before-big
          head -c 3000000 /dev/zero | tr '\0' 'x'; echo
          echo after-big
          for i in $(seq 1 3000); do echo "s-$i"; done
"#;
    let id = fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &job_payload(job)));
    let daemon = home.start(&DaemonOptions::default());
    let task = wait_finished(&fake, &daemon, id);
    let summary = format!(
        "{} rows, longest {}",
        task.log.len(),
        task.log.iter().map(|l| l.content.len()).max().unwrap_or(0)
    );
    assert_eq!(
        task.result(),
        Some(pb::Result::Success),
        "{summary}\n{}",
        daemon.output()
    );
    let xs: usize = task
        .log
        .iter()
        .filter(|l| l.content.starts_with('x'))
        .map(|l| l.content.len())
        .sum();
    assert_eq!(
        xs, 3_000_000,
        "every byte of the 3 MB line, in rows: {summary}"
    );
    assert_eq!(row_count(&task, "before-big"), 1);
    assert_eq!(row_count(&task, "after-big"), 1);
    assert_eq!(
        rows_where(&task, |r| r.starts_with("s-")),
        numbered("s-", 3000)
    );
}

#[test]
fn a_task_that_cannot_run_fails_with_its_reason_and_the_daemon_goes_on() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = home(&fake);
    let broken = fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], "jobs: [unclosed\n"));
    let good = fake.enqueue_task(fake.task_spec(
        &["ubuntu-latest"],
        &job_payload("    steps:\n      - run: echo still-working\n"),
    ));
    let daemon = home.start(&DaemonOptions::default());
    let task = wait_finished(&fake, &daemon, broken);
    let all = describe_task(&task, &daemon);
    assert_eq!(task.result(), Some(pb::Result::Failure), "{all}");
    assert!(
        task.log
            .iter()
            .any(|l| l.content.contains("workflow is not valid")),
        "the reason is in the log:\n{all}"
    );
    let next = wait_finished(&fake, &daemon, good);
    assert_eq!(
        next.result(),
        Some(pb::Result::Success),
        "{}",
        describe_task(&next, &daemon)
    );
    assert_eq!(row_count(&next, "still-working"), 1);
}

#[test]
fn once_runs_one_task_and_exits_zero() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = home(&fake);
    let job = "    steps:\n      - run: echo once-ran\n";
    let first = fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &job_payload(job)));
    let second = fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &job_payload(job)));
    let mut daemon = home.start(&DaemonOptions::default().arg("--once"));
    let status = daemon
        .wait_exit(WAIT)
        .unwrap_or_else(|| panic!("--once did not exit:\n{}", daemon.output()));
    assert_eq!(status.code(), Some(0), "{}", daemon.output());
    let task = fake.task(first).unwrap();
    assert_eq!(
        task.result(),
        Some(pb::Result::Success),
        "{}",
        describe_task(&task, &daemon)
    );
    assert!(task.log_closed, "reported in full before exiting");
    assert_eq!(row_count(&task, "once-ran"), 1);
    assert_eq!(fake.task(second).unwrap().status, TaskStatus::Waiting);
    assert_eq!(fake.runner(&home.uuid).unwrap().tasks, [first]);
}

#[test]
fn an_ephemeral_runner_runs_one_task_and_exits_zero() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = RunnerHome::register_with(&fake, "ubuntu-latest:host", "", &["--ephemeral"]);
    let job = "    steps:\n      - run: echo ephemeral-ran\n";
    let first = fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &job_payload(job)));
    let second = fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &job_payload(job)));
    let mut daemon = home.start(&DaemonOptions::default().capacity(2));
    let status = daemon
        .wait_exit(WAIT)
        .unwrap_or_else(|| panic!("an ephemeral daemon did not exit:\n{}", daemon.output()));
    assert_eq!(status.code(), Some(0), "{}", daemon.output());
    let task = fake.task(first).unwrap();
    assert_eq!(
        task.result(),
        Some(pb::Result::Success),
        "{}",
        describe_task(&task, &daemon)
    );
    assert!(
        task.log_closed,
        "the log closed before the final UpdateTask deleted the runner"
    );
    assert_eq!(row_count(&task, "ephemeral-ran"), 1);
    assert_eq!(fake.task(second).unwrap().status, TaskStatus::Waiting);
    let runner = fake.runner(&home.uuid).unwrap();
    assert!(
        runner.deleted,
        "Gitea deletes an ephemeral runner after its task"
    );
    assert_eq!(runner.tasks, [first]);
}

#[test]
fn capacity_two_never_runs_more_than_two_tasks_at_once() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = home(&fake);
    let job = "    steps:\n      - run: |\n          echo start\n          sleep 2\n          echo stop\n";
    let ids: Vec<i64> = (0..5)
        .map(|_| fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &job_payload(job))))
        .collect();
    let daemon = home.start(&DaemonOptions::default().capacity(2));
    let tasks: Vec<TaskView> = ids
        .iter()
        .map(|&id| wait_finished(&fake, &daemon, id))
        .collect();
    for task in &tasks {
        assert_eq!(
            task.result(),
            Some(pb::Result::Success),
            "{}",
            describe_task(task, &daemon)
        );
        assert_eq!(
            rows_where(task, |r| r == "start" || r == "stop"),
            ["start", "stop"]
        );
    }
    // From the server's side: assignment to final report of each task.
    let spans: Vec<(SystemTime, SystemTime)> = tasks
        .iter()
        .map(|t| (t.assigned_at.unwrap(), t.finished_at.unwrap()))
        .collect();
    let most_at_once = spans
        .iter()
        .map(|(start, _)| {
            spans
                .iter()
                .filter(|(s, e)| s <= start && start < e)
                .count()
        })
        .max()
        .unwrap();
    let runner = fake.runner(&home.uuid).unwrap();
    println!(
        "most tasks at once: {most_at_once} (peak at assignment {})",
        runner.peak_running
    );
    assert!(most_at_once <= 2, "capacity 2 exceeded: {spans:?}");
    assert!(runner.peak_running <= 2, "{runner:?}");
    // Both slots are used: five 2-second tasks do not run one by one.
    assert_eq!(most_at_once, 2, "the second slot was never used: {spans:?}");
}

/// The value of the sample `name` (with its labels, e.g. `x{result="success"}`) in a
/// Prometheus text answer.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn metrics_count_the_real_tasks_and_rows() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = home(&fake);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ok = fake.enqueue_task(fake.task_spec(
        &["ubuntu-latest"],
        &job_payload("    steps:\n      - run: for i in 1 2 3; do echo m-$i; done\n"),
    ));
    let bad = fake.enqueue_task(fake.task_spec(
        &["ubuntu-latest"],
        &job_payload("    steps:\n      - run: exit 1\n"),
    ));
    let daemon = home.start(
        &DaemonOptions::default()
            .env("HYBRID_RUNNER_METRICS_ENABLED", "true")
            .env("HYBRID_RUNNER_METRICS_ADDR", format!("127.0.0.1:{port}")),
    );
    let stored: usize = [ok, bad]
        .iter()
        .map(|&id| wait_finished(&fake, &daemon, id).log.len())
        .sum();
    harness::install_crypto_provider();
    let client = reqwest::blocking::Client::new();
    let get = |path: &str| {
        let r = client
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    // The counters move once the task's work is over (just after its final report).
    let metrics = fake
        .wait_for(WAIT, |_| {
            let (_, text) = get("/metrics");
            (sample(&text, "hybrid_runner_tasks_running") == Some(0.0)
                && sample(&text, "hybrid_runner_tasks_total{result=\"failure\"}") == Some(1.0))
            .then_some(text)
        })
        .unwrap_or_else(|| panic!("metrics never settled: {}", get("/metrics").1));
    assert_eq!(
        sample(&metrics, "hybrid_runner_tasks_total{result=\"success\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "hybrid_runner_capacity"),
        Some(1.0),
        "{metrics}"
    );
    let sent = sample(&metrics, "hybrid_runner_log_rows_sent_total").unwrap_or(0.0);
    assert!(
        sent >= stored as f64,
        "{sent} rows sent, {stored} stored:\n{metrics}"
    );
    assert!(
        sample(&metrics, "hybrid_runner_polls_total").unwrap_or(0.0) >= 2.0,
        "{metrics}"
    );
    assert_eq!(get("/healthz").0, 200);
    assert_eq!(get("/readyz").0, 200);
}

#[test]
fn a_missing_runner_file_is_a_usage_error_that_says_to_register() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = home(&fake);
    std::fs::remove_file(&home.runner_file).unwrap();
    let mut daemon = home.start(&DaemonOptions::default());
    let status = daemon.wait_exit(Duration::from_secs(60)).expect("it exits");
    assert_eq!(status.code(), Some(2), "{}", daemon.output());
    assert!(
        daemon.output().contains("hybrid-runner register"),
        "{}",
        daemon.output()
    );
    assert!(fake.requests_of(Method::Declare).is_empty());
}

/// Step states are by position in the job's `steps:`, as Gitea numbers the step rows it
/// made when it assigned the task: the two steps inside a composite action log into the
/// step using it, and an action's `pre` and `post` log into the job's set-up and
/// completion (before the first step's rows, after the last step's), as act_runner
/// reports them. Exactly one state per step, each with its own rows.
#[test]
fn step_states_follow_the_jobs_steps_through_composite_pre_and_post() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = home(&fake);
    let mirror = tempfile::tempdir().unwrap();
    let action = mirror.path().join("acme").join("prepost");
    harness::git::repo(
        &action,
        &[
            (
                "action.yml",
                "name: prepost\nruns:\n  using: node20\n  pre: pre.js\n  main: main.js\n  post: post.js\n",
            ),
            ("pre.js", "console.log('pre-ran');\n"),
            ("main.js", "console.log('main-ran');\n"),
            ("post.js", "console.log('post-ran');\n"),
        ],
    );
    harness::git::git(&action, &["tag", "v1"]);
    let composite = "name: comp\\nruns:\\n  using: composite\\n  steps:\\n    - run: echo comp-one\\n      shell: bash\\n    - run: echo comp-two\\n      shell: bash\\n";
    let payload = format!(
        r#"name: ci
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - name: make the composite action
        run: |
          mkdir -p comp && printf '{composite}' > comp/action.yml && echo made
      - name: composite
        uses: ./comp
      - name: node
        uses: acme/prepost@v1
      - name: last
        run: echo last-step
"#
    );
    let mut spec = fake.task_spec(&["ubuntu-latest"], &payload);
    spec.context["gitea_default_actions_url"] =
        serde_json::Value::String(format!("file://{}", mirror.path().display()));
    let id = fake.enqueue_task(spec);
    let daemon = home.start(&DaemonOptions::default());
    let task = wait_finished(&fake, &daemon, id);
    let all = describe_task(&task, &daemon);
    assert_eq!(task.result(), Some(pb::Result::Success), "{all}");
    assert_eq!(
        task.steps.keys().copied().collect::<Vec<_>>(),
        [0, 1, 2, 3],
        "one state per step of the job: {all}"
    );
    for (position, state) in &task.steps {
        assert_eq!(state.result, pb::Result::Success, "step {position}: {all}");
    }
    assert_eq!(task.step_log(0), ["made"], "{all}");
    assert_eq!(task.step_log(1), ["comp-one", "comp-two"], "{all}");
    assert_eq!(task.step_log(2), ["main-ran"], "{all}");
    assert_eq!(task.step_log(3), ["last-step"], "{all}");
    let lines = task.log_lines();
    let at = |text: &str| lines.iter().position(|l| l == text).unwrap();
    assert!(
        (at("pre-ran") as i64) < task.steps[&0].log_index,
        "pre logs into the set-up: {all}"
    );
    let last = &task.steps[&3];
    assert!(
        at("post-ran") as i64 >= last.log_index + last.log_length,
        "post logs into the completion: {all}"
    );
    assert_eq!(step_state_problems(&task), Vec::<String>::new(), "{all}");
}
