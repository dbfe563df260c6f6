//! Ctrl-C: SIGINT to the runner cancels steps, `always()`/`cancelled()` still run, exit 130.
//! SIGTERM and SIGHUP do the same and exit 143 and 129.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use harness::daemon_process::gone;
use nix::sys::signal::Signal;

use super::*;

/// Runs `exec --json ARGS` and sends it SIGINT each time the number of output lines
/// ending in `ready` reaches the next of `ready_counts`; returns the run and how long it
/// took to stop after the first signal.
fn interrupt_when_ready(repo: &Repo, args: &[&str], ready_counts: &[usize]) -> (Run, Duration) {
    let signals: Vec<_> = ready_counts.iter().map(|&n| (n, Signal::SIGINT)).collect();
    signal_when_ready(repo, args, &signals, None)
}

/// [`interrupt_when_ready`] with a signal of choice per count, and `TMPDIR` set to `temp`.
fn signal_when_ready(
    repo: &Repo,
    args: &[&str],
    signals: &[(usize, Signal)],
    temp: Option<&Path>,
) -> (Run, Duration) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let mut command = repo.command(&all);
    if let Some(temp) = temp {
        command.env("TMPDIR", temp);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut seen: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut interrupted = None;
    for &(count, signal) in signals {
        while seen.iter().filter(|l| l.ends_with("ready\"}")).count() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(_) => {
                    let _ = child.kill();
                    panic!("no {count} ready lines: {seen:#?}");
                }
            }
        }
        interrupted.get_or_insert_with(Instant::now);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    }
    let interrupted = interrupted.unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if interrupted.elapsed() > Duration::from_secs(6) {
            let _ = child.kill();
            let _ = child.wait();
            seen.extend(rx.try_iter());
            let mut stderr = String::new();
            let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr);
            panic!("exec did not stop within 6 s of SIGINT: {seen:#?}\nstderr: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stopped = interrupted.elapsed();
    reader.join().unwrap();
    seen.extend(rx.try_iter());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let run = Run {
        code: status.code(),
        stdout: seen.join("\n") + "\n",
        stderr,
    };
    (run, stopped)
}

#[test]
fn ctrl_c_interrupts_the_step_runs_always_and_cancelled_steps_and_exits_130() {
    let repo = Repo::with(
        "on: push
jobs:
  slow:
    runs-on: ubuntu-latest
    steps:
      - run: |
          trap 'echo \"got INT\"; sleep 0.5; exit 1' INT
          # Parsed before `ready`: a SIGINT landing while bash parses a `$(...)` breaks
          # the parse (\"interrupt trap: unexpected EOF while looking for matching `)'\").
          # Short sleeps: a SIGINT landing while bash forks one is not lost for long.
          wait_here() { i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done; }
          echo ready
          wait_here
          echo not-interrupted
      - run: echo should-not-run
      - if: always()
        run: echo always ran
      - if: cancelled()
        run: echo cancelled ran
      - if: failure()
        run: echo failure ran
",
    );
    let (run, stopped) = interrupt_when_ready(&repo, &[], &[1]);
    run.assert_code(130);
    assert!(stopped < Duration::from_secs(4), "took {stopped:?}");
    assert_eq!(
        run.output("slow"),
        lines(&["ready", "got INT", "always ran", "cancelled ran"]),
        "{}",
        run.all()
    );
    assert_eq!(
        run.steps("slow"),
        lines(&[
            "__run:cancelled/cancelled",
            "__run_2:skipped/skipped",
            "__run_3:success/success",
            "__run_4:success/success",
            "__run_5:skipped/skipped",
        ])
    );
    assert_eq!(run.job("slow").as_deref(), Some("cancelled"));
    assert!(run.stderr.contains("cancelling"), "{}", run.all());
}

#[test]
fn ctrl_c_skips_waiting_jobs_but_runs_always_and_cancelled_jobs() {
    let repo = Repo::with(
        "on: push
jobs:
  slow:
    runs-on: ubuntu-latest
    steps:
      - run: echo ready; exec sleep 30
  default-if:
    needs: slow
    runs-on: ubuntu-latest
    steps:
      - run: echo default-ran
  always:
    needs: slow
    if: always()
    runs-on: ubuntu-latest
    steps:
      - run: echo \"always-ran slow=${{ needs.slow.result }}\"
      - run: echo \"second step too, status=${{ job.status }}\"
  on-cancel:
    needs: slow
    if: cancelled()
    runs-on: ubuntu-latest
    steps:
      - run: echo cancelled-ran
  queued:
    runs-on: ubuntu-latest
    strategy:
      max-parallel: 1
      matrix:
        n: [1, 2]
    steps:
      - run: echo \"leg ${{ matrix.n }} ready\"; exec sleep 30
",
    );
    let (run, stopped) = interrupt_when_ready(&repo, &["--concurrency", "4"], &[2]);
    run.assert_code(130);
    assert!(stopped < Duration::from_secs(4), "took {stopped:?}");
    assert_eq!(
        run.jobs(),
        lines(&[
            "always=success",
            "default-if=skipped",
            "on-cancel=success",
            "queued (1)=cancelled",
            // Queued legs are cancelled too, as on GitHub.
            "queued (2)=cancelled",
            "slow=cancelled",
        ]),
        "{}",
        run.all()
    );
    assert_eq!(
        run.output("always"),
        lines(&[
            "always-ran slow=cancelled",
            "second step too, status=success"
        ])
    );
    assert_eq!(run.output("on-cancel"), lines(&["cancelled-ran"]));
    assert_eq!(run.output("queued"), lines(&["leg 1 ready"]));
    assert!(
        run.notes("queued")
            .contains(&"the run was cancelled before this leg started".to_string()),
        "{}",
        run.all()
    );
}

