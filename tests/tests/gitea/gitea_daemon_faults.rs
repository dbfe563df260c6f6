#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real `hybrid-runner daemon` against a fake Gitea that misbehaves, and a daemon that
//! is stopped in every way: 20 % of calls answered 500 plus connections dropped before and
//! after the call took effect; acknowledgements lagging behind and partial acceptance;
//! SIGKILL mid-task and a restart (the spool delivers what the daemon had, once, and the
//! task ends FAILURE); cancellation from the server mid-step (SIGINT to the step,
//! `always()` still runs, nothing left running); the runner deleted on the server, idle or
//! mid-task (exit 1 with the contract's message; registered again, the daemon drops the old
//! task's spool and works on); Declare failing at start (retried); SIGTERM while a task
//! runs (drained, reported, exit 0) and with a short `shutdown_timeout` (cancelled, still
//! reported), and a second SIGTERM stopping even the `always()` steps. In every case the
//! server's stored log has no row lost or duplicated.

use std::time::Duration;

use harness::daemon_checks::{
    WAIT, describe_task, job_payload, numbered, row_count, rows_where, step_state_problems,
    wait_finished, wait_polling, wait_row,
};
use harness::daemon_process::{
    Daemon, DaemonOptions, RunnerHome, processes_with_env, wait_processes_gone,
};
use harness::fake_gitea::{
    FakeGitea, FakeGiteaOptions, Fault, Method, RandomFailures, TaskStatus, TaskView, pb,
};
use nix::sys::signal::Signal;

fn home(fake: &FakeGitea) -> RunnerHome {
    RunnerHome::register(fake, "ubuntu-latest:host", "")
}

/// Three steps of 120 numbered lines each, printed in bursts of 10 with `pause` seconds
/// between them, so the daemon ships them in many calls; a fourth sets the job output
/// `total`.
fn chatty_job(pause: &str) -> String {
    let step = |prefix: &str, redirect: &str| {
        format!(
            "      - shell: bash\n        run: for i in $(seq 1 120); do echo \"{prefix}$i\"{redirect}; if (( i % 10 == 0 )); then sleep {pause}; fi; done\n"
        )
    };
    format!(
        "    outputs:\n      total: ${{{{ steps.last.outputs.total }}}}\n    steps:\n{}{}{}      - id: last\n        run: echo \"total=360\" >> \"$GITHUB_OUTPUT\"\n",
        step("a-", ""),
        step("b-", ""),
        step("c-", " >&2"),
    )
}

fn assert_chatty_log_complete(task: &TaskView, daemon: &Daemon) {
    let all = describe_task(task, daemon);
    for prefix in ["a-", "b-", "c-"] {
        assert_eq!(
            rows_where(task, |r| r.starts_with(prefix)),
            numbered(prefix, 120),
            "{all}"
        );
    }
    assert_eq!(step_state_problems(task), Vec::<String>::new(), "{all}");
    assert_eq!(
        task.outputs.get("total").map(String::as_str),
        Some("360"),
        "{all}"
    );
}

