//! The Connect client against a tiny axum handler on loopback: the URL layout, the headers
//! of every call (content type, protocol version, user agent, gzip, runner credentials only
//! once registered and never on Register/Ping), gzip responses, Connect error bodies decoded
//! (Gitea's `unknown`-wrapped Unauthenticated included), and the FetchTask deadline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use harness::loopback::LoopbackServer;
use hr_gitea::proto::ping::v1::{PingRequest, PingResponse};
use hr_gitea::proto::runner::v1::{
    DeclareRequest, DeclareResponse, FetchTaskRequest, FetchTaskResponse, RegisterRequest,
    RegisterResponse, Runner, Task, UpdateLogRequest, UpdateLogResponse,
};
use hr_gitea::{ClientOptions, Code, Credentials, RpcError, RunnerClient};
use prost::Message;

/// One request as the handler saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

#[derive(Clone, Default)]
struct Server {
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn proto(message: &impl Message) -> Response {
    (
        [("content-type", "application/proto")],
        message.encode_to_vec(),
    )
        .into_response()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn connect_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        serde_json::json!({"code": code, "message": message}).to_string(),
    )
        .into_response()
}

async fn handle(
    State(server): State<Server>,
    Path((service, method)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    server.seen.lock().unwrap().push(Seen {
        path: format!("{service}/{method}"),
        headers: headers.clone(),
        body: body.to_vec(),
    });
    let token = headers
        .get("x-runner-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    match (service.as_str(), method.as_str()) {
        ("ping.v1.PingService", "Ping") => {
            let request = PingRequest::decode(body).unwrap();
            proto(&PingResponse {
                data: format!("Hello, {}!", request.data),
            })
        }
        ("runner.v1.RunnerService", "Register") => {
            let request = RegisterRequest::decode(body).unwrap();
            proto(&RegisterResponse {
                runner: Some(Runner {
                    id: 1,
                    uuid: "uuid-1".into(),
                    token: "runner-secret".into(),
                    name: request.name,
                    labels: request.labels,
                    ..Default::default()
                }),
            })
        }
        ("runner.v1.RunnerService", "Declare") => {
            let request = DeclareRequest::decode(body).unwrap();
            (
                [
                    ("content-type", "application/proto"),
                    ("x-gitea-actions-capabilities", "job-summary, other"),
                ],
                DeclareResponse {
                    runner: Some(Runner {
                        version: request.version,
                        ..Default::default()
                    }),
                }
                .encode_to_vec(),
            )
                .into_response()
        }
        ("runner.v1.RunnerService", "FetchTask") => match token.as_str() {
            // Connect's own code.
            "deleted" => connect_error(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "unregistered runner",
            ),
            // Gitea's interceptor error, flattened by connect-go.
            "gitea-deleted" => connect_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "unknown",
                "rpc error: code = Unauthenticated desc = unregistered runner",
            ),
            "proxy" => (StatusCode::BAD_GATEWAY, "<html>bad gateway</html>").into_response(),
            // 65 MiB of zeros in about 64 KiB: past the client's limit once unpacked.
            "bomb" => (
                [
                    ("content-type", "application/proto"),
                    ("content-encoding", "gzip"),
                ],
                gzip(&vec![0u8; 65 << 20]),
            )
                .into_response(),
            "slow" => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                proto(&FetchTaskResponse::default())
            }
            _ => {
                let request = FetchTaskRequest::decode(body).unwrap();
                let response = FetchTaskResponse {
                    task: Some(Task {
                        id: 55,
                        // Large enough that a real server would compress it.
                        workflow_payload: Some(vec![b'x'; 4096]),
                        ..Default::default()
                    }),
                    tasks_version: request.tasks_version + 1,
                };
                (
                    [
                        ("content-type", "application/proto"),
                        ("content-encoding", "gzip"),
                    ],
                    gzip(&response.encode_to_vec()),
                )
                    .into_response()
            }
        },
        ("runner.v1.RunnerService", "UpdateLog") => {
            let request = UpdateLogRequest::decode(body).unwrap();
            proto(&UpdateLogResponse {
                ack_index: request.index + request.rows.len() as i64,
            })
        }
        _ => connect_error(StatusCode::NOT_FOUND, "unimplemented", "no such procedure"),
    }
}

