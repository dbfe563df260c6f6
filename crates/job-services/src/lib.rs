//! The HTTP services a job's steps call on the runner, as GitHub serves them to its own
//! runners: the cache that `actions/cache` (and `setup-*` with `cache:`) saves to and
//! restores from, in both protocols the toolkit speaks (the v1 REST API under
//! `ACTIONS_CACHE_URL`, [`cache_v1`]; the v2 twirp `CacheService` under
//! `ACTIONS_RESULTS_URL`, [`cache_v2`]), with uploads and downloads through signed URLs
//! shaped like Azure Blob Storage's ([`blob`]). Entries live on disk ([`cache_store`]),
//! survive restarts, and are scoped per repository by the job's token ([`token`]). With an
//! artifact folder it also serves `upload-artifact@v4`/`download-artifact@v4`
//! ([`artifacts`], [`artifact_store`]): the jobs of a run pass artifacts to each other.
//!
//! `exec` starts the services for one run; the daemon for its life (`cache:` settings).

pub mod artifact_store;
pub mod artifacts;
pub mod blob;
pub mod cache_store;
pub mod cache_v1;
pub mod cache_v2;
pub mod server;
pub mod time;
pub mod token;
pub mod uploads;

pub use server::{CacheAccess, JobServices, ServicesConfig, StartError};

/// The cache's size limit unless one is given: GitHub's per repository.
pub const DEFAULT_CACHE_LIMIT: u64 = 10 << 30;

/// `10GiB`, `500MiB`, `64KiB`, `1GB`, or bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 10GiB, 500MiB, or bytes)"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1000 * 1000,
        "mib" => 1 << 20,
        "g" | "gb" => 1000 * 1000 * 1000,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (KiB, MiB, GiB, or bytes)"
            ));
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("500MiB"), Ok(500 << 20));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5 parsecs").is_err());
    }
}
