//! The run service: taking a job and reporting its end, as actions/runner's
//! `src/Sdk/RSWebApi/RunServiceHttpClient.cs` speaks it.
//!
//! - `POST {run_service_url}acquirejob` `{jobMessageId, runnerOS, billingOwnerId}` with the
//!   runner's access token → the job message (`AgentJobRequestMessage`); 404 the job is
//!   gone, 409 another runner took it, 422 it cannot be run;
//! - `POST {base}renewjob` `{planId, jobId}` with the job's token → `{lockedUntil}`;
//!   404 means the job is gone and must stop;
//! - `POST {base}completejob` `{planId, jobId, conclusion, outputs, stepResults,
//!   annotations, billingOwnerId}` with the job's token.
//!
//! `{base}` is the `url` of the job message's `SystemVssConnection` endpoint, the job's
//! token its `AccessToken`. Enums go as actions/runner's JSON formatter writes them:
//! camelCase strings (`succeeded`, `failed`, `canceled` with one l, `skipped`; step status
//! `completed`; annotation level `notice`, `warning`, `failure`). Errors come as
//! `{source, statusCode, errorMessage}` (`RunServiceError.cs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::broker::JobRequest;
use crate::oauth::{TokenError, TokenSource};

/// Why a run-service call failed.
#[derive(Debug, thiserror::Error)]
pub enum RunServiceError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("cannot reach the run service at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the job is gone ({0})")]
    JobNotFound(String),
    #[error("another runner took the job ({0})")]
    AlreadyAcquired(String),
    #[error("the run service cannot hand out the job ({0})")]
    Unprocessable(String),
    #[error("the run service answered HTTP {status} at {url}: {body}")]
    Failed {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the run service answered something unexpected at {url}: {message}")]
    Answer { url: String, message: String },
}

impl RunServiceError {
    /// Whether trying again later may help.
    pub fn is_transient(&self) -> bool {
        match self {
            RunServiceError::Unreachable { .. } => true,
            RunServiceError::Failed { status, .. } => *status >= 500 || *status == 429,
            RunServiceError::Token(TokenError::Unreachable { .. }) => true,
            _ => false,
        }
    }
}

/// A job's result as `TaskResult` spells it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Conclusion {
    Succeeded,
    Failed,
    Canceled,
    Skipped,
}

/// A step's state as `TimelineRecordState` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StepStatus {
    Pending,
    InProgress,
    Completed,
}

/// An annotation's level (`AnnotationLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AnnotationLevel {
    Notice,
    Warning,
    Failure,
}

/// One step in `completejob`'s `stepResults`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepResult {
    pub external_id: String,
    pub number: u32,
    pub name: String,
    pub status: StepStatus,
    pub conclusion: Option<Conclusion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_log_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_log_lines: Option<u64>,
}

/// One `::error::`/`::warning::`/`::notice::` of the job.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Annotation {
    pub level: AnnotationLevel,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_column: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_column: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_number: Option<u32>,
}

/// The end of a job, for `completejob`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompleteJob {
    pub plan_id: String,
    pub job_id: String,
    pub conclusion: Conclusion,
    /// Job outputs: value and whether it is a secret.
    pub outputs: BTreeMap<String, (String, bool)>,
    pub step_results: Vec<StepResult>,
    pub annotations: Vec<Annotation>,
    pub billing_owner_id: Option<String>,
}

impl CompleteJob {
    /// The request body.
    pub fn to_json(&self) -> Value {
        let outputs: serde_json::Map<String, Value> = self
            .outputs
            .iter()
            .map(|(k, (v, secret))| (k.clone(), json!({"value": v, "isSecret": secret})))
            .collect();
        let mut body = json!({
            "planId": self.plan_id,
            "jobId": self.job_id,
            "conclusion": self.conclusion,
            "outputs": outputs,
            "stepResults": self.step_results,
            "annotations": self.annotations,
        });
        if let Some(owner) = &self.billing_owner_id {
            body["billingOwnerId"] = json!(owner);
        }
        body
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    #[serde(default)]
    error_message: String,
}

/// Calls the run service.
#[derive(Debug, Clone)]
pub struct RunService {
    http: reqwest::Client,
}

fn with_slash(base: &str) -> String {
    if base.ends_with('/') {
        base.to_string()
    } else {
        format!("{base}/")
    }
}

impl RunService {
    pub fn new(http: reqwest::Client) -> RunService {
        RunService { http }
    }

    fn request(&self, url: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(url)
            .header("Accept", "application/json")
            .json(body)
    }

    fn unreachable(url: &str) -> impl FnOnce(reqwest::Error) -> RunServiceError {
        move |source| RunServiceError::Unreachable {
            url: url.to_string(),
            source,
        }
    }

