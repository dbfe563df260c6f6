//! A fake GitHub on loopback, for the runner's V2 protocol. So far it serves registration
//! through runner-admin (`admin`), the broker (`broker`) and the
//! OAuth token endpoint the runner's `.credentials` name: it takes the client-credentials
//! grant with a JWT bearer assertion, verifies the JWT's signature (RS256 or PS256) with
//! the public key registered for its client, and its `aud`, `iss` = `sub`, `nbf` and `exp`
//! (5 minutes of clock skew allowed, as the service's message about skew implies), and
//! hands out bearer tokens. The answers to a refused assertion follow RFC 6749 §5.2
//! (`invalid_client`, 401); GitHub's own texts are not public.

mod admin;
mod broker;
mod oauth;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::routing::{delete, get, post};

use crate::loopback::{LoopbackListener, LoopbackServer};

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
    next_session: u64,
    /// OAuth client → messages waiting for its next poll (type, body).
    messages: BTreeMap<String, std::collections::VecDeque<(String, String)>>,
    next_message: u64,
    /// Every poll: the client and the status it reported.
    polls: Vec<(String, String)>,
    acknowledged: Vec<String>,
    poll_hold: std::time::Duration,
    minimum_runner_version: String,
    tokens: BTreeMap<String, String>,
    token_requests: Vec<TokenRequest>,
    next_token: u64,
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
            next_session: 0,
            messages: BTreeMap::new(),
            next_message: 0,
            polls: Vec::new(),
            acknowledged: Vec::new(),
            poll_hold: std::time::Duration::from_millis(300),
            minimum_runner_version: "2.329.0".to_string(),
            tokens: BTreeMap::new(),
            token_requests: Vec::new(),
            next_token: 0,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    addr: SocketAddr,
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
            .route("/broker/acknowledge", post(broker::acknowledge))
            .route(
                "/api/v3/repos/{owner}/{repo}/actions/runners/{id}",
                delete(admin::delete_runner),
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

    /// The runners registered so far.
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
