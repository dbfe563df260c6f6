//! The broker (`ServerUrlV2` of `.runner`): a session per listening runner, long polls for
//! messages, and acknowledgements, as actions/runner's `BrokerHttpClient.cs` and
//! `BrokerMessageListener.cs` speak it. Every call carries the runner's OAuth access token
//! ([`TokenSource`]); a 401 fetches a new token and tries once more.
//!
//! - `POST {base}session` with a `TaskAgentSession` (`{sessionId, ownerName, agent: {id,
//!   name, version, osDescription}, useFipsEncryption}`) → the session; 403 is access
//!   denied, 409 a session of this runner already open elsewhere;
//! - `GET {base}message?sessionId&status&runnerVersion&os&architecture&disableUpdate` → a
//!   `TaskAgentMessage` (`{messageId, messageType, body}`), or nothing after about 50 s;
//!   errors as `{source, errorKind, statusCode, errorMessage}` (`BrokerError.cs`);
//! - `POST {base}acknowledge?sessionId&status&runnerVersion&os&architecture` with
//!   `{runnerRequestId}`;
//! - `DELETE {base}session`.
//!
//! Broker messages are not encrypted (V2).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::oauth::{TokenError, TokenSource};
use crate::registration::architecture_label;

/// How long a poll may take: the broker holds it about 50 s (actions/runner gives the
/// message connection 60 s).
pub const POLL_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a broker call failed.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("cannot reach the broker at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "the broker does not know this runner ({0}); it was removed on GitHub: register it again"
    )]
    RunnerNotFound(String),
    #[error(
        "the broker refuses this runner's version ({0}); report a current actions/runner version with HYBRID_RUNNER_GITHUB_RUNNER_VERSION=2.x.y, or update hybrid-runner"
    )]
    VersionTooOld(String),
    #[error("the broker ended this runner's session ({0}); a new session is needed")]
    SessionInvalid(String),
    #[error("the broker says the job is gone ({0})")]
    JobNotFound(String),
    #[error(
        "another process already listens as this runner (HTTP 409: {0}); stop it, or wait for its session to expire"
    )]
    SessionConflict(String),
    #[error("the broker denied access (HTTP 403: {0})")]
    Denied(String),
    #[error("the broker answered HTTP {status} at {url}: {body}")]
    Failed {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the broker answered something unexpected at {url}: {message}")]
    Answer { url: String, message: String },
}

impl BrokerError {
    /// Whether waiting and trying again may help (network trouble, 5xx, a conflict).
    pub fn is_transient(&self) -> bool {
        match self {
            BrokerError::Unreachable { .. } | BrokerError::SessionConflict(_) => true,
            BrokerError::Failed { status, .. } => *status >= 500 || *status == 429,
            BrokerError::Token(TokenError::Unreachable { .. }) => true,
            BrokerError::Token(TokenError::Failed { status, .. }) => *status >= 500,
            _ => false,
        }
    }
}

/// Whether the runner is free for a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerStatus {
    Online,
    Busy,
}

impl RunnerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunnerStatus::Online => "Online",
            RunnerStatus::Busy => "Busy",
        }
    }
}

/// A job offered to this runner (`RunnerJobRequestRef`), to acknowledge and acquire.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JobRequest {
    #[serde(default)]
    pub id: String,
    pub runner_request_id: String,
    #[serde(default)]
    pub should_acknowledge: bool,
    #[serde(default)]
    pub run_service_url: String,
    #[serde(default)]
    pub billing_owner_id: Option<String>,
}

/// What a poll brought.
#[derive(Debug, Clone, PartialEq)]
pub enum BrokerMessage {
    JobRequest(JobRequest),
    /// `JobCancellation {jobId, timeout}`.
    Cancel {
        job_id: String,
    },
    /// The access token must be fetched again.
    ForceTokenRefresh,
    /// Listen at another broker from now on.
    Migration {
        broker_base_url: String,
    },
    /// A type this runner does not act on (logged and dropped, as actions/runner does).
    Other {
        message_type: String,
    },
}

/// The runner as the broker knows it.
#[derive(Debug, Clone)]
pub struct RunnerIdentity {
    pub agent_id: u64,
    pub agent_name: String,
    /// The actions/runner version reported.
    pub version: String,
    pub disable_update: bool,
}

/// An open broker session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub session_id: String,
}

/// Talks to one broker.
#[derive(Debug, Clone)]
pub struct BrokerClient {
    http: reqwest::Client,
    base: String,
    tokens: Arc<TokenSource>,
    runner: RunnerIdentity,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    #[serde(default)]
    message_type: String,
    #[serde(default)]
    body: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    #[serde(default)]
    error_kind: String,
    #[serde(default)]
    error_message: String,
}