#[test]
fn twenty_percent_of_calls_failing_and_dropped_connections_lose_no_row() {
    let fake = FakeGitea::start(FakeGiteaOptions {
        seed: Some(20),
        ..FakeGiteaOptions::default()
    });
    let home = home(&fake);
    let daemon = home.start(&DaemonOptions::default());
    wait_polling(&fake, &daemon);
    // From now on 20 % of the daemon's calls get a proxy's 500; on top of that, log and
    // state calls whose connection drops before or after they took effect.
    fake.update_faults(|f| {
        f.random = Some(RandomFailures {
            percent: 20,
            fault: Fault::HttpStatus(500),
            methods: vec![],
        })
    });
    fake.fail_next(Method::UpdateLog, 3, Fault::DropAfterHandling);
    fake.fail_next(Method::UpdateTask, 2, Fault::DropAfterHandling);
    fake.fail_next(Method::UpdateLog, 2, Fault::DropBeforeHandling);
    fake.fail_next(Method::FetchTask, 2, Fault::DropBeforeHandling);
    let first =
        fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &job_payload(&chatty_job("0.1"))));
    let second =
        fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &job_payload(&chatty_job("0.1"))));
    for id in [first, second] {
        let task = wait_finished(&fake, &daemon, id);
        assert_eq!(
            task.result(),
            Some(pb::Result::Success),
            "{}",
            describe_task(&task, &daemon)
        );
        assert_chatty_log_complete(&task, &daemon);
    }
    assert!(fake.faults().next.is_empty(), "every injected drop was hit");
    let failed = fake.requests().iter().filter(|r| r.status == 500).count();
    assert!(failed > 0, "the random faults hit nothing");
    // Rows whose ack was lost in a dropped answer came again and were de-duplicated.
    let resent: usize = [first, second]
        .iter()
        .map(|&id| fake.task(id).unwrap().log_rows_resent)
        .sum();
    assert!(resent > 0, "no row was resent after a dropped answer");
    println!("500s answered: {failed}, rows resent: {resent}");
}

#[test]
fn lagging_and_partial_acknowledgements_lose_and_duplicate_nothing() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = home(&fake);
    let daemon = home.start(&DaemonOptions::default());
    wait_polling(&fake, &daemon);
    // A faulted call may be answered by a resend that finds every row stored already, so
    // the faults need a job that ships over several seconds to be used up: ~7 s here.
    fake.fail_next(Method::UpdateLog, 3, Fault::LogAckLag(7));
    fake.fail_next(Method::UpdateLog, 2, Fault::LogAcceptAtMost(3));
    fake.fail_next(Method::UpdateLog, 2, Fault::LogAckLag(1000));
    let id =
        fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &job_payload(&chatty_job("0.2"))));
    let task = wait_finished(&fake, &daemon, id);
    assert_eq!(
        task.result(),
        Some(pb::Result::Success),
        "{}",
        describe_task(&task, &daemon)
    );
    assert_chatty_log_complete(&task, &daemon);
    assert!(
        fake.faults().next.is_empty(),
        "not every lag was hit: {:?}",
        fake.faults().next
    );
    assert!(
        task.log_rows_resent > 0,
        "lagging acks make the daemon resend"
    );
    assert_eq!(
        task.log_gaps_refused, 0,
        "the daemon resent from ack_index, never past it"
    );
}

