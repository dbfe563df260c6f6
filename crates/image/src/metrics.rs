//! Build metrics in Prometheus' model: the histogram `hybrid_runner_build_duration_seconds`
//! (one observation per built variant, labelled `variant` and `result`) and the counter
//! `hybrid_runner_builds_total{result}`. `hybrid-runner build --json` prints them as JSON;
//! [`BuildMetrics::to_text`] writes the text exposition format the daemon serves.
//! Every build of the process is also recorded in [`process`] (by
//! `ImageBuilder::build`), which the daemon's `/metrics` reads.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

pub const DURATION_METRIC: &str = "hybrid_runner_build_duration_seconds";
pub const TOTAL_METRIC: &str = "hybrid_runner_builds_total";

/// Upper bounds of the duration buckets, in seconds (image builds take seconds to an hour).
pub const DURATION_BUCKETS: [f64; 12] = [
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
];

/// How one build (one variant of one image) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildResult {
    Success,
    Failure,
    Cancelled,
    TimedOut,
}

impl BuildResult {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildResult::Success => "success",
            BuildResult::Failure => "failure",
            BuildResult::Cancelled => "cancelled",
            BuildResult::TimedOut => "timed_out",
        }
    }
}

/// One histogram series: cumulative bucket counts, sum and count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistogramSeries {
    pub labels: BTreeMap<String, String>,
    /// `(le, cumulative count)`, the last bucket being `+Inf`.
    pub buckets: Vec<(String, u64)>,
    pub sum: f64,
    pub count: u64,
}

/// One counter series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CounterSeries {
    pub labels: BTreeMap<String, String>,
    pub value: u64,
}

/// A snapshot of every series, as `--json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsSnapshot {
    pub hybrid_runner_build_duration_seconds: Vec<HistogramSeries>,
    pub hybrid_runner_builds_total: Vec<CounterSeries>,
}

#[derive(Debug, Default)]
struct Histogram {
    /// Per bucket of [`DURATION_BUCKETS`], then `+Inf`: observations at or below its bound
    /// (not cumulative; summed when exported).
    counts: [u64; DURATION_BUCKETS.len() + 1],
    sum: f64,
}

#[derive(Debug, Default)]
struct Series {
    durations: BTreeMap<(String, BuildResult), Histogram>,
    totals: BTreeMap<BuildResult, u64>,
}

/// The build metrics of this process; cheap to update from many builds at once.
#[derive(Debug, Default)]
pub struct BuildMetrics {
    series: Mutex<Series>,
}

/// The builds of this whole process (every `ImageBuilder::build`).
pub fn process() -> &'static BuildMetrics {
    static PROCESS: BuildMetrics = BuildMetrics::new();
    &PROCESS
}

impl BuildMetrics {
    pub const fn new() -> BuildMetrics {
        BuildMetrics {
            series: Mutex::new(Series {
                durations: BTreeMap::new(),
                totals: BTreeMap::new(),
            }),
        }
    }

