//! The results service: step states and logs of a V2 job, as actions/runner's
//! `src/Sdk/WebApi/WebApi/ResultsHttpClient.cs` and `Contracts.cs` speak it. The base is the
//! job's `system.github.results_endpoint` variable; every call carries the job's token.
//! Twirp JSON, snake_case:
//!
//! - `twirp/github.actions.results.api.v1.WorkflowStepUpdateService/WorkflowStepsUpdate`
//!   `{steps: [{external_id, number, name, status, started_at, completed_at, conclusion}],
//!   change_order, workflow_run_backend_id, workflow_job_run_backend_id}`, status and
//!   conclusion as integers (status 3 in progress, 5 pending, 6 completed; conclusion 2
//!   success, 3 failure, 4 cancelled, 7 skipped);
//! - `twirp/results.services.receiver.Receiver/GetStepLogsSignedBlobURL` (and
//!   `GetJobLogsSignedBlobURL`) → `{logs_url, blob_storage_type}`; the log goes to that URL:
//!   a log of one block as a block blob (`PUT`, `x-ms-blob-type: BlockBlob`), a longer one
//!   as an append blob (`PUT` with `x-ms-blob-type: AppendBlob` and no body, then
//!   `PUT …&comp=appendblock` per block, the last with `&seal=true` and
//!   `x-ms-blob-sealed: true`); the blob headers only when the storage type is
//!   `BLOB_STORAGE_TYPE_AZURE`;
//! - then `CreateStepLogsMetadata` (`CreateJobLogsMetadata`) `{…, uploaded_at, line_count}`,
//!   answered `{ok: true}`.
//!
//! Timestamps are `yyyy-MM-ddTHH:mm:ss.fffZ`.

use serde::Serialize;
use serde_json::{Value, json};

/// Why a results call failed.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot reach the results service at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the results service answered HTTP {status} at {url}: {body}")]
    Failed {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the results service answered something unexpected at {url}: {message}")]
    Answer { url: String, message: String },
}

impl ResultsError {
    /// Whether trying again may help.
    pub fn is_transient(&self) -> bool {
        match self {
            ResultsError::Unreachable { .. } => true,
            ResultsError::Failed { status, .. } => *status >= 500 || *status == 429,
            ResultsError::Answer { .. } => false,
        }
    }
}

/// A step's state (`Contracts.cs` `Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    InProgress,
    Pending,
    Completed,
}

impl StepState {
    pub fn code(self) -> u8 {
        match self {
            StepState::InProgress => 3,
            StepState::Pending => 5,
            StepState::Completed => 6,
        }
    }
}

/// A step's result (`Contracts.cs` `Conclusion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepConclusion {
    Unknown,
    Success,
    Failure,
    Cancelled,
    Skipped,
}

impl StepConclusion {
    pub fn code(self) -> u8 {
        match self {
            StepConclusion::Unknown => 0,
            StepConclusion::Success => 2,
            StepConclusion::Failure => 3,
            StepConclusion::Cancelled => 4,
            StepConclusion::Skipped => 7,
        }
    }
}

/// One step in a `WorkflowStepsUpdate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUpdate {
    pub external_id: String,
    pub number: u32,
    pub name: String,
    pub state: StepState,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub conclusion: StepConclusion,
}

/// What a job's logs and steps belong to: its plan (run) and job ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobIds {
    pub workflow_run_backend_id: String,
    pub workflow_job_run_backend_id: String,
}

/// The results timestamp format for `t`: RFC 3339 with milliseconds.
pub fn timestamp(t: std::time::SystemTime) -> String {
    let millis = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_millis())
        .unwrap_or_default();
    let seconds = hr_cluster::time::rfc3339(t);
    format!("{}.{millis:03}Z", seconds.trim_end_matches('Z'))
}

/// Talks to one job's results service.
#[derive(Debug, Clone)]
pub struct ResultsClient {
    http: reqwest::Client,
    base: String,
    job_token: String,
    ids: JobIds,
    change_order: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

const STEP_UPDATE: &str =
    "twirp/github.actions.results.api.v1.WorkflowStepUpdateService/WorkflowStepsUpdate";
const RECEIVER: &str = "twirp/results.services.receiver.Receiver/";
const AZURE: &str = "BLOB_STORAGE_TYPE_AZURE";

impl ResultsClient {
    pub fn new(http: reqwest::Client, base: &str, job_token: &str, ids: JobIds) -> ResultsClient {
        let mut base = base.to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        ResultsClient {
            http,
            base,
            job_token: job_token.to_string(),
            ids,
            change_order: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(1)),
        }
    }