impl BrokerClient {
    /// A client of the broker at `server_url_v2`.
    pub fn new(
        http: reqwest::Client,
        server_url_v2: &str,
        tokens: Arc<TokenSource>,
        runner: RunnerIdentity,
    ) -> BrokerClient {
        let mut base = server_url_v2.to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        BrokerClient {
            http,
            base,
            tokens,
            runner,
        }
    }

    /// The broker base, ending in `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn status_query(&self, session: &Session, status: RunnerStatus) -> Vec<(&'static str, String)> {
        vec![
            ("sessionId", session.session_id.clone()),
            ("status", status.as_str().to_string()),
            ("runnerVersion", self.runner.version.clone()),
            ("os", "Linux".to_string()),
            ("architecture", architecture_label().to_string()),
        ]
    }

    /// One call with the runner's token (see [`TokenSource::send_authorized`]); the status
    /// and the body.
    async fn send(
        &self,
        make: impl Fn() -> reqwest::RequestBuilder,
        url: &str,
    ) -> Result<(u16, String), BrokerError> {
        self.tokens
            .send_authorized(|| make().header("Accept", "application/json"))
            .await?
            .map_err(|source| BrokerError::Unreachable {
                url: url.to_string(),
                source,
            })
    }

    /// The error a non-2xx answer stands for.
    fn error(url: &str, status: u16, body: &str) -> BrokerError {
        let short = crate::excerpt(body);
        if let Ok(e) = serde_json::from_str::<ErrorBody>(body) {
            let message = e.error_message.clone();
            match e.error_kind.as_str() {
                "RunnerNotFound" => return BrokerError::RunnerNotFound(message),
                "RunnerVersionTooOld" => return BrokerError::VersionTooOld(message),
                "RunnerSessionInvalid" => return BrokerError::SessionInvalid(message),
                "AcknowledgeJobNotFound" => return BrokerError::JobNotFound(message),
                _ => {}
            }
        }
        match status {
            403 => BrokerError::Denied(short),
            409 => BrokerError::SessionConflict(short),
            _ => BrokerError::Failed {
                url: url.to_string(),
                status,
                body: short,
            },
        }
    }

    /// Opens a session named `owner_name` (actions/runner: `HOST (PID: n)`).
    pub async fn create_session(&self, owner_name: &str) -> Result<Session, BrokerError> {
        let url = format!("{}session", self.base);
        let body = json!({
            "sessionId": "00000000-0000-0000-0000-000000000000",
            "ownerName": owner_name,
            "agent": {
                "id": self.runner.agent_id,
                "name": self.runner.agent_name,
                "version": self.runner.version,
                "osDescription": std::env::consts::OS,
            },
            "useFipsEncryption": false,
        });
        let (status, text) = self.send(|| self.http.post(&url).json(&body), &url).await?;
        if !(200..300).contains(&status) {
            return Err(Self::error(&url, status, &text));
        }
        let answer: Value = serde_json::from_str(&text).map_err(|e| BrokerError::Answer {
            url: url.clone(),
            message: e.to_string(),
        })?;
        let session_id = answer
            .get("sessionId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| BrokerError::Answer {
                url: url.clone(),
                message: "the session has no sessionId".to_string(),
            })?;
        Ok(Session {
            session_id: session_id.to_string(),
        })
    }

    /// Closes the session.
    pub async fn delete_session(&self) -> Result<(), BrokerError> {
        let url = format!("{}session", self.base);
        let (status, text) = self.send(|| self.http.delete(&url), &url).await?;
        if (200..300).contains(&status) || status == 404 {
            Ok(())
        } else {
            Err(Self::error(&url, status, &text))
        }
    }

    /// One long poll; `None` when the broker had nothing.
    pub async fn get_message(
        &self,
        session: &Session,
        status: RunnerStatus,
    ) -> Result<Option<BrokerMessage>, BrokerError> {
        let url = format!("{}message", self.base);
        let mut query = self.status_query(session, status);
        query.push(("disableUpdate", self.runner.disable_update.to_string()));
        let (code, text) = self
            .send(
                || self.http.get(&url).query(&query).timeout(POLL_TIMEOUT),
                &url,
            )
            .await?;
        if !(200..300).contains(&code) {
            return Err(Self::error(&url, code, &text));
        }
        if text.trim().is_empty() {
            return Ok(None);
        }
        let envelope: Envelope = serde_json::from_str(&text).map_err(|e| BrokerError::Answer {
            url: url.clone(),
            message: e.to_string(),
        })?;
        parse_message(&url, envelope).map(Some)
    }

    /// Acknowledges a job request (when it asked for it).
    pub async fn acknowledge(
        &self,
        session: &Session,
        runner_request_id: &str,
        status: RunnerStatus,
    ) -> Result<(), BrokerError> {
        let url = format!("{}acknowledge", self.base);
        let query = self.status_query(session, status);
        let body = json!({"runnerRequestId": runner_request_id});
        let (code, text) = self
            .send(|| self.http.post(&url).query(&query).json(&body), &url)
            .await?;
        if (200..300).contains(&code) {
            Ok(())
        } else {
            Err(Self::error(&url, code, &text))
        }
    }
}