/// Serves `prefix/api/actions/{service}/{method}` on a free loopback port (until the
/// returned server drops).
fn start(prefix: &str) -> (LoopbackServer, String, Server) {
    hr_cluster::install_crypto_provider();
    let server = Server::default();
    let app = Router::new()
        .route(
            &format!("{prefix}/api/actions/{{service}}/{{method}}"),
            post(handle),
        )
        .with_state(server.clone());
    let http = LoopbackServer::start("gitea-client-test", app);
    let instance = format!("{}{prefix}", http.url());
    (http, instance, server)
}

fn client(instance: &str, token: Option<&str>) -> RunnerClient {
    let options = ClientOptions {
        fetch_timeout: Duration::from_millis(500),
        ..ClientOptions::default()
    };
    let client = RunnerClient::new(instance, options).unwrap();
    match token {
        Some(token) => client.with_credentials(Credentials {
            uuid: "uuid-1".into(),
            token: token.into(),
        }),
        None => client,
    }
}

fn header<'a>(seen: &'a Seen, name: &str) -> Option<&'a str> {
    seen.headers.get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn every_call_carries_the_connect_headers() {
    let (_http, instance, server) = start("");
    let c = client(&format!("{instance}/"), Some("secret"));
    let pong = c.ping("hybrid").await.unwrap();
    assert_eq!(pong.data, "Hello, hybrid!");
    c.register(&RegisterRequest {
        name: "r".into(),
        token: "reg".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    c.update_log(&UpdateLogRequest {
        task_id: 1,
        index: 3,
        ..Default::default()
    })
    .await
    .unwrap();
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(),
        [
            "ping.v1.PingService/Ping",
            "runner.v1.RunnerService/Register",
            "runner.v1.RunnerService/UpdateLog"
        ]
    );
    for s in &seen {
        assert_eq!(
            header(s, "content-type"),
            Some("application/proto"),
            "{}",
            s.path
        );
        assert_eq!(header(s, "connect-protocol-version"), Some("1"));
        assert_eq!(header(s, "accept-encoding"), Some("gzip"));
        let agent = header(s, "user-agent").unwrap();
        assert_eq!(
            agent,
            format!("hybrid-runner/{}", env!("CARGO_PKG_VERSION"))
        );
    }
    // Ping and Register prove nothing; every other call proves the runner's identity.
    for s in &seen[..2] {
        assert_eq!(header(s, "x-runner-uuid"), None, "{}", s.path);
        assert_eq!(header(s, "x-runner-token"), None, "{}", s.path);
    }
    assert_eq!(header(&seen[2], "x-runner-uuid"), Some("uuid-1"));
    assert_eq!(header(&seen[2], "x-runner-token"), Some("secret"));
    // The body is the binary message.
    let log = UpdateLogRequest::decode(seen[2].body.as_slice()).unwrap();
    assert_eq!((log.task_id, log.index), (1, 3));
}

#[tokio::test]
async fn unregistered_clients_send_no_credentials() {
    let (_http, instance, server) = start("");
    client(&instance, None)
        .update_log(&UpdateLogRequest::default())
        .await
        .unwrap();
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(header(&seen[0], "x-runner-uuid"), None);
}

#[tokio::test]
async fn gzip_responses_are_decoded() {
    let (_http, instance, _server) = start("");
    let response = client(&instance, Some("ok"))
        .fetch_task(
            &FetchTaskRequest { tasks_version: 41 },
            &hr_gitea::new_request_key(),
        )
        .await
        .unwrap();
    assert_eq!(response.tasks_version, 42);
    let task = response.task.unwrap();
    assert_eq!(task.id, 55);
    assert_eq!(task.workflow_payload.unwrap().len(), 4096);
}

#[tokio::test]
async fn an_instance_under_a_sub_path_is_reached() {
    let (_http, instance, server) = start("/gitea");
    assert!(instance.ends_with("/gitea"));
    client(&instance, None).ping("x").await.unwrap();
    assert_eq!(server.seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn declare_reads_the_server_capabilities() {
    let (_http, instance, _server) = start("");
    let declared = client(&instance, Some("ok"))
        .declare(&DeclareRequest {
            version: "9.9".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(declared.server_capabilities, ["job-summary", "other"]);
    assert_eq!(declared.response.runner.unwrap().version, "9.9");
}

#[tokio::test]
async fn connect_errors_are_typed() {
    let (_http, instance, _server) = start("");
    let fetch = |token: &'static str| {
        let c = client(&instance, Some(token));
        async move {
            c.fetch_task(&FetchTaskRequest::default(), &hr_gitea::new_request_key())
                .await
                .unwrap_err()
        }
    };

    let deleted = fetch("deleted").await;
    assert_eq!(deleted.code(), Some(Code::Unauthenticated));
    assert!(deleted.is_unauthenticated());
    assert!(!deleted.is_transient());
    assert!(
        deleted.to_string().contains("unregistered runner"),
        "{deleted}"
    );

    let gitea = fetch("gitea-deleted").await;
    assert_eq!(gitea.code(), Some(Code::Unknown));
    assert!(gitea.is_unauthenticated(), "{gitea}");

    let proxy = fetch("proxy").await;
    assert_eq!(proxy.code(), Some(Code::Unavailable));
    assert!(proxy.is_transient());
    assert!(!proxy.is_unauthenticated());
    match proxy {
        RpcError::Server {
            status, message, ..
        } => {
            assert_eq!(status, 502);
            assert!(message.contains("bad gateway"));
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn a_response_past_the_limit_is_refused() {
    let (_http, instance, _server) = start("");
    // Packing 65 MiB takes the debug-built handler a while: a longer deadline.
    let options = ClientOptions {
        fetch_timeout: Duration::from_secs(30),
        ..ClientOptions::default()
    };
    let err = RunnerClient::new(&instance, options)
        .unwrap()
        .with_credentials(Credentials {
            uuid: "uuid-1".into(),
            token: "bomb".into(),
        })
        .fetch_task(&FetchTaskRequest::default(), &hr_gitea::new_request_key())
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn an_unknown_procedure_is_unimplemented() {
    let (_http, instance, _server) = start("");
    // The server only routes POST under /api/actions: a wrong instance path is a 404 from
    // the router itself, with no Connect body.
    let wrong = client(&format!("{instance}/not-gitea"), None);
    let err = wrong.ping("x").await.unwrap_err();
    assert_eq!(err.code(), Some(Code::Unimplemented), "{err}");
}

#[tokio::test]
async fn fetch_task_has_its_own_deadline() {
    let (_http, instance, _server) = start("");
    let started = std::time::Instant::now();
    let err = client(&instance, Some("slow"))
        .fetch_task(&FetchTaskRequest::default(), &hr_gitea::new_request_key())
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::Timeout { .. }), "{err}");
    assert!(err.is_transient());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_transient_send_error() {
    hr_cluster::install_crypto_provider();
    // Bind then drop: nothing listens on the port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = client(&format!("http://127.0.0.1:{port}"), None)
        .ping("x")
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::Send { .. }), "{err}");
    assert!(err.is_transient());
}

#[test]
fn a_non_http_instance_is_refused() {
    let err = RunnerClient::new("gitea.example.com", ClientOptions::default()).unwrap_err();
    assert!(matches!(err, RpcError::Address { .. }), "{err}");
}
