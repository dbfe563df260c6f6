//! Latency of the GitHub listener, a real `hybrid-runner daemon` against the fake GitHub on
//! loopback: ten queued one-step jobs, each printing 25 lines stamped with bash's
//! `$EPOCHREALTIME`. Printed, never asserted (beyond every job succeeding): message
//! handed to the runner → its first step started (the step's `started_at` in the results
//! service), p50 and max; and a log line printed → in the step's blob (the write that
//! carried it arrived), p50, p95 and max. The goals: ≤ 50 ms p50 and ≤ 1 s p95.
//! `cargo test --release -p hybrid-runner-tests --test github -- daemon_latency --nocapture`
//! gives the release figures.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use harness::daemon_process::{DaemonOptions, RunnerHome};
use harness::fake_github::FakeGitHub;
use nix::sys::signal::Signal;

use crate::daemon_jobs::{message, script};

const JOBS: usize = 10;
const LINES: usize = 25;

/// `2026-12-06T12:00:00.123Z` → the time it names.
fn parse_timestamp(text: &str) -> Option<SystemTime> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, millis) = time.split_once('.')?;
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    // Howard Hinnant's days-from-civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + min * 60 + s;
    Some(
        UNIX_EPOCH + Duration::from_secs(secs as u64) + Duration::from_millis(millis.parse().ok()?),
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

#[test]
fn daemon_latency_message_to_first_step_and_log_line_to_blob() {
    assert_eq!(
        parse_timestamp("1970-01-02T00:00:01.500Z"),
        Some(UNIX_EPOCH + Duration::from_millis(86_401_500))
    );
    let fake = FakeGitHub::start();
    let home = RunnerHome::register_github(&fake, "gh-latency", "", "", &[]);
    let step_id = |n: usize| format!("66666666-0000-4000-8000-{n:012}");
    let jobs: Vec<_> = (0..JOBS)
        .map(|n| {
            let script = format!(
                "for i in $(seq 1 {LINES}); do echo \"L $i $EPOCHREALTIME\"; sleep 0.02; done"
            );
            fake.queue_job(&home.uuid, message(vec![script_step(&step_id(n), &script)]))
        })
        .collect();
    let started = std::time::Instant::now();
    let mut daemon = home.start(&DaemonOptions::default());
    crate::wait_for("every job", &daemon, Duration::from_secs(120), || {
        crate::all_completed(&fake, &jobs)
    });
    let elapsed = started.elapsed();
    let usage = daemon.usage();
    daemon.signal(Signal::SIGTERM);
    let _ = daemon.wait_exit(Duration::from_secs(20));

    let mut to_first_step = Vec::new();
    let mut log_latency = Vec::new();
    for (n, job) in jobs.iter().enumerate() {
        let record = fake.job(&job.runner_request_id).unwrap();
        assert_eq!(record.completions[0]["conclusion"], "succeeded");
        let offered = record.offered_at.expect("offered");
        let first = fake
            .step_updates(&job.job_id)
            .iter()
            .flat_map(|u| u["steps"].as_array().cloned().unwrap_or_default())
            .find(|s| s["external_id"] == step_id(n).as_str())
            .and_then(|s| s["started_at"].as_str().and_then(parse_timestamp))
            .expect("the step's start");
        to_first_step.push(first.duration_since(offered).unwrap_or_default());
        let blob = fake.log(&job.job_id, Some(&step_id(n))).unwrap();
        let text = String::from_utf8_lossy(&blob.data).into_owned();
        let mut offset = 0;
        let mut seen = 0;
        for line in text.split_inclusive('\n') {
            offset += line.len();
            let Some(rest) = line.split_once(" L ").map(|(_, r)| r) else {
                continue;
            };
            let stamp: f64 = rest.split(' ').nth(1).unwrap().trim().parse().unwrap();
            let printed = UNIX_EPOCH + Duration::from_secs_f64(stamp);
            let arrived = blob
                .writes
                .iter()
                .find(|(_, len)| *len >= offset)
                .map(|(at, _)| *at)
                .unwrap();
            log_latency.push(arrived.duration_since(printed).unwrap_or_default());
            seen += 1;
        }
        assert_eq!(seen, LINES, "{text}");
    }
    to_first_step.sort();
    log_latency.sort();
    println!(
        "github daemon: {JOBS} one-step jobs × {LINES} lines, one at a time, all done in {:.1} s",
        elapsed.as_secs_f64()
    );
    println!(
        "  message handed over → first step started: p50 {} ms, max {} ms (goal p50 ≤ 50 ms)",
        percentile(&to_first_step, 0.5).as_millis(),
        to_first_step.last().unwrap().as_millis()
    );
    println!(
        "  log line printed → in its blob: p50 {} ms, p95 {} ms, max {} ms (goal p95 ≤ 1000 ms)",
        percentile(&log_latency, 0.5).as_millis(),
        percentile(&log_latency, 0.95).as_millis(),
        log_latency.last().unwrap().as_millis()
    );
    if let Some(usage) = usage {
        println!(
            "  daemon peak RSS {:.1} MiB; CPU {:.2} s (own), {:.2} s (steps)",
            usage.peak_rss_kib as f64 / 1024.0,
            usage.cpu.as_secs_f64(),
            usage.children_cpu.as_secs_f64()
        );
    }
}

fn script_step(id: &str, text: &str) -> serde_json::Value {
    script(id, "lines", text)
}