    async fn twirp(&self, method: &str, body: &Value) -> Result<Value, ResultsError> {
        let url = format!("{}{method}", self.base);
        let response = self
            .http
            .post(&url)
            .bearer_auth(&self.job_token)
            .header("Accept", "application/json")
            .json(body)
            .send()
            .await
            .map_err(|source| ResultsError::Unreachable {
                url: url.clone(),
                source,
            })?;
        let (status, text) = crate::status_and_text(response).await;
        if !(200..300).contains(&status) {
            return Err(ResultsError::Failed {
                url,
                status,
                body: crate::excerpt(&text),
            });
        }
        serde_json::from_str(&text).map_err(|e| ResultsError::Answer {
            url,
            message: e.to_string(),
        })
    }

    /// Sends the steps' states; each call gets the next change order.
    pub async fn update_steps(&self, steps: &[StepUpdate]) -> Result<(), ResultsError> {
        let steps: Vec<Value> = steps
            .iter()
            .map(|s| {
                json!({
                    "external_id": s.external_id,
                    "number": s.number,
                    "name": s.name,
                    "status": s.state.code(),
                    "started_at": s.started_at,
                    "completed_at": s.completed_at,
                    "conclusion": s.conclusion.code(),
                })
            })
            .collect();
        let order = self
            .change_order
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let body = json!({
            "steps": steps,
            "change_order": order,
            "workflow_run_backend_id": self.ids.workflow_run_backend_id,
            "workflow_job_run_backend_id": self.ids.workflow_job_run_backend_id,
        });
        self.twirp(STEP_UPDATE, &body).await.map(|_| ())
    }

    /// Uploads a finished step's log (`step` is its external id) in blocks of `block`
    /// bytes, then its metadata.
    pub async fn upload_step_log(
        &self,
        step: &str,
        log: &[u8],
        line_count: u64,
        block: usize,
    ) -> Result<(), ResultsError> {
        self.upload_log(
            "GetStepLogsSignedBlobURL",
            "CreateStepLogsMetadata",
            self.step_ids(step),
            log,
            line_count,
            block,
        )
        .await
    }

    /// Uploads the job's whole log, then its metadata.
    pub async fn upload_job_log(
        &self,
        log: &[u8],
        line_count: u64,
        block: usize,
    ) -> Result<(), ResultsError> {
        self.upload_log(
            "GetJobLogsSignedBlobURL",
            "CreateJobLogsMetadata",
            json!(self.ids),
            log,
            line_count,
            block,
        )
        .await
    }

    async fn upload_log(
        &self,
        url_method: &str,
        metadata_method: &'static str,
        ids: Value,
        log: &[u8],
        line_count: u64,
        block: usize,
    ) -> Result<(), ResultsError> {
        let blocks: Vec<&[u8]> = if log.is_empty() {
            vec![&[]]
        } else {
            log.chunks(block.max(1)).collect()
        };
        if blocks.len() == 1 {
            let (url, azure) = self.signed_url(url_method, &ids).await?;
            let mut put = self.http.put(&url).header("Content-Type", "text/plain");
            if azure {
                put = put.header("x-ms-blob-type", "BlockBlob");
            }
            self.blob(put.body(blocks[0].to_vec()), &url).await?;
            return self.metadata(metadata_method, ids, line_count).await;
        }
        let log = self.open_log(url_method, metadata_method, ids).await?;
        let last = blocks.len() - 1;
        for chunk in &blocks[..last] {
            log.append(chunk).await?;
        }
        log.finish(blocks[last], line_count).await
    }

    /// Opens a step's log (`step` is its external id) for writing while the step runs:
    /// an append blob, created empty.
    pub async fn open_step_log(&self, step: &str) -> Result<LiveLog, ResultsError> {
        let ids = self.step_ids(step);
        self.open_log("GetStepLogsSignedBlobURL", "CreateStepLogsMetadata", ids)
            .await
    }

    /// The ids of the job's step `step` (its external id), as the log calls name it.
    fn step_ids(&self, step: &str) -> Value {
        let mut ids = json!(self.ids);
        ids["step_backend_id"] = json!(step);
        ids
    }

