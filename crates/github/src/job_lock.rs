//! Holding a job and handing it back, as actions/runner's `JobDispatcher.cs` does it:
//!
//! - the first `renewjob` must succeed before any step runs (up to 5 tries, 10 s apart);
//! - then the lock is renewed every 60 s; a renewal that fails is retried at the next
//!   tick, and the job is given up (its steps cancelled) when the service says the job is
//!   gone (404) or no renewal has succeeded for 5 minutes past the last lock;
//! - `completejob` is retried until it lands (a 404 means the service already ended the
//!   job), so the service hears of the job's end exactly once.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::run_service::{CompleteJob, RunService, RunServiceError};

/// The timings of [`JobLock`]; [`LockTimings::default`] is actions/runner's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockTimings {
    pub first_attempts: u32,
    pub first_interval: Duration,
    pub renew_every: Duration,
    /// How long renewals may fail before the job is given up.
    pub give_up_after: Duration,
    pub complete_attempts: u32,
    /// The wait after the first failed `completejob`, doubled after each next one up to
    /// `complete_max_interval`.
    pub complete_interval: Duration,
    pub complete_max_interval: Duration,
}

impl Default for LockTimings {
    fn default() -> Self {
        LockTimings {
            first_attempts: 5,
            first_interval: Duration::from_secs(10),
            renew_every: Duration::from_secs(60),
            give_up_after: Duration::from_secs(60 + 300),
            complete_attempts: 10,
            complete_interval: Duration::from_secs(10),
            complete_max_interval: Duration::from_secs(10),
        }
    }
}

/// Why a job could not be held.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("the first renewal of the job failed {attempts} times; the job is not started: {last}")]
    FirstRenewal {
        attempts: u32,
        last: RunServiceError,
    },
    #[error("the job was lost: {0}")]
    Lost(RunServiceError),
    #[error(
        "completejob failed {attempts} times; the service did not hear of the job's end: {last}"
    )]
    Complete {
        attempts: u32,
        last: RunServiceError,
    },
}

/// One acquired job's lock on the run service.
#[derive(Debug, Clone)]
pub struct JobLock {
    pub run: RunService,
    /// The `SystemVssConnection` url.
    pub base: String,
    pub job_token: String,
    pub plan_id: String,
    pub job_id: String,
    pub timings: LockTimings,
}

impl JobLock {
    async fn renew_once(&self) -> Result<String, RunServiceError> {
        self.run
            .renew(&self.base, &self.job_token, &self.plan_id, &self.job_id)
            .await
    }

    /// The first renewal, which must succeed before the job starts; the time the job is
    /// locked until, when the service said.
    pub async fn first_renewal(&self) -> Result<Option<SystemTime>, LockError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.renew_once().await {
                Ok(until) => return Ok(hr_cluster::time::parse_rfc3339(&until)),
                Err(e @ RunServiceError::JobNotFound(_)) => return Err(LockError::Lost(e)),
                Err(e) if attempt >= self.timings.first_attempts => {
                    return Err(LockError::FirstRenewal {
                        attempts: attempt,
                        last: e,
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "the first renewal of the job failed; retrying");
                    tokio::time::sleep(self.timings.first_interval).await;
                }
            }
        }
    }

    /// Renews until `done` is cancelled; returns the reason when the job is lost, after
    /// cancelling `lost` (the job's steps then stop). Renewals come every `renew_every`
    /// (actions/runner's 60 s), sooner when the lock would run out before: at half the
    /// time left of `locked_until` (at least a second apart).
    pub async fn keep(
        &self,
        locked_until: Option<SystemTime>,
        done: CancellationToken,
        lost: CancellationToken,
    ) -> Option<LockError> {
        let mut last_success = Instant::now();
        let mut until = locked_until;
        loop {
            tokio::select! {
                () = done.cancelled() => return None,
                () = tokio::time::sleep(self.next_renewal(until)) => {}
            }
            match self.renew_once().await {
                Ok(answer) => {
                    last_success = Instant::now();
                    until = hr_cluster::time::parse_rfc3339(&answer);
                }
                Err(e @ RunServiceError::JobNotFound(_)) => {
                    lost.cancel();
                    return Some(LockError::Lost(e));
                }
                Err(e) if last_success.elapsed() >= self.timings.give_up_after => {
                    lost.cancel();
                    return Some(LockError::Lost(e));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "renewing the job failed; retrying at the next renewal")
                }
            }
        }
    }

    /// The wait before the next renewal of a lock held until `until`.
    fn next_renewal(&self, until: Option<SystemTime>) -> Duration {
        let Some(left) = until.and_then(|u| u.duration_since(SystemTime::now()).ok()) else {
            return self.timings.renew_every;
        };
        self.timings
            .renew_every
            .min((left / 2).max(Duration::from_secs(1)))
    }

    /// Reports the job's end, retrying until it lands; `Ok(false)` when the service had
    /// already ended the job (404).
    pub async fn complete(&self, end: &CompleteJob) -> Result<bool, LockError> {
        let mut attempt = 0;
        let mut wait = self.timings.complete_interval;
        loop {
            attempt += 1;
            match self.run.complete(&self.base, &self.job_token, end).await {
                Ok(()) => return Ok(true),
                Err(RunServiceError::JobNotFound(_)) => return Ok(false),
                Err(e) if attempt >= self.timings.complete_attempts => {
                    return Err(LockError::Complete {
                        attempts: attempt,
                        last: e,
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "completejob failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(self.timings.complete_max_interval.max(wait));
                }
            }
        }
    }
}