    /// A POST with the job's token.
    async fn post(
        &self,
        url: &str,
        token: &str,
        body: &Value,
    ) -> Result<(u16, String), RunServiceError> {
        let response = self
            .request(url, body)
            .bearer_auth(token)
            .send()
            .await
            .map_err(Self::unreachable(url))?;
        Ok(crate::status_and_text(response).await)
    }

    fn error(url: &str, status: u16, body: &str) -> RunServiceError {
        let message = serde_json::from_str::<ErrorBody>(body)
            .map(|e| e.error_message)
            .unwrap_or_else(|_| crate::excerpt(body));
        match status {
            404 => RunServiceError::JobNotFound(message),
            409 => RunServiceError::AlreadyAcquired(message),
            422 => RunServiceError::Unprocessable(message),
            _ => RunServiceError::Failed {
                url: url.to_string(),
                status,
                body: message,
            },
        }
    }

    /// Takes the job of `request`; its message as the service sent it.
    pub async fn acquire(
        &self,
        tokens: &TokenSource,
        request: &JobRequest,
    ) -> Result<Value, RunServiceError> {
        let url = format!("{}acquirejob", with_slash(&request.run_service_url));
        let mut body = json!({"jobMessageId": request.runner_request_id, "runnerOS": "Linux"});
        if let Some(owner) = &request.billing_owner_id {
            body["billingOwnerId"] = json!(owner);
        }
        let (status, text) = tokens
            .send_authorized(|| self.request(&url, &body))
            .await?
            .map_err(Self::unreachable(&url))?;
        if !(200..300).contains(&status) {
            return Err(Self::error(&url, status, &text));
        }
        serde_json::from_str(text.trim_start_matches('\u{feff}')).map_err(|e| {
            RunServiceError::Answer {
                url,
                message: format!("the job message is not JSON: {e}"),
            }
        })
    }

    /// Renews the job's lock; the time it is locked until.
    pub async fn renew(
        &self,
        base: &str,
        job_token: &str,
        plan_id: &str,
        job_id: &str,
    ) -> Result<String, RunServiceError> {
        let url = format!("{}renewjob", with_slash(base));
        let (status, text) = self
            .post(
                &url,
                job_token,
                &json!({"planId": plan_id, "jobId": job_id}),
            )
            .await?;
        if !(200..300).contains(&status) {
            return Err(Self::error(&url, status, &text));
        }
        let answer: Value = serde_json::from_str(&text).map_err(|e| RunServiceError::Answer {
            url: url.clone(),
            message: e.to_string(),
        })?;
        Ok(answer
            .get("lockedUntil")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    /// Reports the job's end.
    pub async fn complete(
        &self,
        base: &str,
        job_token: &str,
        job: &CompleteJob,
    ) -> Result<(), RunServiceError> {
        let url = format!("{}completejob", with_slash(base));
        let (status, text) = self.post(&url, job_token, &job.to_json()).await?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(Self::error(&url, status, &text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completejob_spells_enums_as_the_official_runner() {
        let job = CompleteJob {
            plan_id: "p".into(),
            job_id: "j".into(),
            conclusion: Conclusion::Canceled,
            outputs: BTreeMap::from([("out".to_string(), ("v".to_string(), false))]),
            step_results: vec![StepResult {
                external_id: "e".into(),
                number: 1,
                name: "Run a".into(),
                status: StepStatus::Completed,
                conclusion: Some(Conclusion::Succeeded),
                started_at: Some("2026-12-06T10:00:00.000Z".into()),
                completed_at: None,
                completed_log_url: None,
                completed_log_lines: Some(3),
            }],
            annotations: vec![Annotation {
                level: AnnotationLevel::Failure,
                message: "boom".into(),
                title: None,
                path: Some("a.rs".into()),
                start_line: Some(3),
                end_line: None,
                start_column: None,
                end_column: None,
                step_number: Some(1),
            }],
            billing_owner_id: None,
        };
        let body = job.to_json();
        assert_eq!(body["conclusion"], "canceled");
        assert_eq!(body["stepResults"][0]["status"], "completed");
        assert_eq!(body["stepResults"][0]["conclusion"], "succeeded");
        assert_eq!(body["stepResults"][0]["completed_log_lines"], 3);
        assert!(body["stepResults"][0].get("completed_at").is_none());
        assert_eq!(body["annotations"][0]["level"], "failure");
        assert_eq!(body["annotations"][0]["startLine"], 3);
        assert_eq!(
            body["outputs"]["out"],
            json!({"value": "v", "isSecret": false})
        );
        assert!(body.get("billingOwnerId").is_none());
        assert_eq!(
            serde_json::to_value(StepStatus::InProgress).unwrap(),
            "inProgress"
        );
    }
}
