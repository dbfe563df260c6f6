//! The Connect unary client of Gitea's runner protocol: one `POST` per call to
//! `{instance}/api/actions/{package.Service}/{Method}` with a binary protobuf body
//! (`application/proto`), gzip responses accepted, the runner's credentials in `x-runner-uuid`
//! / `x-runner-token` once registered, and a deadline per call (60 s, FetchTask its own).
//!
//! The client never retries: which calls are retried, and how, belongs to the caller (the
//! registration's Ping loop, the reporter's resend-from-ack). Errors say whether the
//! server no longer knows the runner ([`RpcError::is_unauthenticated`]) and whether trying
//! again can help ([`RpcError::is_transient`]).

use std::io::Read;
use std::time::Duration;

use prost::Message;
use reqwest::header::{HeaderMap, HeaderValue};

use super::error::{Code, ConnectErrorBody, RpcError};
use super::proto::ping::v1::{PingRequest, PingResponse};
use super::proto::runner::v1::{
    DeclareRequest, DeclareResponse, FetchTaskRequest, FetchTaskResponse, RegisterRequest,
    RegisterResponse, UpdateLogRequest, UpdateLogResponse, UpdateTaskRequest, UpdateTaskResponse,
};

/// This runner's version, sent in `User-Agent`, `Register` and `Declare`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The deadline of one call (act_runner's `RequestTimeout`).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The default deadline of one FetchTask call (act_runner's `runner.fetch_timeout`).
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest response body accepted, after gzip: a task's workflow, context and secrets
/// are far smaller; this only stops a broken or hostile server from filling memory.
pub const MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// The header newer Gitea answers `Declare` with: a comma list of server capabilities.
pub const CAPABILITIES_HEADER: &str = "x-gitea-actions-capabilities";

const RUNNER_SERVICE: &str = "runner.v1.RunnerService";
const PING_SERVICE: &str = "ping.v1.PingService";

/// The identity a registered runner proves on every call but Register and Ping.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub uuid: String,
    pub token: String,
}

impl std::fmt::Debug for Credentials {
    /// The token is a secret: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("uuid", &self.uuid)
            .field("token", &"[redacted]")
            .finish()
    }
}

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Skip TLS certificate verification (`runner.insecure`).
    pub insecure: bool,
    /// The deadline of every call but FetchTask.
    pub call_timeout: Duration,
    /// The deadline of FetchTask; capped at `call_timeout`.
    pub fetch_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure: false,
            call_timeout: CALL_TIMEOUT,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
        }
    }
}

/// What `Declare` returned: the runner as the server stores it, and the server's
/// capabilities from [`CAPABILITIES_HEADER`] (empty on servers that send none).
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    pub response: DeclareResponse,
    pub server_capabilities: Vec<String>,
}

/// A client of one Gitea or Forgejo instance. Cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct RunnerClient {
    http: reqwest::Client,
    /// `{instance without trailing /}/api/actions`.
    base: String,
    credentials: Option<Credentials>,
    options: ClientOptions,
}

impl RunnerClient {
    /// The HTTP client (its TLS settings are the runner's) for calls beside the runner
    /// protocol, e.g. job summaries.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A client of `instance` (e.g. `https://gitea.example.com`), without credentials yet.
    pub fn new(instance: &str, options: ClientOptions) -> Result<RunnerClient, RpcError> {
        let instance = instance.trim_end_matches('/');
        if !(instance.starts_with("http://") || instance.starts_with("https://")) {
            return Err(RpcError::Address {
                instance: instance.to_string(),
            });
        }
        hr_cluster::install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(format!("hybrid-runner/{VERSION}"))
            .connect_timeout(Duration::from_secs(15))
            .tls_danger_accept_invalid_certs(options.insecure)
            .build()
            .map_err(|source| RpcError::Client { source })?;
        Ok(RunnerClient {
            http,
            base: format!("{instance}/api/actions"),
            credentials: None,
            options,
        })
    }

