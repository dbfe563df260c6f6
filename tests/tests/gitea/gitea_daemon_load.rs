#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Load on the real `hybrid-runner daemon` against the fake Gitea: many tasks at once, each
//! a host step printing numbered lines stamped with bash's `$EPOCHREALTIME`. Every task
//! must succeed with every line stored exactly once and in order. Printed, never asserted:
//! the daemon's peak RSS (`VmHWM`) and CPU time (its own and its steps'), from `/proc`
//! just before it is stopped, and the log latency p50/p95/max from a line's printing (its
//! stamp) to its storage on the fake (after which the ack leaves).
//!
//! A second run puts 40 tasks × 500 lines through a fake answering 20 % of the polls, state
//! and log calls with 500.
//!
//! The full size (100 tasks × 1,000 lines, capacity 20) runs by default: about 5 s in a
//! debug build on the 2-core test machine. `bench/daemon/load.sh` runs it in a release
//! build for the figures.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use harness::daemon_process::{DaemonOptions, ProcessUsage, RunnerHome};
use harness::fake_gitea::{FakeGitea, FakeGiteaOptions, Fault, Method, RandomFailures, pb};

fn payload(lines: usize) -> String {
    format!(
        r#"name: load
on: push
jobs:
  load:
    runs-on: ubuntu-latest
    steps:
      - shell: bash
        run: for i in $(seq 1 {lines}); do echo "L $i $EPOCHREALTIME"; done
"#
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// `L <n> <seconds.micros>` → (n, when it was printed).
fn parse_row(row: &str) -> Option<(usize, SystemTime)> {
    let mut parts = row.split(' ');
    if parts.next()? != "L" {
        return None;
    }
    let n = parts.next()?.parse().ok()?;
    let stamp: f64 = parts.next()?.replace(',', ".").parse().ok()?;
    Some((n, UNIX_EPOCH + Duration::from_secs_f64(stamp)))
}

/// One load run at a time, so the figures of one are not the other's.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run_load(tasks: usize, lines: usize, capacity: usize, failing_percent: u32) {
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut options = FakeGiteaOptions {
        seed: Some(100),
        ..FakeGiteaOptions::default()
    };
    if failing_percent > 0 {
        options.faults.random = Some(RandomFailures {
            percent: failing_percent,
            fault: Fault::HttpStatus(500),
            methods: vec![Method::FetchTask, Method::UpdateTask, Method::UpdateLog],
        });
    }
    let fake = FakeGitea::start(options);
    let home = RunnerHome::register(&fake, "ubuntu-latest:host", "");
    let ids: Vec<i64> = (0..tasks)
        .map(|_| fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &payload(lines))))
        .collect();
    let started = Instant::now();
    let mut daemon = home.start(
        &DaemonOptions::default()
            .capacity(capacity)
            .env("HYBRID_RUNNER_LOG_LEVEL", "info"),
    );
    let timeout = Duration::from_secs(60 + (tasks * lines / 200) as u64);
    let mut peak_rss_kib = 0;
    let all_done = fake
        .wait_for(timeout, |f| {
            if let Some(usage) = daemon.usage() {
                peak_rss_kib = peak_rss_kib.max(usage.peak_rss_kib);
            }
            ids.iter()
                .all(|&id| f.task(id).is_some_and(|t| t.is_done() && t.log_closed))
                .then_some(())
        })
        .is_some();
    let elapsed = started.elapsed();
    let usage: Option<ProcessUsage> = daemon.usage();
    assert!(
        all_done,
        "not all {tasks} tasks finished in {timeout:?}: {} done\n--- daemon output (tail)\n{}",
        fake.tasks().iter().filter(|t| t.is_done()).count(),
        daemon
            .output()
            .lines()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .join("\n")
    );
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    let _ = daemon.wait_exit(Duration::from_secs(60));

    let mut latencies = Vec::with_capacity(tasks * lines);
    for &id in &ids {
        let task = fake.task(id).unwrap();
        assert_eq!(task.result(), Some(pb::Result::Success), "task {id}");
        let mut next = 1;
        for row in &task.log {
            if let Some((n, printed)) = parse_row(&row.content) {
                assert_eq!(
                    n, next,
                    "task {id}: row {n} where {next} was due (lost or duplicated)"
                );
                next += 1;
                latencies.push(row.stored_at.duration_since(printed).unwrap_or_default());
            }
        }
        assert_eq!(
            next - 1,
            lines,
            "task {id}: {} of {lines} lines stored",
            next - 1
        );
    }
    let runner = fake.runner(&home.uuid).unwrap();
    assert!(runner.peak_running <= capacity, "{runner:?}");
    latencies.sort();
    let usage = usage.expect("the daemon ran until every task was done");
    let rows = tasks * lines;
    let failed = fake.requests().iter().filter(|r| r.status == 500).count();
    println!(
        "daemon load: {tasks} tasks × {lines} lines, capacity {capacity}, {failing_percent} % of calls failing ({failed} answered 500)"
    );
    println!(
        "  all done in {:.1} s; {rows} rows in {} UpdateLog calls; peak tasks at once {}",
        elapsed.as_secs_f64(),
        fake.requests_of(Method::UpdateLog).len(),
        runner.peak_running
    );
    println!(
        "  daemon peak RSS {:.1} MiB (VmHWM); CPU {:.2} s (own), {:.2} s (steps)",
        peak_rss_kib.max(usage.peak_rss_kib) as f64 / 1024.0,
        usage.cpu.as_secs_f64(),
        usage.children_cpu.as_secs_f64()
    );
    println!(
        "  log latency printed → stored: p50 {} ms, p95 {} ms, max {} ms",
        percentile(&latencies, 0.50).as_millis(),
        percentile(&latencies, 0.95).as_millis(),
        latencies.last().copied().unwrap_or_default().as_millis()
    );
}

/// The full load: 100 tasks × 1,000 lines at capacity 20.
#[test]
fn load_100_tasks_of_1000_lines_at_capacity_20_lose_no_row() {
    run_load(100, 1000, 20, 0);
}

/// Load and faults together: a fifth of the polls, state and log calls answered 500.
#[test]
fn forty_tasks_of_500_lines_with_20_percent_of_calls_failing_lose_no_row() {
    run_load(40, 500, 10, 20);
}