    async fn open_log(
        &self,
        url_method: &str,
        metadata_method: &'static str,
        ids: Value,
    ) -> Result<LiveLog, ResultsError> {
        let (url, azure) = self.signed_url(url_method, &ids).await?;
        let log = LiveLog {
            client: self.clone(),
            url,
            azure,
            ids,
            metadata_method,
        };
        log.create().await?;
        Ok(log)
    }

    /// A signed blob URL for a log, and whether it is Azure's (which wants the blob
    /// headers).
    async fn signed_url(&self, method: &str, ids: &Value) -> Result<(String, bool), ResultsError> {
        let answer = self.twirp(&format!("{RECEIVER}{method}"), ids).await?;
        let url = answer["logs_url"].as_str().unwrap_or_default().to_string();
        if url.is_empty() {
            return Err(ResultsError::Answer {
                url: format!("{}{RECEIVER}{method}", self.base),
                message: "no logs_url".to_string(),
            });
        }
        Ok((url, answer["blob_storage_type"].as_str() == Some(AZURE)))
    }

    async fn metadata(
        &self,
        method: &str,
        mut ids: Value,
        line_count: u64,
    ) -> Result<(), ResultsError> {
        ids["uploaded_at"] = json!(timestamp(std::time::SystemTime::now()));
        ids["line_count"] = json!(line_count);
        let answer = self.twirp(&format!("{RECEIVER}{method}"), &ids).await?;
        if answer["ok"] != json!(true) {
            return Err(ResultsError::Answer {
                url: format!("{}{RECEIVER}{method}", self.base),
                message: format!("the metadata was not accepted: {answer}"),
            });
        }
        Ok(())
    }

    async fn blob(&self, request: reqwest::RequestBuilder, url: &str) -> Result<(), ResultsError> {
        let response = request
            .send()
            .await
            .map_err(|source| ResultsError::Unreachable {
                url: url.to_string(),
                source,
            })?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(ResultsError::Failed {
                url: url.to_string(),
                status,
                body: crate::excerpt(&response.text().await.unwrap_or_default()),
            })
        }
    }
}

/// A log written while it grows: an append blob behind a signed URL, one block per
/// [`LiveLog::append`], sealed by [`LiveLog::finish`] with the log's metadata.
#[derive(Debug, Clone)]
pub struct LiveLog {
    client: ResultsClient,
    url: String,
    azure: bool,
    ids: Value,
    metadata_method: &'static str,
}

impl LiveLog {
    async fn create(&self) -> Result<(), ResultsError> {
        let mut create = self
            .client
            .http
            .put(&self.url)
            .header("Content-Type", "text/plain")
            .header("Content-Length", "0");
        if self.azure {
            create = create.header("x-ms-blob-type", "AppendBlob");
        }
        self.client.blob(create.body(Vec::new()), &self.url).await
    }

    async fn put_block(&self, chunk: &[u8], seal: bool) -> Result<(), ResultsError> {
        let comp = if seal {
            "&comp=appendblock&seal=true"
        } else {
            "&comp=appendblock"
        };
        let target = format!("{}{comp}", self.url);
        let mut put = self.client.http.put(&target);
        if self.azure {
            put = put.header("x-ms-blob-sealed", if seal { "True" } else { "False" });
        }
        self.client.blob(put.body(chunk.to_vec()), &target).await
    }

    /// Appends one block (at most 4 MiB for Azure: callers flush smaller ones).
    pub async fn append(&self, chunk: &[u8]) -> Result<(), ResultsError> {
        self.put_block(chunk, false).await
    }

    /// Appends the last block, seals the blob and sends the log's metadata.
    pub async fn finish(&self, last: &[u8], line_count: u64) -> Result<(), ResultsError> {
        self.put_block(last, true).await?;
        self.client
            .metadata(self.metadata_method, self.ids.clone(), line_count)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_796_558_400_123);
        assert_eq!(timestamp(t), "2026-12-06T12:00:00.123Z");
        assert_eq!(timestamp(std::time::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn codes_are_the_contract_integers() {
        assert_eq!(StepState::InProgress.code(), 3);
        assert_eq!(StepState::Completed.code(), 6);
        assert_eq!(StepConclusion::Cancelled.code(), 4);
        assert_eq!(StepConclusion::Skipped.code(), 7);
    }
}
