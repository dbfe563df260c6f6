//! The poll cadence: how long the poll loop waits before the next FetchTask. After a task,
//! `fetch_interval`; after `n` consecutive empty answers or errors,
//! `fetch_interval * 2^(n-1)` (the exponent capped at 5) capped at `fetch_interval_max`;
//! every pause varied by ±20 % so many runners restarted together spread their polls
//! (act_runner's `poller.go` cadence). Pure functions, no clock.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The largest exponent of the doubling (act_runner caps the shift at 5).
const MAX_SHIFT: u32 = 5;

/// How far a pause may stray from its nominal value, either way.
pub const JITTER: f64 = 0.2;

/// The nominal pause after `failures` consecutive empty answers or errors (0 = the last
/// poll brought a task).
pub fn nominal_pause(interval: Duration, max: Duration, failures: u32) -> Duration {
    if failures == 0 {
        return interval;
    }
    let shift = (failures - 1).min(MAX_SHIFT);
    interval.saturating_mul(1 << shift).min(max.max(interval))
}

/// `pause` scaled by `1 + JITTER * (2 * unit - 1)`, `unit` in `[0, 1]`.
pub fn jittered(pause: Duration, unit: f64) -> Duration {
    let factor = 1.0 + JITTER * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
    pause.mul_f64(factor)
}

/// A number in `[0, 1)` that differs between calls and between processes (std's random
/// hash keys mixed with a counter; no cryptographic strength needed for jitter).
pub fn random_unit() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// The pause to wait now: [`nominal_pause`] with random jitter.
pub fn pause(interval: Duration, max: Duration, failures: u32) -> Duration {
    jittered(nominal_pause(interval, max, failures), random_unit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn doubles_from_the_interval_up_to_the_cap() {
        let (i, max) = (Duration::from_secs(2), Duration::from_secs(5));
        assert_eq!(nominal_pause(i, max, 0), MS(2000));
        assert_eq!(nominal_pause(i, max, 1), MS(2000));
        assert_eq!(nominal_pause(i, max, 2), MS(4000));
        assert_eq!(nominal_pause(i, max, 3), MS(5000));
        assert_eq!(nominal_pause(i, max, 400), MS(5000));
        // The shift stops at 5: 100ms * 32, under a large cap.
        let big = Duration::from_secs(3600);
        assert_eq!(nominal_pause(MS(100), big, 6), MS(3200));
        assert_eq!(nominal_pause(MS(100), big, 60), MS(3200));
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        assert_eq!(jittered(MS(1000), 0.0), MS(800));
        assert_eq!(jittered(MS(1000), 1.0), MS(1200));
        assert_eq!(jittered(MS(1000), 0.5), MS(1000));
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let p = pause(MS(1000), MS(1000), 1);
            assert!(p >= MS(800) && p <= MS(1200), "{p:?}");
            seen.insert(p.as_millis());
        }
        assert!(seen.len() > 20, "jitter varies: {seen:?}");
    }
}