#[test]
fn sigkill_mid_task_then_restart_delivers_the_spooled_rows_once_and_ends_the_task() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = home(&fake);
    let marker = format!("HR_TEST_MARKER=killed-{}", std::process::id());
    // A background process that outlives the killed daemon (it writes to no pipe of it).
    let job = format!(
        r#"    env:
      HR_TEST_MARKER: {}
    steps:
      - shell: bash
        run: |
          sleep 600 >/dev/null 2>&1 &
          for i in $(seq 1 600); do echo "n-$i"; sleep 0.02; done
"#,
        marker.split_once('=').unwrap().1
    );
    let id = fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &job_payload(&job)));
    let mut daemon = home.start(&DaemonOptions::default());
    wait_row(&fake, &daemon, id, "n-10");
    // The server stops storing rows: the daemon keeps them in its spool and keeps trying.
    fake.fail_next(Method::UpdateLog, 1_000_000, Fault::HttpStatus(503));
    // Wait until a refused call carried n-50: the daemon had it (spooled before sending).
    let had = |f: &FakeGitea| {
        f.requests_of(Method::UpdateLog).iter().any(|r| {
            r.body.as_ref().is_some_and(|b| {
                b["rows"]
                    .as_array()
                    .is_some_and(|rows| rows.iter().any(|row| row["content"] == "n-50"))
            })
        })
    };
    fake.wait_for(WAIT, |f| had(f).then_some(()))
        .unwrap_or_else(|| panic!("n-50 never sent:\n{}", daemon.output()));
    let stored_before = fake.task(id).unwrap().log.len();
    daemon.kill();
    fake.update_faults(|f| f.next.clear());
    assert!(fake.task(id).unwrap().status == TaskStatus::Running);
    assert!(
        home.spool().exists(),
        "the killed daemon's spool is at {}",
        home.spool().display()
    );

    assert!(
        !processes_with_env(&marker).is_empty(),
        "the step's background process outlived the killed daemon"
    );

    // The restarted daemon stops what the killed one's steps left running and finishes
    // the left-over task from its spool.
    let daemon = home.start(&DaemonOptions::default());
    let task = wait_finished(&fake, &daemon, id);
    let all = describe_task(&task, &daemon);
    assert_eq!(task.result(), Some(pb::Result::Failure), "{all}");
    let numbered_rows = rows_where(&task, |r| r.starts_with("n-"));
    let k = numbered_rows.len();
    assert!(
        k >= 50,
        "the spooled rows up to n-50 were delivered: {k}\n{all}"
    );
    assert_eq!(
        numbered_rows,
        numbered("n-", k),
        "a prefix, once each:\n{all}"
    );
    assert!(
        task.log.len() > k,
        "the runner's own row about the stop follows:\n{all}"
    );
    println!(
        "rows stored before the kill: {stored_before}, numbered rows delivered: {k}, last rows: {:?}",
        &task.log_lines()[k.saturating_sub(1)..]
    );
    // Recovery cleans the spool and the daemon goes on with new work.
    let next = fake.enqueue_task(fake.task_spec(
        &["ubuntu-latest"],
        &job_payload("    steps:\n      - run: echo after-restart\n"),
    ));
    let after = wait_finished(&fake, &daemon, next);
    assert_eq!(
        after.result(),
        Some(pb::Result::Success),
        "{}",
        describe_task(&after, &daemon)
    );
    assert_eq!(row_count(&after, "after-restart"), 1);
    // The spool folder of a task goes once its final report is answered.
    let spool_entries = || -> Vec<std::ffi::OsString> {
        std::fs::read_dir(home.spool())
            .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
            .unwrap_or_default()
    };
    let emptied = fake.wait_for(Duration::from_secs(30), |_| {
        spool_entries().is_empty().then_some(())
    });
    assert!(
        emptied.is_some(),
        "spool entries left: {:?}",
        spool_entries()
    );
    let orphans = wait_processes_gone(&marker, Duration::from_secs(30));
    assert!(
        orphans.is_empty(),
        "the killed daemon's step processes are left: {orphans:?}"
    );
}

#[test]
fn sigkill_with_two_tasks_running_recovers_both() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = home(&fake);
    let job = |prefix: &str| {
        job_payload(&format!(
            "    steps:\n      - shell: bash\n        run: for i in $(seq 1 600); do echo \"{prefix}$i\"; sleep 0.02; done\n"
        ))
    };
    let first = fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &job("p-")));
    let second = fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &job("q-")));
    let mut daemon = home.start(&DaemonOptions::default().capacity(2));
    wait_row(&fake, &daemon, first, "p-5");
    wait_row(&fake, &daemon, second, "q-5");
    daemon.kill();
    let daemon = home.start(&DaemonOptions::default().capacity(2));
    for (id, prefix) in [(first, "p-"), (second, "q-")] {
        let task = wait_finished(&fake, &daemon, id);
        let all = describe_task(&task, &daemon);
        assert_eq!(task.result(), Some(pb::Result::Failure), "{all}");
        let rows = rows_where(&task, |r| r.starts_with(prefix));
        assert!(rows.len() >= 5, "{all}");
        assert_eq!(
            rows,
            numbered(prefix, rows.len()),
            "a prefix, once each:\n{all}"
        );
        assert!(
            task.log
                .last()
                .is_some_and(|l| !l.content.starts_with(prefix)),
            "the runner's row about the stop ends the log:\n{all}"
        );
    }
}

