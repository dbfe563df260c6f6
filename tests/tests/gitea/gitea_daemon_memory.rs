//! The real `hybrid-runner daemon` keeps its memory whatever a step prints, also while
//! Gitea takes none of the log: a step prints 96 MiB of 1 KiB lines while every UpdateLog
//! is answered 503; only after the step ended does the fake take logs again. The daemon's
//! peak RSS (`VmHWM`) stays under 64 MiB (the unacknowledged rows wait in the task's spool
//! on disk, a window of them in memory) and every line reaches the fake once, in order.
//!
//! `HR_DAEMON_OUTPUT_MIB=1024` makes the step print that many MiB instead (the figure in
//! docs/performance.md); the fake then holds the whole log in the test's memory.

use std::time::Duration;

use harness::daemon_process::{DaemonOptions, RunnerHome};
use harness::fake_gitea::{FakeGitea, FakeGiteaOptions, Fault, Method, RandomFailures, pb};

const LINE: usize = 1024;
const DEFAULT_MIB: usize = 96;
const PEAK_RSS_LIMIT_KIB: u64 = 64 * 1024;

#[test]
fn a_step_printing_96_mib_while_gitea_takes_no_log_keeps_the_daemon_under_64_mib() {
    let mib = std::env::var("HR_DAEMON_OUTPUT_MIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(DEFAULT_MIB);
    let lines = mib * (1 << 20) / LINE;
    let mut options = FakeGiteaOptions::default();
    options.faults.random = Some(RandomFailures {
        percent: 100,
        fault: Fault::HttpStatus(503),
        methods: vec![Method::UpdateLog],
    });
    let fake = FakeGitea::start(options);
    let home = RunnerHome::register(&fake, "ubuntu-latest:host", "");
    let marker = tempfile::tempdir().unwrap();
    let done = marker.path().join("printed");
    // Numbered lines of LINE bytes with their newline: "<n> xxx…".
    let payload = format!(
        r#"name: memory
on: push
jobs:
  print:
    runs-on: ubuntu-latest
    steps:
      - shell: bash
        run: |
          pad=$(head -c {pad} /dev/zero | tr '\0' x)
          awk -v pad="$pad" 'BEGIN {{ for (i = 1; i <= {lines}; i++) printf "%07d %s\n", i, pad }}'
          touch {done}
"#,
        pad = LINE - 9,
        done = done.display(),
    );
    let id = fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &payload));
    let mut daemon = home.start(&DaemonOptions::default());

    let mut peak_kib = 0;
    let mut watch = |daemon: &harness::daemon_process::Daemon| {
        if let Some(usage) = daemon.usage() {
            peak_kib = peak_kib.max(usage.peak_rss_kib);
        }
    };
    let printed = fake.wait_for(Duration::from_secs(300), |_| {
        watch(&daemon);
        done.exists().then_some(())
    });
    assert!(
        printed.is_some(),
        "the step did not print its lines in 300 s\n{}",
        daemon.output()
    );
    let stored_while_down = fake.task_progress(id).map_or(0, |(_, _, rows)| rows);
    assert_eq!(stored_while_down, 0, "every UpdateLog was refused");
    fake.update_faults(|f| f.random = None);
    let finished = fake.wait_for(Duration::from_secs(300), |f| {
        watch(&daemon);
        f.task_progress(id)
            .filter(|&(done, closed, _)| done && closed)
    });
    watch(&daemon);
    assert!(
        finished.is_some(),
        "the task did not finish\n{}",
        daemon.output()
    );
    let task = fake.task(id).unwrap();
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    let _ = daemon.wait_exit(Duration::from_secs(60));

    assert_eq!(task.result(), Some(pb::Result::Success));
    let mut next = 1;
    for row in &task.log {
        let Some(n) = row
            .content
            .split(' ')
            .next()
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        assert_eq!(n, next, "row {n} where {next} was due (lost or duplicated)");
        assert_eq!(row.content.len(), LINE - 1, "row {n} arrived whole");
        next += 1;
    }
    assert_eq!(next - 1, lines, "every line stored");
    println!(
        "daemon peak RSS {:.1} MiB while a step printed {} MiB with Gitea refusing the log",
        peak_kib as f64 / 1024.0,
        mib
    );
    assert!(
        peak_kib < PEAK_RSS_LIMIT_KIB,
        "the daemon's peak RSS was {peak_kib} KiB (limit {PEAK_RSS_LIMIT_KIB} KiB)"
    );
}