    /// The same client, proving `credentials` on every call but Register and Ping.
    pub fn with_credentials(mut self, credentials: Credentials) -> RunnerClient {
        self.credentials = Some(credentials);
        self
    }

    /// The URL calls go to, `{instance}/api/actions`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `ping.v1.PingService/Ping`: Gitea answers `Hello, <data>!`. No credentials needed.
    pub async fn ping(&self, data: &str) -> Result<PingResponse, RpcError> {
        let request = PingRequest {
            data: data.to_string(),
        };
        let (response, _) = self
            .call(
                PING_SERVICE,
                "Ping",
                &request,
                self.options.call_timeout,
                false,
            )
            .await?;
        Ok(response)
    }

    /// `Register`: trades a registration token for the runner's uuid and token.
    pub async fn register(&self, request: &RegisterRequest) -> Result<RegisterResponse, RpcError> {
        let (response, _) = self
            .call(
                RUNNER_SERVICE,
                "Register",
                request,
                self.options.call_timeout,
                false,
            )
            .await?;
        Ok(response)
    }

    /// `Declare`: version, label names and capabilities, sent before fetching tasks.
    pub async fn declare(&self, request: &DeclareRequest) -> Result<Declared, RpcError> {
        let (response, headers) = self
            .call(
                RUNNER_SERVICE,
                "Declare",
                request,
                self.options.call_timeout,
                true,
            )
            .await?;
        let server_capabilities = headers
            .get(CAPABILITIES_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Declared {
            response,
            server_capabilities,
        })
    }

    /// `FetchTask`, under the fetch deadline (capped at the call deadline).
    ///
    /// `request_key` goes out as `x-runner-request-key`: the caller keeps the same key for
    /// the calls that retry one whose answer never came, and takes a new one after an
    /// answer ([`new_request_key`]). Forgejo hands a task assigned under a key out again
    /// to a call with the same key, so a lost answer does not strand the task; Gitea
    /// ignores the header.
    pub async fn fetch_task(
        &self,
        request: &FetchTaskRequest,
        request_key: &str,
    ) -> Result<FetchTaskResponse, RpcError> {
        let timeout = self.options.fetch_timeout.min(self.options.call_timeout);
        let (response, _) = self
            .call_with(
                RUNNER_SERVICE,
                "FetchTask",
                request,
                timeout,
                true,
                &[("x-runner-request-key", request_key)],
            )
            .await?;
        Ok(response)
    }

    /// `UpdateTask`: state, steps and unsent outputs; the answer may cancel the task.
    pub async fn update_task(
        &self,
        request: &UpdateTaskRequest,
    ) -> Result<UpdateTaskResponse, RpcError> {
        let (response, _) = self
            .call(
                RUNNER_SERVICE,
                "UpdateTask",
                request,
                self.options.call_timeout,
                true,
            )
            .await?;
        Ok(response)
    }

    /// `UpdateLog`: rows from `index`; the answer's `ack_index` says what was stored.
    pub async fn update_log(
        &self,
        request: &UpdateLogRequest,
    ) -> Result<UpdateLogResponse, RpcError> {
        let (response, _) = self
            .call(
                RUNNER_SERVICE,
                "UpdateLog",
                request,
                self.options.call_timeout,
                true,
            )
            .await?;
        Ok(response)
    }

    /// One Connect unary call: the decoded response and the response headers.
    async fn call<Req: Message, Resp: Message + Default>(
        &self,
        service: &str,
        method: &'static str,
        request: &Req,
        timeout: Duration,
        authenticated: bool,
    ) -> Result<(Resp, HeaderMap), RpcError> {
        self.call_with(service, method, request, timeout, authenticated, &[])
            .await
    }