#[test]
fn a_cancel_from_the_server_interrupts_the_step_and_always_steps_run() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = home(&fake);
    let marker = format!("HR_TEST_MARKER=cancel-{}", std::process::id());
    let value = marker.split_once('=').unwrap().1;
    let job = format!(
        r#"    env:
      HR_TEST_MARKER: {value}
    steps:
      - shell: bash
        run: |
          trap 'echo got-sigint; exit 130' INT
          echo step-started
          for i in $(seq 1 1200); do sleep 0.1; done
          echo not-interrupted
      - run: echo never-runs
      - if: always()
        run: echo always-ran
"#
    );
    let id = fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &job_payload(&job)));
    let daemon = home.start(&DaemonOptions::default());
    wait_row(&fake, &daemon, id, "step-started");
    assert!(fake.cancel_task(id));
    let task = wait_finished(&fake, &daemon, id);
    let all = describe_task(&task, &daemon);
    assert_eq!(task.result(), Some(pb::Result::Cancelled), "{all}");
    assert_eq!(task.reported_result, Some(pb::Result::Cancelled), "{all}");
    assert_eq!(
        row_count(&task, "got-sigint"),
        1,
        "the step got SIGINT:\n{all}"
    );
    assert_eq!(row_count(&task, "not-interrupted"), 0, "{all}");
    assert_eq!(row_count(&task, "never-runs"), 0, "{all}");
    assert_eq!(row_count(&task, "always-ran"), 1, "{all}");
    assert_eq!(
        task.steps.get(&0).map(|s| s.result),
        Some(pb::Result::Cancelled),
        "{all}"
    );
    assert_eq!(
        task.steps.get(&2).map(|s| s.result),
        Some(pb::Result::Success),
        "{all}"
    );
    let left = wait_processes_gone(&marker, Duration::from_secs(30));
    assert!(left.is_empty(), "step processes left: {left:?}");
}

#[test]
fn a_deleted_runner_stops_the_daemon_with_exit_1_and_the_contract_message() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = home(&fake);
    let mut daemon = home.start(&DaemonOptions::default());
    wait_polling(&fake, &daemon);
    assert!(fake.delete_runner(&home.uuid));
    let status = daemon
        .wait_exit(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("still running:\n{}", daemon.output()));
    let output = daemon.output();
    assert_eq!(status.code(), Some(1), "{output}");
    let expected = format!(
        "error: {} refused this runner's credentials (it was deleted or re-registered); register again with hybrid-runner register",
        fake.url()
    );
    assert!(
        output.contains(&expected),
        "want {expected:?} in:\n{output}"
    );
}

#[test]
fn transient_declare_failures_are_retried() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = home(&fake);
    fake.fail_next(Method::Declare, 2, Fault::HttpStatus(503));
    fake.fail_next(Method::Declare, 1, Fault::DropBeforeHandling);
    let id = fake.enqueue_task(fake.task_spec(
        &["ubuntu-latest"],
        &job_payload("    steps:\n      - run: echo declared-at-last\n"),
    ));
    let daemon = home.start(&DaemonOptions::default());
    let task = wait_finished(&fake, &daemon, id);
    assert_eq!(
        task.result(),
        Some(pb::Result::Success),
        "{}",
        describe_task(&task, &daemon)
    );
    assert_eq!(row_count(&task, "declared-at-last"), 1);
    assert_eq!(
        fake.requests_of(Method::Declare).len(),
        4,
        "three failures, then one"
    );
}

