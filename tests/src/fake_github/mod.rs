//! A fake GitHub on loopback, for the runner's V2 protocol. So far it serves registration
//! through runner-admin (`admin`), the REST API of runner pool mode (`runners`: JIT configs,
//! listing and deleting runners) with PATs and GitHub App installation tokens (`apps`), the broker (`broker`), the run service (`run`), the results
//! service with its blob store (`results`), the launch service with action archives
//! (`launch`) and the
//! OAuth token endpoint the runner's `.credentials` name: it takes the client-credentials
//! grant with a JWT bearer assertion, verifies the JWT's signature (RS256 or PS256) with
//! the public key registered for its client, and its `aud`, `iss` = `sub`, `nbf` and `exp`
//! (5 minutes of clock skew allowed, as the service's message about skew implies), and
//! hands out bearer tokens. The answers to a refused assertion follow RFC 6749 §5.2
//! (`invalid_client`, 401); GitHub's own texts are not public.

mod admin;
mod apps;
mod broker;
mod feed;
mod launch;
mod oauth;
mod results;
mod run;
mod runners;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::routing::{delete, get, post};

use crate::loopback::{LoopbackListener, LoopbackServer};

pub use apps::{InstallationTokenRequest, private_key_pem};
pub use results::Blob;

/// A registered OAuth client: its public key (big-endian modulus and exponent).
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub modulus: Vec<u8>,
    pub exponent: Vec<u8>,
}

/// One token request as the fake saw it.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub client_id: Option<String>,
    pub algorithm: Option<String>,
    /// The token handed out, or why none was.
    pub outcome: Result<String, String>,
}

/// A runner registered through runner-admin.
#[derive(Debug, Clone)]
pub struct RegisteredRunner {
    pub id: u64,
    pub name: String,
    pub labels: Vec<String>,
    pub group_id: u64,
    pub ephemeral: bool,
    pub version: String,
    pub client_id: String,
    /// The repository or organisation URL it serves, e.g. `{fake}/octo/hello`.
    pub scope: String,
}

/// A job queued for a runner, as the run service keeps it.
#[derive(Debug, Clone)]
pub struct FakeJob {
    pub client_id: String,
    pub runner_request_id: String,
    pub plan_id: String,
    pub job_id: String,
    /// The job's own token (its `SystemVssConnection` AccessToken).
    pub job_token: String,
    /// The job message `acquirejob` answers.
    pub message: serde_json::Value,
    pub acquired: bool,
    /// `renewjob` answers 404 from now on.
    pub lost: bool,
    pub renewals: u32,
    /// The `completejob` body that landed.
    pub completion: Option<serde_json::Value>,
    /// Every `completejob` body that landed (more than one is a runner bug).
    pub completions: Vec<serde_json::Value>,
    /// When a poll handed the job request to the runner.
    pub offered_at: Option<std::time::SystemTime>,
}