    /// [`Self::call`] with extra request headers.
    async fn call_with<Req: Message, Resp: Message + Default>(
        &self,
        service: &str,
        method: &'static str,
        request: &Req,
        timeout: Duration,
        authenticated: bool,
        extra_headers: &[(&str, &str)],
    ) -> Result<(Resp, HeaderMap), RpcError> {
        let url = format!("{}/{service}/{method}", self.base);
        let mut builder = self
            .http
            .post(&url)
            .timeout(timeout)
            .header("content-type", "application/proto")
            .header("connect-protocol-version", "1")
            .header("accept-encoding", "gzip")
            .body(request.encode_to_vec());
        for (name, value) in extra_headers {
            builder = builder.header(*name, *value);
        }
        if authenticated && let Some(credentials) = &self.credentials {
            let token = HeaderValue::from_str(&credentials.token)
                .map(|mut v| {
                    v.set_sensitive(true);
                    v
                })
                .map_err(|_| RpcError::Credentials { method })?;
            builder = builder
                .header("x-runner-uuid", credentials.uuid.as_str())
                .header("x-runner-token", token);
        }
        let response = builder
            .send()
            .await
            .map_err(|source| send_error(method, timeout, source))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_body(method, timeout, response).await?;
        let body = decompress(method, &headers, &body)?;
        if !status.is_success() {
            return Err(server_error(method, status.as_u16(), &body));
        }
        let decoded =
            Resp::decode(body.as_slice()).map_err(|source| RpcError::Decode { method, source })?;
        Ok((decoded, headers))
    }
}

/// A fresh `x-runner-request-key` for [`RunnerClient::fetch_task`] (a random UUID, as
/// forgejo-runner sends).
pub fn new_request_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn send_error(method: &'static str, timeout: Duration, source: reqwest::Error) -> RpcError {
    if source.is_timeout() {
        RpcError::Timeout { method, timeout }
    } else {
        RpcError::Send { method, source }
    }
}

/// The raw body, refused past [`MAX_RESPONSE_BYTES`] without reading the rest.
async fn read_body(
    method: &'static str,
    timeout: Duration,
    mut response: reqwest::Response,
) -> Result<Vec<u8>, RpcError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|source| send_error(method, timeout, source))?
    {
        if (body.len() + chunk.len()) as u64 > MAX_RESPONSE_BYTES {
            return Err(RpcError::TooLarge {
                method,
                limit: MAX_RESPONSE_BYTES,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The body as sent, or gunzipped when `Content-Encoding: gzip`, at most
/// [`MAX_RESPONSE_BYTES`] either way.
fn decompress(method: &'static str, headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, RpcError> {
    let encoding = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let too_large = || RpcError::TooLarge {
        method,
        limit: MAX_RESPONSE_BYTES,
    };
    match encoding.as_str() {
        "identity" | "" => {
            if body.len() as u64 > MAX_RESPONSE_BYTES {
                return Err(too_large());
            }
            Ok(body.to_vec())
        }
        "gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body)
                .take(MAX_RESPONSE_BYTES + 1)
                .read_to_end(&mut out)
                .map_err(|source| RpcError::Gzip { method, source })?;
            if out.len() as u64 > MAX_RESPONSE_BYTES {
                return Err(too_large());
            }
            Ok(out)
        }
        other => Err(RpcError::Encoding {
            method,
            encoding: other.to_string(),
        }),
    }
}

/// A non-200 answer: the Connect JSON error body when there is one, else the code the
/// Connect protocol assigns to the HTTP status.
fn server_error(method: &'static str, status: u16, body: &[u8]) -> RpcError {
    let parsed = serde_json::from_slice::<ConnectErrorBody>(body).ok();
    let (code, message) = match parsed {
        Some(ConnectErrorBody { code, message }) => (
            code.as_deref()
                .and_then(Code::from_name)
                .unwrap_or_else(|| Code::from_http_status(status)),
            message.unwrap_or_default(),
        ),
        None => (
            Code::from_http_status(status),
            String::from_utf8_lossy(&body[..body.len().min(512)])
                .trim()
                .to_string(),
        ),
    };
    RpcError::Server {
        method,
        status,
        code,
        message,
    }
}