#[test]
fn a_runner_deleted_mid_task_exits_1_and_registered_again_works_on() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = home(&fake);
    let job = "    steps:\n      - run: |\n          echo started\n          sleep 2\n          echo done\n";
    let id = fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &job_payload(job)));
    let mut daemon = home.start(&DaemonOptions::default());
    wait_row(&fake, &daemon, id, "started");
    assert!(fake.delete_runner(&home.uuid));
    let status = daemon
        .wait_exit(WAIT)
        .unwrap_or_else(|| panic!("still running:\n{}", daemon.output()));
    assert_eq!(status.code(), Some(1), "{}", daemon.output());
    assert!(
        daemon
            .output()
            .contains("refused this runner's credentials"),
        "{}",
        daemon.output()
    );
    // Registered again in the same folder: the new identity cannot report the old task
    // (the server says it is another runner's); the daemon drops it and works on.
    std::fs::remove_file(&home.runner_file).unwrap();
    let out = harness::cli::command()
        .arg("register")
        .args(["-c", home.config.to_str().unwrap(), "--no-interactive"])
        .args([
            "--instance",
            &fake.url(),
            "--token",
            FakeGitea::REGISTRATION_TOKEN,
        ])
        .args(["--labels", "ubuntu-latest:host"])
        .current_dir(home.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let next = fake.enqueue_task(fake.task_spec(
        &["ubuntu-latest"],
        &job_payload("    steps:\n      - run: echo new-identity\n"),
    ));
    let daemon = home.start(&DaemonOptions::default());
    let task = wait_finished(&fake, &daemon, next);
    assert_eq!(
        task.result(),
        Some(pb::Result::Success),
        "{}",
        describe_task(&task, &daemon)
    );
    assert_eq!(row_count(&task, "new-identity"), 1);
    assert_eq!(
        fake.task(id).unwrap().status,
        TaskStatus::Running,
        "the old task stays the deleted runner's"
    );
    let emptied = fake.wait_for(Duration::from_secs(30), |_| {
        std::fs::read_dir(home.spool())
            .map_or(true, |mut d| d.next().is_none())
            .then_some(())
    });
    assert!(emptied.is_some(), "the old task's spool folder is left");
}

/// A step silent for 8 s: longer than the 5 s heartbeat.
const SLOW_JOB: &str = r#"    steps:
      - shell: bash
        run: |
          echo before-sleep
          sleep 8
          echo after-sleep
"#;

#[test]
fn sigterm_drains_the_running_task_reports_it_and_exits_zero() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = home(&fake);
    let id = fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &job_payload(SLOW_JOB)));
    let mut daemon =
        home.start(&DaemonOptions::default().env("HYBRID_RUNNER_RUNNER_SHUTDOWN_TIMEOUT", "60s"));
    wait_row(&fake, &daemon, id, "before-sleep");
    daemon.signal(Signal::SIGTERM);
    // Stopping: no new task is taken.
    let later = fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &job_payload(SLOW_JOB)));
    let status = daemon
        .wait_exit(WAIT)
        .unwrap_or_else(|| panic!("still running:\n{}", daemon.output()));
    assert_eq!(status.code(), Some(0), "{}", daemon.output());
    let task = fake.task(id).unwrap();
    let all = describe_task(&task, &daemon);
    assert_eq!(task.result(), Some(pb::Result::Success), "{all}");
    assert!(task.log_closed, "{all}");
    assert_eq!(row_count(&task, "after-sleep"), 1, "{all}");
    assert_eq!(fake.task(later).unwrap().status, TaskStatus::Waiting);
    // Heartbeats during the silent step (at least every 5 s; 8 s without them).
    println!(
        "longest silence between UpdateTask calls: {:?}",
        task.longest_silence
    );
    assert!(
        task.longest_silence < Duration::from_millis(7500),
        "no heartbeat during an 8 s silent step: {:?}",
        task.longest_silence
    );
}

#[test]
fn sigterm_past_shutdown_timeout_cancels_the_task_and_still_reports_it() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = home(&fake);
    let job = r#"    steps:
      - shell: bash
        run: |
          trap 'echo got-sigint; exit 130' INT
          echo long-step
          for i in $(seq 1 1200); do sleep 0.1; done
      - if: always()
        run: echo cleanup-ran
"#;
    let id = fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &job_payload(job)));
    let mut daemon =
        home.start(&DaemonOptions::default().env("HYBRID_RUNNER_RUNNER_SHUTDOWN_TIMEOUT", "1s"));
    wait_row(&fake, &daemon, id, "long-step");
    daemon.signal(Signal::SIGTERM);
    let status = daemon
        .wait_exit(WAIT)
        .unwrap_or_else(|| panic!("still running:\n{}", daemon.output()));
    assert_eq!(status.code(), Some(0), "{}", daemon.output());
    let task = fake.task(id).unwrap();
    let all = describe_task(&task, &daemon);
    assert_eq!(task.result(), Some(pb::Result::Cancelled), "{all}");
    assert!(task.log_closed, "{all}");
    assert_eq!(row_count(&task, "got-sigint"), 1, "{all}");
    assert_eq!(row_count(&task, "cleanup-ran"), 1, "{all}");
}

