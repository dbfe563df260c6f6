//! Whose builds these are outside the daemon: the runner id the standalone commands and
//! `exec` label their build namespaces with, and the per-run task id that keeps two runs
//! (or a rebuild of the same service) from sharing a namespace name.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// The runner id of `build`, `exec`, `status`, `logs`, `cleanup`, `check` and `render`
/// unless `--runner-id` says otherwise, so `status` and `cleanup` see what `build` and
/// `exec` started. (The daemon uses its registration's name.)
pub const DEFAULT_RUNNER_ID: &str = "local";

/// How many characters of randomness a task id carries after its base.
const SUFFIX_LEN: usize = 6;

/// A task id unique to this call: `base` plus a suffix from the clock, the process id
/// and a counter (`build-k3f9a0`), so two runs of the same thing, even at once and in
/// different processes, get different namespaces.
pub fn unique_task_id(base: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut hash = Sha256::new();
    hash.update(nanos.to_le_bytes());
    hash.update(std::process::id().to_le_bytes());
    hash.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let digest = hash.finalize();
    let suffix: String = digest
        .iter()
        .map(|b| char::from(b"0123456789abcdefghijklmnopqrstuvwxyz"[usize::from(b % 36)]))
        .take(SUFFIX_LEN)
        .collect();
    if base.is_empty() {
        suffix
    } else {
        format!("{base}-{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_differ_per_call_and_keep_their_base() {
        let a = unique_task_id("build");
        let b = unique_task_id("build");
        assert_ne!(a, b);
        assert!(
            a.starts_with("build-") && a.len() == "build-".len() + SUFFIX_LEN,
            "{a}"
        );
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        );
        assert_eq!(unique_task_id("").len(), SUFFIX_LEN);
    }
}
