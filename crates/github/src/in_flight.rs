//! The job in flight, recorded on disk (`.runner-job` beside the runner file, mode 0600):
//! written when a job is acquired, removed when it is completed. A runner killed mid-job
//! finds the record when it starts again and completes that job `failed`, with an
//! annotation saying why (without it, the service ends such a job only when its lock,
//! last renewed by the killed runner, runs out).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::job_lock::{JobLock, LockTimings};
use crate::run_service::{Annotation, AnnotationLevel, CompleteJob, Conclusion, RunService};

/// A job acquired and not yet completed, as recorded on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InFlight {
    pub base: String,
    pub job_token: String,
    pub plan_id: String,
    pub job_id: String,
    #[serde(default)]
    pub billing_owner_id: Option<String>,
}

/// Records the job acquired (nothing without a `path`); a failure is only warned about.
pub(crate) fn write(path: Option<&Path>, record: &InFlight) {
    let Some(path) = path else {
        return;
    };
    let result = serde_json::to_string(record)
        .map_err(std::io::Error::other)
        .and_then(|text| write_private(path, &text));
    if let Err(e) = result {
        tracing::warn!(file = %path.display(), error = %e, "cannot record the job in flight; a crash would leave it running on GitHub");
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let temp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temp, path)
}

/// Removes the record: the job was completed.
pub(crate) fn remove(path: Option<&Path>) {
    if let Some(path) = path {
        let _ = std::fs::remove_file(path);
    }
}

/// A job a killed runner left in flight: reported failed, with the reason as an
/// annotation.
pub(crate) async fn recover(run: &RunService, path: Option<&Path>, timings: LockTimings) {
    let Some(path) = path else {
        return;
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let Ok(record) = serde_json::from_str::<InFlight>(&text) else {
        tracing::warn!(file = %path.display(), "the job-in-flight record cannot be read; deleting it");
        let _ = std::fs::remove_file(path);
        return;
    };
    let end = CompleteJob {
        plan_id: record.plan_id.clone(),
        job_id: record.job_id.clone(),
        conclusion: Conclusion::Failed,
        outputs: Default::default(),
        step_results: Vec::new(),
        annotations: vec![Annotation {
            level: AnnotationLevel::Failure,
            message: "The runner stopped while it ran this job (it was killed or the machine went down); the job is reported failed".into(),
            title: None,
            path: None,
            start_line: None,
            end_line: None,
            start_column: None,
            end_column: None,
            step_number: None,
        }],
        billing_owner_id: record.billing_owner_id.clone(),
    };
    let lock = JobLock {
        run: run.clone(),
        base: record.base,
        job_token: record.job_token,
        plan_id: record.plan_id,
        job_id: record.job_id.clone(),
        timings,
    };
    match lock.complete(&end).await {
        Ok(true) => {
            tracing::warn!(job = %record.job_id, "a job left running by a stopped runner was reported failed")
        }
        Ok(false) => {
            tracing::info!(job = %record.job_id, "a job left by a stopped runner had already ended")
        }
        Err(e) => {
            tracing::warn!(job = %record.job_id, error = %e, "a job left by a stopped runner could not be reported")
        }
    }
    let _ = std::fs::remove_file(path);
}