fn parse_message(url: &str, envelope: Envelope) -> Result<BrokerMessage, BrokerError> {
    let body = envelope.body.unwrap_or_default();
    let answer = |message: String| BrokerError::Answer {
        url: url.to_string(),
        message,
    };
    let json = || -> Result<Value, BrokerError> {
        serde_json::from_str(body.trim_start_matches('\u{feff}')).map_err(|e| {
            answer(format!(
                "the body of a {} message is not JSON: {e}",
                envelope.message_type
            ))
        })
    };
    let field = |v: &Value, name: &str| {
        v.as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .map(|(_, v)| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
    };
    Ok(match envelope.message_type.as_str() {
        "RunnerJobRequest" => BrokerMessage::JobRequest(
            serde_json::from_value(json()?)
                .map_err(|e| answer(format!("a RunnerJobRequest without its fields: {e}")))?,
        ),
        "JobCancellation" => BrokerMessage::Cancel {
            job_id: field(&json()?, "jobId").unwrap_or_default(),
        },
        "ForceTokenRefresh" => BrokerMessage::ForceTokenRefresh,
        "BrokerMigration" => BrokerMessage::Migration {
            broker_base_url: field(&json()?, "brokerBaseUrl")
                .ok_or_else(|| answer("a BrokerMigration without brokerBaseUrl".to_string()))?,
        },
        other => BrokerMessage::Other {
            message_type: other.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(message_type: &str, body: &str) -> Envelope {
        Envelope {
            message_type: message_type.to_string(),
            body: Some(body.to_string()),
        }
    }

    #[test]
    fn messages_parse_by_type() {
        let job = parse_message(
            "u",
            envelope(
                "RunnerJobRequest",
                r#"{"id":"m1","runner_request_id":"rr-1","should_acknowledge":true,"run_service_url":"https://run.example/","billing_owner_id":"b"}"#,
            ),
        )
        .unwrap();
        let BrokerMessage::JobRequest(job) = job else {
            panic!("{job:?}")
        };
        assert_eq!(job.runner_request_id, "rr-1");
        assert!(job.should_acknowledge);
        assert_eq!(
            parse_message(
                "u",
                envelope("JobCancellation", r#"{"jobId":"j-9","timeout":"00:05:00"}"#)
            )
            .unwrap(),
            BrokerMessage::Cancel {
                job_id: "j-9".into()
            }
        );
        assert_eq!(
            parse_message(
                "u",
                envelope("BrokerMigration", r#"{"BrokerBaseUrl":"https://b2/"}"#)
            )
            .unwrap(),
            BrokerMessage::Migration {
                broker_base_url: "https://b2/".into()
            }
        );
        assert_eq!(
            parse_message("u", envelope("ForceTokenRefresh", "")).unwrap(),
            BrokerMessage::ForceTokenRefresh
        );
        assert!(matches!(
            parse_message("u", envelope("RunnerRefresh", "{}")).unwrap(),
            BrokerMessage::Other { .. }
        ));
        let err = parse_message("u", envelope("RunnerJobRequest", "{nope")).unwrap_err();
        assert!(err.to_string().contains("not JSON"), "{err}");
    }

    #[test]
    fn broker_errors_map_by_kind_then_status() {
        let e = BrokerClient::error(
            "u",
            403,
            r#"{"source":"broker","errorKind":"RunnerVersionTooOld","statusCode":403,"errorMessage":"too old"}"#,
        );
        assert!(
            matches!(e, BrokerError::VersionTooOld(ref m) if m == "too old"),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains("HYBRID_RUNNER_GITHUB_RUNNER_VERSION")
        );
        assert!(matches!(
            BrokerClient::error("u", 409, "busy"),
            BrokerError::SessionConflict(_)
        ));
        assert!(BrokerClient::error("u", 409, "busy").is_transient());
        assert!(BrokerClient::error("u", 503, "").is_transient());
        assert!(
            !BrokerClient::error(
                "u",
                404,
                r#"{"errorKind":"RunnerNotFound","errorMessage":"gone"}"#
            )
            .is_transient()
        );
    }
}