#[derive(Debug)]
pub(crate) struct State {
    clients: BTreeMap<String, OAuthClient>,
    /// Registration token → the URL it registers for.
    registration_tokens: BTreeMap<String, String>,
    runner_groups: Vec<serde_json::Value>,
    runners: Vec<RegisteredRunner>,
    next_runner: u64,
    use_v2_flow: bool,
    /// OAuth client → its open broker session.
    sessions: BTreeMap<String, String>,
    /// OAuth client → when its session last polled (or was opened).
    session_seen: BTreeMap<String, std::time::Instant>,
    /// A session nobody polled for this long is dropped when another is asked for.
    session_expiry: std::time::Duration,
    /// How many polls to answer 500 before answering again.
    fail_polls: u32,
    /// How far ahead `renewjob` locks a job (`lockedUntil`).
    lock_duration: std::time::Duration,
    /// Live console messages: the job id and the batch.
    feed: Vec<(String, serde_json::Value)>,
    /// Job requests for whichever runner polls `Online` first.
    open_jobs: std::collections::VecDeque<String>,
    /// Jobs acquired and not completed, now and at most.
    running: usize,
    peak_running: usize,
    next_session: u64,
    /// OAuth client → messages waiting for its next poll (type, body).
    messages: BTreeMap<String, std::collections::VecDeque<(String, String)>>,
    next_message: u64,
    /// Every poll: the client and the status it reported.
    polls: Vec<(String, String)>,
    acknowledged: Vec<String>,
    poll_hold: std::time::Duration,
    minimum_runner_version: String,
    jobs: Vec<FakeJob>,
    next_job: u64,
    /// How many `completejob` calls to answer 500 before accepting.
    fail_completions: u32,
    /// How many `renewjob` calls to answer 500 before accepting.
    fail_renewals: u32,
    /// Every `WorkflowStepsUpdate`: the job id and the body.
    step_updates: Vec<(String, serde_json::Value)>,
    /// Log blobs; the index is the id in their URL.
    blobs: Vec<Blob>,
    /// `owner/repo@ref` → its sha and tar.gz.
    actions: BTreeMap<String, (String, Vec<u8>)>,
    tokens: BTreeMap<String, String>,
    token_requests: Vec<TokenRequest>,
    next_token: u64,
    /// REST API tokens: PATs and installation tokens.
    api_tokens: BTreeMap<String, runners::ApiToken>,
    /// GitHub App id → its public key.
    apps: BTreeMap<u64, OAuthClient>,
    /// Installation id → its App and the URL it is installed on.
    installations: BTreeMap<u64, (u64, String)>,
    installation_token_lifetime: std::time::Duration,
    installation_token_requests: Vec<InstallationTokenRequest>,
    /// The most runners one page of the list holds (GitHub: 100).
    max_per_page: usize,
}