    /// Records one finished build of `variant`.
    pub fn observe(&self, variant: &str, result: BuildResult, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let mut series = self.lock();
        let histogram = series
            .durations
            .entry((variant.to_string(), result))
            .or_default();
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(DURATION_BUCKETS.len());
        if let Some(count) = histogram.counts.get_mut(bucket) {
            *count += 1;
        }
        histogram.sum += seconds;
        *series.totals.entry(result).or_default() += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Series> {
        // A panic while holding the lock leaves consistent counters; keep using them.
        self.series.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let series = self.lock();
        let durations = series
            .durations
            .iter()
            .map(|((variant, result), h)| {
                let mut cumulative = 0;
                let buckets = h
                    .counts
                    .iter()
                    .enumerate()
                    .map(|(i, count)| {
                        cumulative += count;
                        let le = DURATION_BUCKETS
                            .get(i)
                            .map_or_else(|| "+Inf".to_string(), |b| format_float(*b));
                        (le, cumulative)
                    })
                    .collect();
                HistogramSeries {
                    labels: labels(&[("result", result.as_str()), ("variant", variant)]),
                    buckets,
                    sum: h.sum,
                    count: cumulative,
                }
            })
            .collect();
        let totals = series
            .totals
            .iter()
            .map(|(result, value)| CounterSeries {
                labels: labels(&[("result", result.as_str())]),
                value: *value,
            })
            .collect();
        MetricsSnapshot {
            hybrid_runner_build_duration_seconds: durations,
            hybrid_runner_builds_total: totals,
        }
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn to_text(&self) -> String {
        let snapshot = self.snapshot();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP {DURATION_METRIC} How long image builds took, per variant and result."
        );
        let _ = writeln!(out, "# TYPE {DURATION_METRIC} histogram");
        for series in &snapshot.hybrid_runner_build_duration_seconds {
            for (le, count) in &series.buckets {
                let mut with_le = series.labels.clone();
                with_le.insert("le".to_string(), le.clone());
                let _ = writeln!(out, "{DURATION_METRIC}_bucket{} {count}", render(&with_le));
            }
            let labels = render(&series.labels);
            let _ = writeln!(
                out,
                "{DURATION_METRIC}_sum{labels} {}",
                format_float(series.sum)
            );
            let _ = writeln!(out, "{DURATION_METRIC}_count{labels} {}", series.count);
        }
        let _ = writeln!(
            out,
            "# HELP {TOTAL_METRIC} Image builds finished, per result."
        );
        let _ = writeln!(out, "# TYPE {TOTAL_METRIC} counter");
        for series in &snapshot.hybrid_runner_builds_total {
            let _ = writeln!(
                out,
                "{TOTAL_METRIC}{} {}",
                render(&series.labels),
                series.value
            );
        }
        out
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `{a="x",b="y"}` with values escaped as the exposition format wants.
fn render(labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', r"\\")
                .replace('"', "\\\"")
                .replace('\n', r"\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// A float as Prometheus writes it: `1`, `2.5`, `0.125`.
fn format_float(value: f64) -> String {
    format!("{value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_counters_count_per_result() {
        let metrics = BuildMetrics::new();
        metrics.observe("docker", BuildResult::Success, Duration::from_millis(800));
        metrics.observe("docker", BuildResult::Success, Duration::from_secs(7));
        metrics.observe("docker", BuildResult::Success, Duration::from_secs(7200));
        metrics.observe("k8s", BuildResult::Failure, Duration::from_secs(3));
        let snapshot = metrics.snapshot();
        let docker = &snapshot.hybrid_runner_build_duration_seconds[0];
        assert_eq!(docker.labels["variant"], "docker");
        assert_eq!(docker.count, 3);
        assert_eq!(docker.buckets[0], ("1".to_string(), 1));
        assert_eq!(docker.buckets[3], ("10".to_string(), 2));
        assert_eq!(docker.buckets.last(), Some(&("+Inf".to_string(), 3)));
        assert!((docker.sum - 7207.8).abs() < 1e-9);
        let totals: Vec<(String, u64)> = snapshot
            .hybrid_runner_builds_total
            .iter()
            .map(|c| (c.labels["result"].clone(), c.value))
            .collect();
        assert_eq!(
            totals,
            [("success".to_string(), 3), ("failure".to_string(), 1)]
        );
    }

    #[test]
    fn text_exposition_format() {
        let metrics = BuildMetrics::new();
        metrics.observe("k8s", BuildResult::TimedOut, Duration::from_millis(2500));
        let text = metrics.to_text();
        assert!(text.contains("# TYPE hybrid_runner_build_duration_seconds histogram\n"));
        assert!(text.contains(
            "hybrid_runner_build_duration_seconds_bucket{le=\"1\",result=\"timed_out\",variant=\"k8s\"} 0\n"
        ));
        assert!(text.contains(
            "hybrid_runner_build_duration_seconds_bucket{le=\"2.5\",result=\"timed_out\",variant=\"k8s\"} 1\n"
        ));
        assert!(text.contains(
            "hybrid_runner_build_duration_seconds_sum{result=\"timed_out\",variant=\"k8s\"} 2.5\n"
        ));
        assert!(text.contains("# TYPE hybrid_runner_builds_total counter\n"));
        assert!(text.ends_with("hybrid_runner_builds_total{result=\"timed_out\"} 1\n"));
        assert_eq!(render(&labels(&[("a", "q\"\\\n")])), "{a=\"q\\\"\\\\\\n\"}");
    }
}
