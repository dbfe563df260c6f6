//! `hybrid-runner register` as a user runs it, against a tiny Ping/Register handler on
//! loopback: the `.runner` file it writes (act_runner's keys, mode 0600), what it sends,
//! Ping retried while the server is unavailable, refusals, the lock, usage errors (exit 2)
//! and the interactive prompts on stdin.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use harness::loopback::LoopbackServer;
use hr_gitea::proto::ping::v1::PingResponse;
use hr_gitea::proto::runner::v1::{RegisterRequest, RegisterResponse, Runner};
use hr_gitea::registration::{Registration, RegistrationLock};
use prost::Message;
use tokio::io::AsyncWriteExt;

#[derive(Clone, Default)]
struct Server {
    /// Pings answered 503 before the first success.
    pings_failing: Arc<AtomicUsize>,
    calls: Arc<Mutex<Vec<String>>>,
    registered: Arc<Mutex<Vec<RegisterRequest>>>,
}

async fn handle(
    State(server): State<Server>,
    UrlPath((service, method)): UrlPath<(String, String)>,
    body: Bytes,
) -> Response {
    server.calls.lock().unwrap().push(method.clone());
    match (service.as_str(), method.as_str()) {
        ("ping.v1.PingService", "Ping") => {
            let failing = server.pings_failing.load(Ordering::SeqCst);
            if failing > 0 {
                server.pings_failing.store(failing - 1, Ordering::SeqCst);
                return (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response();
            }
            PingResponse {
                data: "Hello!".into(),
            }
            .encode_to_vec()
            .into_response()
        }
        ("runner.v1.RunnerService", "Register") => {
            let request = RegisterRequest::decode(body).unwrap();
            server.registered.lock().unwrap().push(request.clone());
            if request.token != "good-token" {
                // Old Gitea's plain error, as connect-go sends it.
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    r#"{"code":"unknown","message":"runner registration token not found"}"#,
                )
                    .into_response();
            }
            RegisterResponse {
                runner: Some(Runner {
                    id: 17,
                    uuid: "3f1c2d4e-0000-4000-8000-000000000017".into(),
                    token: "runner-secret-17".into(),
                    name: request.name,
                    version: request.version,
                    labels: request.labels,
                    ephemeral: request.ephemeral,
                    ..Default::default()
                }),
            }
            .encode_to_vec()
            .into_response()
        }
        _ => (StatusCode::NOT_FOUND, "").into_response(),
    }
}

/// Serves the registration service on a free loopback port (until the returned server
/// drops); the instance URL.
fn start(server: Server) -> (LoopbackServer, String) {
    let app = Router::new()
        .route("/api/actions/{service}/{method}", post(handle))
        .with_state(server);
    let http = LoopbackServer::start("register-cli-test", app);
    let instance = http.url();
    (http, instance)
}

/// A config file in `dir` whose runner file is `dir/.runner`.
fn config_in(dir: &Path) -> (PathBuf, PathBuf) {
    let runner_file = dir.join(".runner");
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!("runner:\n  file: {}\n", runner_file.display()),
    )
    .unwrap();
    (config, runner_file)
}

