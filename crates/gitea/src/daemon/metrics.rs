//! What the daemon counts and how healthy it is: the figures `/metrics` serves in
//! Prometheus' text format (tasks running and finished, polls and poll errors, the
//! reporter's log rows and their latency, build durations from [`hr_image::metrics`], capacity) and the
//! readiness `/readyz` answers (declared, polling works or has failed for less than
//! `metrics.readiness_grace`, not shutting down). Updated from many tasks at once through
//! atomics; cheap to share behind an `Arc`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::report::LatencySnapshot;
use hr_image::metrics::BuildMetrics;

/// The reporter's counters, read when `/metrics` is scraped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportFigures {
    /// Log rows the server acknowledged.
    pub rows_sent: u64,
    /// Rows sent again after an error or a lagging ack.
    pub rows_resent: u64,
    /// UpdateLog / UpdateTask calls that failed.
    pub report_errors: u64,
    /// How long rows waited from the engine to the server's acknowledgement.
    pub latency: Option<LatencySnapshot>,
}

/// The daemon's own counters and health.
#[derive(Debug)]
pub struct DaemonMetrics {
    capacity: usize,
    readiness_grace: Duration,
    tasks_running: AtomicU64,
    tasks_total: Mutex<BTreeMap<&'static str, u64>>,
    polls_total: AtomicU64,
    poll_errors_total: AtomicU64,
    declared: AtomicBool,
    shutting_down: AtomicBool,
    /// When the current streak of failed polls began; `None` while polls work.
    failing_since: Mutex<Option<Instant>>,
}

impl DaemonMetrics {
    pub fn new(capacity: usize, readiness_grace: Duration) -> DaemonMetrics {
        DaemonMetrics {
            capacity,
            readiness_grace,
            tasks_running: AtomicU64::new(0),
            tasks_total: Mutex::new(BTreeMap::new()),
            polls_total: AtomicU64::new(0),
            poll_errors_total: AtomicU64::new(0),
            declared: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            failing_since: Mutex::new(None),
        }
    }

    /// Declare succeeded: the server knows this runner's labels.
    pub fn set_declared(&self) {
        self.declared.store(true, Ordering::SeqCst);
    }

    /// A signal arrived: `/readyz` answers 503 from now on.
    pub fn set_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// A FetchTask call was answered (with a task or without).
    pub fn poll_answered(&self) {
        self.polls_total.fetch_add(1, Ordering::Relaxed);
        *lock(&self.failing_since) = None;
    }

    /// A FetchTask call failed; `counted` says whether it counts as a poll error
    /// (a deadline counts as an empty answer that is still not healthy).
    pub fn poll_failed(&self, counted: bool) {
        self.polls_total.fetch_add(1, Ordering::Relaxed);
        if counted {
            self.poll_errors_total.fetch_add(1, Ordering::Relaxed);
        }
        lock(&self.failing_since).get_or_insert_with(Instant::now);
    }

    pub fn task_started(&self) {
        self.tasks_running.fetch_add(1, Ordering::SeqCst);
    }

    /// A task ended with `result` (`success`, `failure`, `cancelled`, ...).
    pub fn task_finished(&self, result: &'static str) {
        self.tasks_running.fetch_sub(1, Ordering::SeqCst);
        *lock(&self.tasks_total).entry(result).or_default() += 1;
    }

    pub fn tasks_running(&self) -> u64 {
        self.tasks_running.load(Ordering::SeqCst)
    }

    pub fn polls_total(&self) -> u64 {
        self.polls_total.load(Ordering::Relaxed)
    }

    pub fn poll_errors_total(&self) -> u64 {
        self.poll_errors_total.load(Ordering::Relaxed)
    }

    /// Finished tasks per result.
    pub fn tasks_total(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.tasks_total).clone()
    }

    /// Whether `/readyz` answers 200 at `now`, and why not when it does not.
    pub fn readiness(&self, now: Instant) -> Result<(), &'static str> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err("shutting down");
        }
        if !self.declared.load(Ordering::SeqCst) {
            return Err("not declared to the server yet");
        }
        match *lock(&self.failing_since) {
            Some(since) if now.duration_since(since) >= self.readiness_grace => {
                Err("polling the server has been failing for longer than metrics.readiness_grace")
            }
            _ => Ok(()),
        }
    }

    /// The Prometheus text exposition format (0.0.4) of the daemon's, the reporter's and
    /// the builds' figures.
    pub fn to_text(&self, report: ReportFigures, builds: &BuildMetrics) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let plain = |value: u64| [(String::new(), value)];
        metric(
            "hybrid_runner_capacity",
            "gauge",
            "Tasks this runner runs at once (runner.capacity).",
            &plain(self.capacity as u64),
        );
        metric(
            "hybrid_runner_tasks_running",
            "gauge",
            "Tasks running now.",
            &plain(self.tasks_running()),
        );
        let totals: Vec<(String, u64)> = self
            .tasks_total()
            .into_iter()
            .map(|(result, n)| (format!("{{result=\"{result}\"}}"), n))
            .collect();
        metric(
            "hybrid_runner_tasks_total",
            "counter",
            "Tasks finished, per result.",
            &totals,
        );
        metric(
            "hybrid_runner_polls_total",
            "counter",
            "FetchTask calls made.",
            &plain(self.polls_total()),
        );
        metric(
            "hybrid_runner_poll_errors_total",
            "counter",
            "FetchTask calls that failed (deadlines count as empty answers, not errors).",
            &plain(self.poll_errors_total()),
        );
        metric(
            "hybrid_runner_log_rows_sent_total",
            "counter",
            "Log rows the server acknowledged.",
            &plain(report.rows_sent),
        );
        metric(
            "hybrid_runner_log_rows_resent_total",
            "counter",
            "Log rows sent again after an error or a lagging acknowledgement.",
            &plain(report.rows_resent),
        );
        metric(
            "hybrid_runner_report_errors_total",
            "counter",
            "UpdateLog and UpdateTask calls that failed.",
            &plain(report.report_errors),
        );
        if let Some(latency) = &report.latency {
            write_latency(&mut out, latency);
        }
        out.push_str(&builds.to_text());
        out
    }
}

