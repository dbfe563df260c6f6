//! GitHub's runner protocol against the fake GitHub on loopback (`harness::fake_github`).
//! One test binary; each file is its own module.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up its data should fail loudly

mod broker_session;
mod daemon_build;
mod daemon_faults;
mod daemon_jobs;
mod daemon_latency;
mod daemon_pods;
mod daemon_pool;
mod job_lock;
mod job_message;
mod launch_actions;
mod oauth_tokens;
mod register_cli;
mod registration;
mod results_logs;
mod run_service;
mod runner_admin;

use std::sync::Arc;

use harness::fake_github::FakeGitHub;
use hr_github::registration::DEFAULT_RUNNER_VERSION;
use hr_github::{
    BrokerClient, GitHubUrl, Registered, RunnerIdentity, RunnerRequest, TokenSource, register,
};

/// A runner registered at the fake's `octo/hello` (named `name`), its token source and a
/// broker client for it.
pub(crate) async fn registered_listener(
    fake: &FakeGitHub,
    name: &str,
) -> (Registered, Arc<TokenSource>, BrokerClient) {
    let repo = format!("{}/octo/hello", fake.url());
    fake.add_registration_token(&repo, "REGTOKEN");
    harness::install_crypto_provider();
    let http = hr_github::http_client(false).unwrap();
    let request = RunnerRequest {
        name: name.into(),
        labels: vec![],
        ephemeral: false,
        disable_update: true,
        runner_group: None,
        version: DEFAULT_RUNNER_VERSION.into(),
    };
    let github = GitHubUrl::parse(&repo).unwrap();
    let registered = register(&http, &github, "REGTOKEN", &request)
        .await
        .unwrap();
    let tokens = Arc::new(TokenSource::new(
        http.clone(),
        registered.credentials.clone(),
        registered.key.clone(),
    ));
    let broker = BrokerClient::new(
        http,
        registered.settings.server_url_v2.as_deref().unwrap(),
        Arc::clone(&tokens),
        RunnerIdentity {
            agent_id: registered.settings.agent_id,
            agent_name: name.into(),
            version: DEFAULT_RUNNER_VERSION.into(),
            disable_update: true,
        },
    );
    (registered, tokens, broker)
}

/// Waits until `done` holds (a tenth of a second between checks), or panics with `what`
/// and the daemon's output.
pub(crate) fn wait_for(
    what: &str,
    daemon: &harness::daemon_process::Daemon,
    timeout: std::time::Duration,
    mut done: impl FnMut() -> bool,
) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(
            start.elapsed() < timeout,
            "timed out waiting for {what}:\n{}",
            daemon.output()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Whether every job of `jobs` was completed on the fake.
pub(crate) fn all_completed(fake: &FakeGitHub, jobs: &[harness::fake_github::FakeJob]) -> bool {
    jobs.iter().all(|j| {
        fake.job(&j.runner_request_id)
            .is_some_and(|r| !r.completions.is_empty())
    })
}
