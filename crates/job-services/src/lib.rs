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

pub use server::{JobServices, ServicesConfig, StartError};