#[test]
fn a_second_ctrl_c_stops_the_always_steps_too() {
    let repo = Repo::with(
        "on: push
jobs:
  slow:
    runs-on: ubuntu-latest
    steps:
      - run: echo ready; exec sleep 30
      - if: always()
        run: echo cleanup ready; for i in $(seq 300); do sleep 0.1; done; echo cleanup-finished
      - if: always()
        run: echo not-reached
",
    );
    let (run, stopped) = interrupt_when_ready(&repo, &[], &[1, 2]);
    run.assert_code(130);
    assert!(stopped < Duration::from_secs(4), "took {stopped:?}");
    assert_eq!(run.output("slow"), lines(&["ready", "cleanup ready"]));
    assert_eq!(run.job("slow").as_deref(), Some("cancelled"));
    let steps = run.steps("slow");
    assert_eq!(
        steps,
        lines(&[
            "__run:cancelled/cancelled",
            "__run_2:cancelled/cancelled",
            "__run_3:skipped/skipped"
        ])
    );
}

#[test]
fn sigterm_stops_the_steps_runs_always_steps_removes_the_scratch_folder_and_exits_143() {
    let temp = tempfile::tempdir().unwrap();
    let repo = Repo::with(
        "on: push
jobs:
  slow:
    runs-on: ubuntu-latest
    steps:
      - run: |
          # bash makes a background job ignore SIGINT; this one takes it back.
          perl -e '$SIG{INT} = \"DEFAULT\"; sleep 30' &
          echo \"child $!\"
          echo ready
          for i in $(seq 300); do sleep 0.1; done
          echo not-interrupted
      - run: echo should-not-run
      - if: always()
        run: echo always ran
",
    );
    let (run, stopped) = signal_when_ready(&repo, &[], &[(1, Signal::SIGTERM)], Some(temp.path()));
    let child: i32 = run
        .output("slow")
        .iter()
        .find_map(|l| l.strip_prefix("child ")?.parse().ok())
        .expect("the step printed its child's pid");
    let child_gone = gone(child);
    if !child_gone {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child), Signal::SIGKILL);
    }
    run.assert_code(143);
    assert!(stopped < Duration::from_secs(4), "took {stopped:?}");
    assert!(
        child_gone,
        "the step's background child {child} outlived SIGTERM"
    );
    assert_eq!(
        run.job("slow").as_deref(),
        Some("cancelled"),
        "{}",
        run.all()
    );
    assert_eq!(
        run.steps("slow"),
        lines(&[
            "__run:cancelled/cancelled",
            "__run_2:skipped/skipped",
            "__run_3:success/success",
        ])
    );
    assert!(run.stderr.contains("cancelling (SIGTERM)"), "{}", run.all());
    let left: Vec<_> = std::fs::read_dir(temp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "the run left {left:?} in its temporary folder"
    );
}

#[test]
fn sighup_cancels_with_129_and_a_following_sigterm_stops_the_always_steps() {
    let repo = Repo::with(
        "on: push
jobs:
  slow:
    runs-on: ubuntu-latest
    steps:
      - run: echo ready; exec sleep 30
      - if: always()
        run: echo cleanup ready; for i in $(seq 300); do sleep 0.1; done; echo cleanup-finished
",
    );
    let (run, stopped) = signal_when_ready(
        &repo,
        &[],
        &[(1, Signal::SIGHUP), (2, Signal::SIGTERM)],
        None,
    );
    run.assert_code(129);
    assert!(stopped < Duration::from_secs(4), "took {stopped:?}");
    assert_eq!(run.output("slow"), lines(&["ready", "cleanup ready"]));
    assert_eq!(
        run.steps("slow"),
        lines(&["__run:cancelled/cancelled", "__run_2:cancelled/cancelled"])
    );
}

#[test]
fn the_next_run_removes_the_scratch_folder_a_killed_run_left() {
    let temp = tempfile::tempdir().unwrap();
    let repo = Repo::with(
        "on: push
jobs:
  slow:
    runs-on: ubuntu-latest
    env:
      TOKEN: ${{ secrets.TOKEN }}
    steps:
      - run: echo ready; exec sleep 30
",
    );
    let mut child = repo
        .command(&["--json", "-s", "TOKEN=hunter2"])
        .env("TMPDIR", temp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.ends_with("ready\"}\n") {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "exec ended before its step was ready"
        );
    }
    // SIGKILL: the run cannot clean up, and its step script (with the secret) stays.
    child.kill().unwrap();
    child.wait().unwrap();
    let left: Vec<_> = std::fs::read_dir(temp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    let mut sleepers = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read_to_string(entry.path().join("cmdline"))
            && cmd == "sleep\u{0}30\u{0}"
            && let Ok(cwd) = std::fs::read_link(entry.path().join("cwd"))
            && cwd.starts_with(repo.path())
        {
            sleepers.push(entry.file_name().to_string_lossy().parse::<i32>().unwrap());
        }
    }
    for pid in sleepers {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    }
    let quick = Repo::with(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n",
    );
    let status = quick
        .command(&[])
        .env("TMPDIR", temp.path())
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    assert!(!left[0].exists(), "{} is still there", left[0].display());
    let now: Vec<_> = std::fs::read_dir(temp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(now.is_empty(), "{now:?}");
}