#[test]
fn a_second_sigterm_stops_even_the_always_steps_and_the_task_is_still_reported() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = home(&fake);
    let marker = format!("HR_TEST_MARKER=hard-{}", std::process::id());
    let job = format!(
        r#"    env:
      HR_TEST_MARKER: {}
    steps:
      - shell: bash
        run: |
          echo first-step
          sleep 600
      - if: always()
        shell: bash
        run: |
          echo slow-cleanup
          sleep 600
"#,
        marker.split_once('=').unwrap().1
    );
    let id = fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &job_payload(&job)));
    let mut daemon =
        home.start(&DaemonOptions::default().env("HYBRID_RUNNER_RUNNER_SHUTDOWN_TIMEOUT", "1s"));
    wait_row(&fake, &daemon, id, "first-step");
    daemon.signal(Signal::SIGTERM);
    // After the grace the task is cancelled and its always() step starts; a second
    // signal stops that too.
    wait_row(&fake, &daemon, id, "slow-cleanup");
    daemon.signal(Signal::SIGTERM);
    let status = daemon
        .wait_exit(WAIT)
        .unwrap_or_else(|| panic!("still running:\n{}", daemon.output()));
    assert_eq!(status.code(), Some(0), "{}", daemon.output());
    let task = fake.task(id).unwrap();
    let all = describe_task(&task, &daemon);
    assert_eq!(task.result(), Some(pb::Result::Cancelled), "{all}");
    assert!(task.log_closed, "{all}");
    let left = wait_processes_gone(&marker, Duration::from_secs(30));
    assert!(left.is_empty(), "step processes left: {left:?}");
}

/// Forgejo's idempotent FetchTask: the FetchTask that assigns a task loses its answer (the
/// connection drops after the server took it), and the daemon's next FetchTask carries the
/// same `x-runner-request-key`, so the server hands the task out again and it runs instead
/// of staying assigned to nobody. After that answer the key changes.
#[test]
fn a_lost_fetch_answer_is_redelivered_by_its_request_key() {
    let fake = FakeGitea::start(FakeGiteaOptions {
        redeliver_by_request_key: true,
        ..FakeGiteaOptions::default()
    });
    let home = home(&fake);
    let daemon = home.start(&DaemonOptions::default());
    wait_polling(&fake, &daemon);
    fake.fail_next(Method::FetchTask, 1, Fault::DropAfterHandling);
    let id = fake.enqueue_task(fake.task_spec(
        &["ubuntu-latest"],
        &job_payload("    steps:\n      - run: echo redelivered\n"),
    ));
    let task = wait_finished(&fake, &daemon, id);
    let all = describe_task(&task, &daemon);
    assert_eq!(task.result(), Some(pb::Result::Success), "{all}");
    assert_eq!(task.redeliveries, 1, "{all}");
    assert!(task.log_lines().iter().any(|l| l == "redelivered"), "{all}");
    // The call that got the task (answer lost) and its retry carry the same key; the call
    // after the answered retry a new one.
    let keys: Vec<Option<String>> = fake
        .requests_of(Method::FetchTask)
        .into_iter()
        .map(|r| r.request_key)
        .collect();
    assert!(
        keys.iter().all(Option::is_some),
        "every FetchTask carries a key"
    );
    let assigned = keys
        .iter()
        .position(|k| *k == task.request_key)
        .expect("the task was assigned under a key the daemon sent");
    assert_eq!(
        keys.get(assigned + 1),
        Some(&task.request_key),
        "the retry kept the key"
    );
    if let Some(next) = keys.get(assigned + 2) {
        assert_ne!(
            next, &task.request_key,
            "an answered call's key is not used again"
        );
    }
}