/// The log latency histogram (the snapshot's buckets are per bucket; Prometheus' are
/// cumulative).
fn write_latency(out: &mut String, latency: &LatencySnapshot) {
    const NAME: &str = "hybrid_runner_log_latency_seconds";
    let _ = writeln!(
        out,
        "# HELP {NAME} How long log rows waited from the job to the server's acknowledgement."
    );
    let _ = writeln!(out, "# TYPE {NAME} histogram");
    let mut cumulative = 0;
    for (bound, count) in &latency.buckets {
        cumulative += count;
        let le = bound.map_or_else(|| "+Inf".to_string(), |b| format!("{}", b.as_secs_f64()));
        let _ = writeln!(out, "{NAME}_bucket{{le=\"{le}\"}} {cumulative}");
    }
    if latency
        .buckets
        .last()
        .is_some_and(|(bound, _)| bound.is_some())
    {
        let _ = writeln!(out, "{NAME}_bucket{{le=\"+Inf\"}} {cumulative}");
    }
    let _ = writeln!(out, "{NAME}_sum {}", latency.sum.as_secs_f64());
    let _ = writeln!(out, "{NAME}_count {}", latency.count);
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves a consistent value; keep using it.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hr_image::metrics::BuildResult;

    #[test]
    fn readiness_follows_declare_failures_and_shutdown() {
        let m = DaemonMetrics::new(2, Duration::from_secs(30));
        let t0 = Instant::now();
        assert_eq!(m.readiness(t0), Err("not declared to the server yet"));
        m.set_declared();
        assert_eq!(m.readiness(t0), Ok(()));
        m.poll_failed(true);
        // Failing for less than the grace: still ready.
        assert_eq!(m.readiness(Instant::now()), Ok(()));
        assert!(
            m.readiness(Instant::now() + Duration::from_secs(31))
                .is_err()
        );
        m.poll_answered();
        assert_eq!(
            m.readiness(Instant::now() + Duration::from_secs(31)),
            Ok(())
        );
        m.set_shutting_down();
        assert_eq!(m.readiness(Instant::now()), Err("shutting down"));
    }

    #[test]
    fn text_format_has_every_metric_with_help_and_type() {
        let m = DaemonMetrics::new(3, Duration::from_secs(30));
        m.task_started();
        m.task_started();
        m.task_finished("success");
        m.poll_answered();
        m.poll_failed(true);
        m.poll_failed(false);
        let builds = BuildMetrics::new();
        builds.observe("docker", BuildResult::Success, Duration::from_secs(4));
        let latency = LatencySnapshot {
            buckets: vec![
                (Some(Duration::from_millis(10)), 3),
                (Some(Duration::from_millis(250)), 1),
                (None, 1),
            ],
            count: 5,
            sum: Duration::from_millis(1500),
        };
        let text = m.to_text(
            ReportFigures {
                rows_sent: 10,
                rows_resent: 2,
                report_errors: 1,
                latency: Some(latency),
            },
            &builds,
        );
        for line in [
            "# TYPE hybrid_runner_capacity gauge",
            "hybrid_runner_capacity 3",
            "hybrid_runner_tasks_running 1",
            "# TYPE hybrid_runner_tasks_total counter",
            "hybrid_runner_tasks_total{result=\"success\"} 1",
            "hybrid_runner_polls_total 3",
            "hybrid_runner_poll_errors_total 1",
            "hybrid_runner_log_rows_sent_total 10",
            "hybrid_runner_log_rows_resent_total 2",
            "hybrid_runner_report_errors_total 1",
            "hybrid_runner_builds_total{result=\"success\"} 1",
            "# TYPE hybrid_runner_log_latency_seconds histogram",
            "hybrid_runner_log_latency_seconds_bucket{le=\"0.01\"} 3",
            "hybrid_runner_log_latency_seconds_bucket{le=\"0.25\"} 4",
            "hybrid_runner_log_latency_seconds_bucket{le=\"+Inf\"} 5",
            "hybrid_runner_log_latency_seconds_sum 1.5",
            "hybrid_runner_log_latency_seconds_count 5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        for l in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = l.split(' ').nth(2).unwrap();
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        }
    }
}