impl Default for State {
    fn default() -> Self {
        State {
            clients: BTreeMap::new(),
            registration_tokens: BTreeMap::new(),
            runner_groups: vec![
                serde_json::json!({"id": 1, "name": "Default", "default": true, "is_hosted": false}),
                serde_json::json!({"id": 2, "name": "GPU", "default": false, "is_hosted": false}),
                serde_json::json!({"id": 3, "name": "GitHub Actions", "default": false, "is_hosted": true}),
            ],
            runners: Vec::new(),
            next_runner: 0,
            use_v2_flow: true,
            sessions: BTreeMap::new(),
            session_seen: BTreeMap::new(),
            session_expiry: std::time::Duration::from_secs(300),
            fail_polls: 0,
            lock_duration: std::time::Duration::from_secs(600),
            open_jobs: std::collections::VecDeque::new(),
            feed: Vec::new(),
            running: 0,
            peak_running: 0,
            next_session: 0,
            messages: BTreeMap::new(),
            next_message: 0,
            polls: Vec::new(),
            acknowledged: Vec::new(),
            poll_hold: std::time::Duration::from_millis(300),
            minimum_runner_version: "2.329.0".to_string(),
            jobs: Vec::new(),
            next_job: 0,
            fail_completions: 0,
            fail_renewals: 0,
            step_updates: Vec::new(),
            blobs: Vec::new(),
            actions: BTreeMap::new(),
            tokens: BTreeMap::new(),
            token_requests: Vec::new(),
            next_token: 0,
            api_tokens: BTreeMap::new(),
            apps: BTreeMap::new(),
            installations: BTreeMap::new(),
            installation_token_lifetime: apps::DEFAULT_INSTALLATION_TOKEN_LIFETIME,
            installation_token_requests: Vec::new(),
            max_per_page: 100,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    addr: SocketAddr,
}

/// The credential of an `Authorization: <scheme> <credential>` header.
pub(crate) fn credential(headers: &axum::http::HeaderMap, scheme: &str) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (given, credential) = value.split_once(' ')?;
    (given == scheme).then(|| credential.to_string())
}

/// The token of an `Authorization: Bearer …` header.
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Option<String> {
    credential(headers, "Bearer")
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The running fake; dropping it stops the server.
#[derive(Debug)]
pub struct FakeGitHub {
    shared: Arc<Shared>,
    _server: LoopbackServer,
}

impl FakeGitHub {
    pub fn start() -> FakeGitHub {
        let listener: LoopbackListener = LoopbackServer::bind("fake-github");
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            addr: listener.addr(),
        });
        let router = Router::new()
            .route("/oauth/token", post(oauth::token))
            .route(
                "/api/v3/actions/runner-registration",
                post(admin::runner_registration),
            )
            .route(
                "/api/v3/repos/{owner}/{repo}/actions/runner-groups",
                get(admin::runner_groups),
            )
            .route(
                "/api/v3/orgs/{org}/actions/runner-groups",
                get(admin::runner_groups),
            )
            .route("/api/v3/actions/runners/register", post(admin::register))
            .route(
                "/broker/session",
                post(broker::create_session).delete(broker::delete_session),
            )
            .route("/broker/message", get(broker::message))
            .route("/feed", get(feed::socket))
            .route("/broker/acknowledge", post(broker::acknowledge))
            .route("/run/acquirejob", post(run::acquire))
            .route("/run/renewjob", post(run::renew))
            .route("/run/completejob", post(run::complete))
            .route(
                "/results/twirp/github.actions.results.api.v1.WorkflowStepUpdateService/{method}",
                post(results::twirp),
            )
            .route(
                "/results/twirp/results.services.receiver.Receiver/{method}",
                post(results::twirp),
            )
            .route("/blob/{id}", axum::routing::put(results::blob))
            .route(
                "/actions/build/{plan}/jobs/{job}/runnerresolve/actions",
                post(launch::resolve),
            )
            .route("/tarballs/{owner}/{repo}/{sha}", get(launch::tarball))
            .route(
                "/api/v3/repos/{owner}/{repo}/actions/runners/{id}",
                delete(admin::delete_runner),
            )
            .route(
                "/api/v3/repos/{owner}/{repo}/actions/runners",
                get(runners::list_runners),
            )
            .route(
                "/api/v3/orgs/{org}/actions/runners",
                get(runners::list_runners),
            )
            .route(
                "/api/v3/repos/{owner}/{repo}/actions/runners/generate-jitconfig",
                post(runners::generate_jitconfig),
            )
            .route(
                "/api/v3/orgs/{org}/actions/runners/generate-jitconfig",
                post(runners::generate_jitconfig),
            )
            .route(
                "/api/v3/app/installations/{id}/access_tokens",
                post(apps::access_tokens),
            )
            .route(
                "/api/v3/orgs/{org}/actions/runners/{id}",
                delete(admin::delete_runner),
            )
            .with_state(Arc::clone(&shared));
        FakeGitHub {
            _server: listener.serve(router),
            shared,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// The token endpoint, and the audience assertions must name.
    pub fn authorization_url(&self) -> String {
        format!("{}/oauth/token", self.url())
    }

    /// Registers `client_id` with its public key.
    pub fn add_client(&self, client_id: &str, client: OAuthClient) {
        lock(&self.shared.state)
            .clients
            .insert(client_id.to_string(), client);
    }

    /// A registration token for `url` (e.g. `{fake}/octo/hello`), as
    /// `POST …/actions/runners/registration-token` would make one.
    pub fn add_registration_token(&self, url: &str, token: &str) {
        lock(&self.shared.state)
            .registration_tokens
            .insert(token.to_string(), url.to_string());
    }

    /// Answer `use_v2_flow: false` (an instance with only the V1 protocol) from now on.
    pub fn offer_v1_only(&self) {
        lock(&self.shared.state).use_v2_flow = false;
    }

    /// Queues a broker message for the runner whose OAuth client is `client_id`.
    pub fn queue_message(&self, client_id: &str, message_type: &str, body: &str) {
        lock(&self.shared.state)
            .messages
            .entry(client_id.to_string())
            .or_default()
            .push_back((message_type.to_string(), body.to_string()));
    }

    /// How long a poll with nothing to deliver is held.
    pub fn set_poll_hold(&self, hold: std::time::Duration) {
        lock(&self.shared.state).poll_hold = hold;
    }

    /// Polls reporting a lower runner version are refused (`RunnerVersionTooOld`).
    pub fn set_minimum_runner_version(&self, version: &str) {
        lock(&self.shared.state).minimum_runner_version = version.to_string();
    }

    /// Forgets every access token issued so far (as after their expiry).
    pub fn revoke_access_tokens(&self) {
        lock(&self.shared.state).tokens.clear();
    }

    /// The open broker session of `client_id`.
    pub fn session_of(&self, client_id: &str) -> Option<String> {
        lock(&self.shared.state).sessions.get(client_id).cloned()
    }

    /// Every poll so far: the client and the status it reported.
    pub fn polls(&self) -> Vec<(String, String)> {
        lock(&self.shared.state).polls.clone()
    }

    /// The runner request ids acknowledged so far.
    pub fn acknowledged(&self) -> Vec<String> {
        lock(&self.shared.state).acknowledged.clone()
    }

    /// Queues a job for the runner of `client_id`: the run service keeps `message` (its
    /// plan, job id and `SystemVssConnection` endpoint are filled in) and the broker
    /// offers it with a `RunnerJobRequest` that asks to be acknowledged.
    pub fn queue_job(&self, client_id: &str, message: serde_json::Value) -> FakeJob {
        let job = self.new_job(client_id, message);
        self.queue_message(client_id, "RunnerJobRequest", &self.job_request(&job));
        job
    }

    /// Queues a job for whichever runner polls `Online` first (a pool's runners share
    /// the repository's queue); see [`Self::queue_job`].
    pub fn queue_job_for_any(&self, message: serde_json::Value) -> FakeJob {
        let job = self.new_job("", message);
        let body = self.job_request(&job);
        lock(&self.shared.state).open_jobs.push_back(body);
        job
    }

    /// The live console batches of job `job_id` (`{count, value, stepId, startLine}`), in
    /// the order they came.
    pub fn feed(&self, job_id: &str) -> Vec<serde_json::Value> {
        lock(&self.shared.state)
            .feed
            .iter()
            .filter(|(j, _)| j == job_id)
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// The most jobs acquired and not completed at one time.
    pub fn peak_running(&self) -> usize {
        lock(&self.shared.state).peak_running
    }

    /// The `RunnerJobRequest` body of `job`.
    fn job_request(&self, job: &FakeJob) -> String {
        serde_json::json!({
            "id": job.runner_request_id,
            "runner_request_id": job.runner_request_id,
            "should_acknowledge": true,
            "run_service_url": format!("{}/run/", self.url()),
            "billing_owner_id": "fake-billing-owner",
        })
        .to_string()
    }

    /// A job of the run service for `client_id` (empty: not yet offered to anyone).
    fn new_job(&self, client_id: &str, mut message: serde_json::Value) -> FakeJob {
        {
            let mut state = lock(&self.shared.state);
            state.next_job += 1;
            let n = state.next_job;
            let job = FakeJob {
                client_id: client_id.to_string(),
                runner_request_id: format!("rr-{n}"),
                plan_id: format!("00000000-0000-4000-a000-{n:012}"),
                job_id: format!("00000000-0000-4000-b000-{n:012}"),
                job_token: format!("fake-github-job-token-{n}"),
                message: serde_json::Value::Null,
                acquired: false,
                offered_at: None,
                lost: false,
                renewals: 0,
                completion: None,
                completions: Vec::new(),
            };
            message["plan"]["planId"] = serde_json::json!(job.plan_id);
            message["jobId"] = serde_json::json!(job.job_id);
            message["requestId"] = serde_json::json!(n);
            message["variables"]["system.github.launch_endpoint"] =
                serde_json::json!({"value": format!("{}/launch/base/", self.url())});
            message["variables"]["system.github.results_endpoint"] =
                serde_json::json!({"value": format!("{}/results/", self.url())});
            message["resources"]["endpoints"] = serde_json::json!([{
                "name": "SystemVssConnection",
                "url": format!("{}/run/", self.url()),
                "authorization": {"scheme": "OAuth", "parameters": {"AccessToken": job.job_token}},
                "data": {"FeedStreamUrl": format!("{}/feed", self.url())},
            }]);
            let job = FakeJob { message, ..job };
            state.jobs.push(job.clone());
            job
        }
    }

    /// The run service's record of job `runner_request_id`.
    pub fn job(&self, runner_request_id: &str) -> Option<FakeJob> {
        lock(&self.shared.state)
            .jobs
            .iter()
            .find(|j| j.runner_request_id == runner_request_id)
            .cloned()
    }

    /// `renewjob` of this job answers 404 from now on (the job was lost).
    pub fn lose_job(&self, runner_request_id: &str) {
        for job in lock(&self.shared.state).jobs.iter_mut() {
            if job.runner_request_id == runner_request_id {
                job.lost = true;
            }
        }
    }

    /// The next `n` `renewjob` calls are answered 500.
    pub fn fail_renewals(&self, n: u32) {
        lock(&self.shared.state).fail_renewals = n;
    }

    /// `renewjob` locks a job this far ahead from now on (10 minutes unless set).
    pub fn set_lock_duration(&self, duration: std::time::Duration) {
        lock(&self.shared.state).lock_duration = duration;
    }

    /// The next `n` polls are answered 500.
    pub fn fail_polls(&self, n: u32) {
        lock(&self.shared.state).fail_polls = n;
    }

    /// A session that has not polled for `expiry` gives way to a new one (a runner
    /// killed without closing its session); 5 minutes unless set.
    pub fn set_session_expiry(&self, expiry: std::time::Duration) {
        lock(&self.shared.state).session_expiry = expiry;
    }

    /// The next `n` `completejob` calls are answered 500.
    pub fn fail_completions(&self, n: u32) {
        lock(&self.shared.state).fail_completions = n;
    }

    /// Every `WorkflowStepsUpdate` body of job `job_id`, in order.
    pub fn step_updates(&self, job_id: &str) -> Vec<serde_json::Value> {
        lock(&self.shared.state)
            .step_updates
            .iter()
            .filter(|(j, _)| j == job_id)
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// The log blob of job `job_id`'s step `step` (`None`: the job's own log).
    pub fn log(&self, job_id: &str, step: Option<&str>) -> Option<Blob> {
        lock(&self.shared.state)
            .blobs
            .iter()
            .find(|b| b.job_id == job_id && b.step.as_deref() == step)
            .cloned()
    }

    /// Serves `owner/repo@git_ref` (resolved to `sha`) as the tar.gz `archive`.
    pub fn add_action(&self, name_at_ref: &str, sha: &str, archive: Vec<u8>) {
        lock(&self.shared.state)
            .actions
            .insert(name_at_ref.to_string(), (sha.to_string(), archive));
    }

    /// The runners registered so far (through runner-admin or as JIT runners), less those
    /// deleted.
    pub fn runners(&self) -> Vec<RegisteredRunner> {
        lock(&self.shared.state).runners.clone()
    }

    /// Every token request so far, in order.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        lock(&self.shared.state).token_requests.clone()
    }

    /// The client a bearer token was issued to.
    pub fn token_owner(&self, token: &str) -> Option<String> {
        lock(&self.shared.state).tokens.get(token).cloned()
    }
}
