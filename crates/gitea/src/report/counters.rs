//! What the reporters of one daemon have done, for its `/metrics`: rows sent, rows sent
//! again, failed calls, and how long rows waited between the engine and the server's
//! acknowledgement (a fixed-bucket histogram, so p50/p95 stay computable without keeping
//! every sample).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in milliseconds; a last bucket catches the rest.
pub const LATENCY_BUCKETS_MS: [u64; 14] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 300_000, 1_800_000,
];

/// Counters shared by every reporter of a daemon. `Clone` shares them (they are `Arc`ed
/// atomics); `Default` starts them at zero.
#[derive(Debug, Clone, Default)]
pub struct ReportCounters {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    rows_sent: AtomicU64,
    rows_resent: AtomicU64,
    report_errors: AtomicU64,
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    /// One more than [`LATENCY_BUCKETS_MS`]: the last counts rows slower than every bound.
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
}

/// A copy of the log latency histogram (row received from the engine → acknowledged by
/// the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencySnapshot {
    /// `(upper bound, rows in this bucket)`; `None` as the bound means "slower than all".
    pub buckets: Vec<(Option<Duration>, u64)>,
    pub count: u64,
    pub sum: Duration,
}

impl LatencySnapshot {
    /// The upper bound of the bucket holding the `q` quantile (0.0..=1.0), e.g. 0.95 for
    /// p95; `None` with no samples. A quantile in the open last bucket reads as its lower
    /// bound (the largest finite bound).
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        let last_bound = Duration::from_millis(LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.len() - 1]);
        for (bound, count) in &self.buckets {
            seen += count;
            if seen >= rank {
                return Some(bound.unwrap_or(last_bound));
            }
        }
        Some(last_bound)
    }
}

impl ReportCounters {
    /// Rows sent to the server for the first time.
    pub fn rows_sent(&self) -> u64 {
        self.inner.rows_sent.load(Ordering::Relaxed)
    }

    /// Rows sent again (after an error, a lagging or a lost acknowledgement).
    pub fn rows_resent(&self) -> u64 {
        self.inner.rows_resent.load(Ordering::Relaxed)
    }

    /// UpdateLog / UpdateTask calls that failed.
    pub fn report_errors(&self) -> u64 {
        self.inner.report_errors.load(Ordering::Relaxed)
    }

    /// The log latency histogram so far.
    pub fn latency(&self) -> LatencySnapshot {
        let buckets = self
            .inner
            .latency_buckets
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let bound = LATENCY_BUCKETS_MS
                    .get(i)
                    .map(|ms| Duration::from_millis(*ms));
                (bound, c.load(Ordering::Relaxed))
            })
            .collect();
        LatencySnapshot {
            buckets,
            count: self.inner.latency_count.load(Ordering::Relaxed),
            sum: Duration::from_micros(self.inner.latency_sum_us.load(Ordering::Relaxed)),
        }
    }

    pub(crate) fn add_sent(&self, first_time: u64, again: u64) {
        self.inner
            .rows_sent
            .fetch_add(first_time, Ordering::Relaxed);
        self.inner.rows_resent.fetch_add(again, Ordering::Relaxed);
    }

    pub(crate) fn add_error(&self) {
        self.inner.report_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_latency(&self, latency: Duration) {
        let ms = latency.as_millis();
        let bucket = LATENCY_BUCKETS_MS
            .iter()
            .position(|bound| ms <= u128::from(*bound))
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.inner.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.inner.latency_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.inner
            .latency_sum_us
            .fetch_add(micros, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_counts() {
        let a = ReportCounters::default();
        let b = a.clone();
        a.add_sent(10, 2);
        b.add_error();
        assert_eq!(
            (b.rows_sent(), b.rows_resent(), a.report_errors()),
            (10, 2, 1)
        );
    }

    #[test]
    fn quantiles_read_bucket_bounds() {
        let c = ReportCounters::default();
        assert_eq!(c.latency().quantile(0.5), None);
        for _ in 0..90 {
            c.record_latency(Duration::from_millis(20));
        }
        for _ in 0..10 {
            c.record_latency(Duration::from_millis(700));
        }
        let l = c.latency();
        assert_eq!(l.count, 100);
        assert_eq!(l.quantile(0.5), Some(Duration::from_millis(25)));
        assert_eq!(l.quantile(0.9), Some(Duration::from_millis(25)));
        assert_eq!(l.quantile(0.95), Some(Duration::from_secs(1)));
        assert_eq!(l.sum, Duration::from_millis(90 * 20 + 10 * 700));
        c.record_latency(Duration::from_secs(7200));
        assert_eq!(
            c.latency().buckets.last(),
            Some(&(None, 1)),
            "slower than every bound lands in the open bucket"
        );
        assert_eq!(
            c.latency().quantile(1.0),
            Some(Duration::from_millis(1_800_000))
        );
    }
}