async fn register(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut command = harness::cli::tokio_command();
    command
        .arg("register")
        .args(args)
        .env_remove("GITEA_RUNNER_REGISTRATION_TOKEN")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("register finished")
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn registers_and_writes_an_act_runner_compatible_file() {
    let server = Server::default();
    let (_http, instance) = start(server.clone());
    let dir = tempfile::tempdir().unwrap();
    let (config, runner_file) = config_in(dir.path());
    let out = register(
        &[
            "-c",
            config.to_str().unwrap(),
            "--no-interactive",
            "--instance",
            &format!("{instance}/"),
            "--token",
            "good-token",
            "--name",
            "ci-1",
            "--labels",
            "linux:host,k8s:kubernetes://reg.local/ci:1",
        ],
        "",
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("registered successfully"));

    assert_eq!(*server.calls.lock().unwrap(), ["Ping", "Register"]);
    let sent = server.registered.lock().unwrap()[0].clone();
    assert_eq!(sent.name, "ci-1");
    assert_eq!(sent.token, "good-token");
    assert_eq!(sent.labels, ["linux", "k8s"]);
    assert_eq!(sent.version, env!("CARGO_PKG_VERSION"));
    assert!(!sent.ephemeral);

    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&runner_file).unwrap()).unwrap();
    assert_eq!(file["id"], 17);
    assert_eq!(file["uuid"], "3f1c2d4e-0000-4000-8000-000000000017");
    assert_eq!(file["name"], "ci-1");
    assert_eq!(file["token"], "runner-secret-17");
    assert_eq!(file["address"], instance.as_str());
    assert_eq!(
        file["labels"],
        serde_json::json!(["linux:host", "k8s:kubernetes://reg.local/ci:1"])
    );
    assert_eq!(file["ephemeral"], false);
    assert!(
        file["WARNING"]
            .as_str()
            .unwrap()
            .contains("automatically generated")
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&runner_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // The token reaches neither output.
    assert!(!text(&out.stdout).contains("runner-secret-17"));
    assert!(!text(&out.stderr).contains("runner-secret-17"));
}

#[tokio::test]
async fn token_from_the_environment_and_ephemeral() {
    let server = Server::default();
    let (_http, instance) = start(server.clone());
    let dir = tempfile::tempdir().unwrap();
    let (config, runner_file) = config_in(dir.path());
    let out = register(
        &[
            "-c",
            config.to_str().unwrap(),
            "--no-interactive",
            "--instance",
            &instance,
            "--ephemeral",
            "--json",
        ],
        "",
        &[("GITEA_RUNNER_REGISTRATION_TOKEN", "good-token")],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["id"], 17);
    assert_eq!(report["ephemeral"], true);
    assert!(report.get("token").is_none());
    let registration = Registration::load(&runner_file).unwrap();
    assert!(registration.ephemeral);
    // Default name (the host name) and default labels.
    assert!(!registration.name.is_empty());
    assert_eq!(
        registration.labels,
        ["ubuntu-latest:host", "self-hosted:host"]
    );
    assert!(server.registered.lock().unwrap()[0].ephemeral);
}

#[tokio::test]
async fn ping_is_retried_while_the_server_starts() {
    let server = Server::default();
    server.pings_failing.store(2, Ordering::SeqCst);
    let (_http, instance) = start(server.clone());
    let dir = tempfile::tempdir().unwrap();
    let (config, runner_file) = config_in(dir.path());
    let out = register(
        &[
            "-c",
            config.to_str().unwrap(),
            "--no-interactive",
            "--instance",
            &instance,
            "--token",
            "good-token",
        ],
        "",
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        *server.calls.lock().unwrap(),
        ["Ping", "Ping", "Ping", "Register"]
    );
    assert!(
        text(&out.stderr).contains("attempt 1/30"),
        "{}",
        text(&out.stderr)
    );
    assert!(runner_file.exists());
}

#[tokio::test]
async fn ping_gives_up_after_its_attempts() {
    let server = Server::default();
    server.pings_failing.store(100, Ordering::SeqCst);
    let (_http, instance) = start(server.clone());
    let dir = tempfile::tempdir().unwrap();
    let (config, runner_file) = config_in(dir.path());
    let out = register(
        &[
            "-c",
            config.to_str().unwrap(),
            "--no-interactive",
            "--instance",
            &instance,
            "--token",
            "good-token",
            "--ping-attempts",
            "2",
        ],
        "",
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("503"), "{}", text(&out.stderr));
    assert_eq!(*server.calls.lock().unwrap(), ["Ping", "Ping"]);
    assert!(!runner_file.exists());
}

