//! GitHub's self-hosted runner protocol, the V2 flow (runner-admin, broker, run service,
//! results service), as actions/runner speaks it. This crate owns the runner's identity:
//! its files (`.runner`, `.credentials`, `.credentials_rsaparams`) in the forms the service
//! and actions/runner write them, JIT configs, the RSA key, the OAuth client
//! assertion and the access tokens it buys; the broker's sessions and messages; the run service (acquire, renew, complete); the results service (step states, logs); the launch service (action archives); the REST calls of runner pool mode (JIT configs, runner groups, listing and deleting runners, with a PAT or a GitHub App); the job message, read and written back as a one-job workflow. It knows nothing of how jobs run.

pub mod assertion;
pub mod broker;
pub mod daemon;
pub mod files;
mod in_flight;
pub mod jit;
pub mod job;
pub mod job_actions;
pub mod job_lock;
pub mod key;
pub mod launch;
pub mod live_console;
pub mod message;
pub mod oauth;
pub mod pool;
pub mod registration;
pub mod report;
pub mod results;
pub mod run_job;
pub mod run_service;
pub mod runner_admin;

pub use assertion::{SigningAlgorithm, client_assertion};
pub use broker::{
    BrokerClient, BrokerError, BrokerMessage, JobRequest, RunnerIdentity, RunnerStatus, Session,
};
pub use files::{FileError, OAuthCredentials, RunnerSettings};
pub use jit::JitConfig;
pub use job::JobMessage;
pub use job_lock::{JobLock, LockError, LockTimings};
pub use key::RunnerKey;
pub use launch::{ActionDownload, ActionToResolve, LaunchError, download_archive, resolve_actions};
pub use message::{MessageError, TemplateToken, context_data};
pub use oauth::{TokenError, TokenSource};
pub use registration::{GitHubUrl, RegisterError, Registered, RunnerRequest, register, unregister};
/// The HTTP client crate of the public API ([`http_client`]).
pub use reqwest;
pub use results::{
    JobIds, LiveLog, ResultsClient, ResultsError, StepConclusion, StepState, StepUpdate,
};
pub use run_service::{CompleteJob, Conclusion, RunService, RunServiceError};
pub use runner_admin::{AdminAuth, AdminError, Jit, RunnerAdmin, RunnerInfo, jit_labels};

/// The HTTP client for GitHub's endpoints, naming itself as actions/runner does (a
/// rustls crypto provider must be installed first). `insecure` accepts any certificate.
pub fn http_client(insecure: bool) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(format!(
            "GitHubActionsRunner-linux-x64/{} hybrid-runner/{}",
            registration::DEFAULT_RUNNER_VERSION,
            env!("CARGO_PKG_VERSION")
        ))
        .connect_timeout(std::time::Duration::from_secs(15))
        .tls_danger_accept_invalid_certs(insecure)
        .build()
}

/// How many characters of an unexpected answer's body an error quotes.
const EXCERPT_CHARS: usize = 500;

/// The start of `text`, as errors quote an answer's body.
pub(crate) fn excerpt(text: &str) -> String {
    text.chars().take(EXCERPT_CHARS).collect()
}

/// A response's status and its body as text (empty when it cannot be read).
pub(crate) async fn status_and_text(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// One key for every test of the crate: a 2048-bit key takes a while to make.
#[cfg(test)]
pub(crate) fn test_key() -> RunnerKey {
    static KEY: std::sync::OnceLock<RunnerKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| RunnerKey::generate().expect("a key"))
        .clone()
}
