//! A fake GitHub on loopback, for the runner's V2 protocol. This first part serves the
//! OAuth token endpoint the runner's `.credentials` name: it takes the client-credentials
//! grant with a JWT bearer assertion, verifies the JWT's signature (RS256 or PS256) with
//! the public key registered for its client, and its `aud`, `iss` = `sub`, `nbf` and `exp`
//! (5 minutes of clock skew allowed, as the service's message about skew implies), and
//! hands out bearer tokens. The answers to a refused assertion follow RFC 6749 §5.2
//! (`invalid_client`, 401); GitHub's own texts are not public.

mod oauth;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::routing::post;

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

#[derive(Debug, Default)]
pub(crate) struct State {
    clients: BTreeMap<String, OAuthClient>,
    tokens: BTreeMap<String, String>,
    token_requests: Vec<TokenRequest>,
    next_token: u64,
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

    /// Every token request so far, in order.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        lock(&self.shared.state).token_requests.clone()
    }

    /// The client a bearer token was issued to.
    pub fn token_owner(&self, token: &str) -> Option<String> {
        lock(&self.shared.state).tokens.get(token).cloned()
    }
}