#[tokio::test]
async fn a_refused_token_writes_nothing() {
    let server = Server::default();
    let (_http, instance) = start(server.clone());
    let dir = tempfile::tempdir().unwrap();
    let (config, runner_file) = config_in(dir.path());
    let out = register(
        &[
            "-c",
            config.to_str().unwrap(),
            "--no-interactive",
            "--instance",
            &instance,
            "--token",
            "stale",
        ],
        "",
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: the instance refused the registration"),
        "{stderr}"
    );
    assert!(stderr.contains("token not found"), "{stderr}");
    assert!(!runner_file.exists());
}

#[tokio::test]
async fn missing_values_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config_in(dir.path());
    let out = register(
        &[
            "-c",
            config.to_str().unwrap(),
            "--no-interactive",
            "--instance",
            "http://127.0.0.1:9",
        ],
        "",
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("GITEA_RUNNER_REGISTRATION_TOKEN"));
    for (labels, says) in [
        ("x:kubernetes:img", "the image must follow `//`"),
        (
            "ubuntu-latest:dokcer://node:20",
            "unsupported schema: dokcer",
        ),
        ("linux,linux:kubernetes", "both name \"linux\""),
    ] {
        let out = register(
            &[
                "-c",
                config.to_str().unwrap(),
                "--no-interactive",
                "--instance",
                "http://127.0.0.1:9",
                "--token",
                "t",
                "--labels",
                labels,
            ],
            "",
            &[],
        )
        .await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{labels}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(says),
            "{labels}: {}",
            text(&out.stderr)
        );
    }
}

#[tokio::test]
async fn a_bad_config_is_a_usage_error_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "runner:\n  capacity: 1\n  fetch_interval: soon\n").unwrap();
    let out = register(
        &["-c", config.to_str().unwrap(), "--no-interactive"],
        "",
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("config.yaml:3:"), "{stderr}");
    assert!(stderr.contains("not a duration"), "{stderr}");
}

#[tokio::test]
async fn a_held_lock_stops_a_second_registration() {
    let server = Server::default();
    let (_http, instance) = start(server.clone());
    let dir = tempfile::tempdir().unwrap();
    let (config, runner_file) = config_in(dir.path());
    let _held = RegistrationLock::acquire(&runner_file).unwrap();
    let out = register(
        &[
            "-c",
            config.to_str().unwrap(),
            "--no-interactive",
            "--instance",
            &instance,
            "--token",
            "good-token",
        ],
        "",
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("another runner process holds"),
        "{}",
        text(&out.stderr)
    );
    assert!(server.calls.lock().unwrap().is_empty());
    assert!(!runner_file.exists());
}

#[tokio::test]
async fn interactive_prompts_read_stdin() {
    let server = Server::default();
    let (_http, instance) = start(server.clone());
    let dir = tempfile::tempdir().unwrap();
    let (config, runner_file) = config_in(dir.path());
    let answers = format!("{instance}\ngood-token\nasked-name\nq:kubernetes\n");
    let out = register(&["-c", config.to_str().unwrap()], &answers, &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let registration = Registration::load(&runner_file).unwrap();
    assert_eq!(registration.name, "asked-name");
    assert_eq!(registration.labels, ["q:kubernetes"]);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Enter the Gitea instance URL"), "{stderr}");

    // A second interactive run asks before replacing, and keeps the file on "no".
    let before = std::fs::read_to_string(&runner_file).unwrap();
    let out = register(&["-c", config.to_str().unwrap()], "n\n", &[]).await;
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("replace it?"));
    assert_eq!(std::fs::read_to_string(&runner_file).unwrap(), before);
}

#[tokio::test]
async fn generate_config_output_is_a_loadable_config() {
    let out = harness::cli::tokio_command()
        .arg("generate-config")
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, &out.stdout).unwrap();
    let loaded = hr_gitea::config::load_with_env(Some(&path), &|_| None).unwrap();
    let mut defaults = hr_gitea::config::Config::default();
    // The generated file has a `kubernetes:` section.
    defaults.kubernetes.configured = true;
    assert_eq!(loaded.config, defaults);
}
