//! `hybrid-runner register --no-interactive` against the fake Gitea (Gitea's server rules),
//! then the product's Connect client speaking as the registered runner with the identity
//! from the `.runner` file it wrote: Declare, FetchTask by label, UpdateLog acks,
//! UpdateTask, and Unauthenticated once the runner is deleted, in both Gitea's
//! (`unknown`-wrapped) and Forgejo's (Connect code) error styles.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

use harness::fake_gitea::{AuthErrorStyle, FakeGitea, FakeGiteaOptions, Method, TaskSpec, pb};
use hr_gitea::registration::Registration;
use hr_gitea::{ClientOptions, RunnerClient};

fn register(dir: &Path, instance: &str, token: &str, extra: &[&str]) -> (Output, PathBuf) {
    let runner_file = dir.join(".runner");
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!("runner:\n  file: {}\n", runner_file.display()),
    )
    .unwrap();
    let out = harness::cli::command()
        .arg("register")
        .args(["-c", config.to_str().unwrap(), "--no-interactive"])
        .args(["--instance", instance, "--token", token])
        .args(extra)
        .env_remove("GITEA_RUNNER_REGISTRATION_TOKEN")
        .output()
        .unwrap();
    (out, runner_file)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn registers_against_gitea_rules_and_the_identity_works() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let (out, runner_file) = register(
        dir.path(),
        &fake.url(),
        FakeGitea::REGISTRATION_TOKEN,
        &[
            "--name",
            "hr-1",
            "--labels",
            "ubuntu-latest:host,k8s:kubernetes",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let registration = Registration::load(&runner_file).unwrap();
    let runner = fake
        .runner(&registration.uuid)
        .expect("the server knows the uuid");
    assert_eq!(registration.id, runner.id);
    assert_eq!(registration.name, "hr-1");
    assert_eq!(runner.name, "hr-1");
    assert_eq!(runner.labels, ["ubuntu-latest", "k8s"]);
    assert_eq!(runner.version, env!("CARGO_PKG_VERSION"));
    assert!(!runner.ephemeral);
    assert_eq!(registration.address, fake.url().trim_end_matches('/'));
    assert_eq!(
        registration.labels,
        ["ubuntu-latest:host", "k8s:kubernetes"]
    );

    // Every call was binary Connect with the runner's user agent; Ping came first.
    let requests = fake.requests();
    assert_eq!(
        requests.iter().map(|r| r.method).collect::<Vec<_>>(),
        [Some(Method::Ping), Some(Method::Register)]
    );
    for r in &requests {
        assert_eq!(r.content_type.as_deref(), Some("application/proto"));
        assert_eq!(r.connect_protocol_version.as_deref(), Some("1"));
        assert_eq!(
            r.user_agent.as_deref(),
            Some(format!("hybrid-runner/{}", env!("CARGO_PKG_VERSION")).as_str())
        );
        assert!(!r.runner_token_sent);
        assert_eq!(r.status, 200);
    }

    // The stored identity passes the server's token check.
    harness::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = RunnerClient::new(&registration.address, ClientOptions::default())
        .unwrap()
        .with_credentials(registration.credentials());
    runtime.block_on(async {
        let declared = client
            .declare(&pb::DeclareRequest {
                version: "test".into(),
                labels: vec!["ubuntu-latest".into()],
                capabilities: vec![],
            })
            .await
            .unwrap();
        assert_eq!(declared.response.runner.unwrap().uuid, registration.uuid);

        let id = fake.enqueue_task(TaskSpec::new(
            &["ubuntu-latest"],
            "jobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n",
        ));
        let fetched = client
            .fetch_task(
                &pb::FetchTaskRequest { tasks_version: 0 },
                &hr_gitea::new_request_key(),
            )
            .await
            .unwrap();
        let task = fetched.task.expect("the task for ubuntu-latest");
        assert_eq!(task.id, id);
        assert!(fetched.tasks_version > 0);

        let rows = vec![pb::LogRow {
            time: None,
            content: "hello".into(),
        }];
        let ack = client
            .update_log(&pb::UpdateLogRequest {
                task_id: id,
                index: 0,
                rows,
                no_more: true,
            })
            .await
            .unwrap();
        assert_eq!(ack.ack_index, 1);
        let answer = client
            .update_task(&pb::UpdateTaskRequest {
                state: Some(pb::TaskState {
                    id,
                    result: pb::Result::Success as i32,
                    ..Default::default()
                }),
                outputs: [("out".to_string(), "v".to_string())].into(),
            })
            .await
            .unwrap();
        assert_eq!(answer.sent_outputs, ["out"]);
        assert_eq!(fake.task(id).unwrap().log_lines(), ["hello"]);

        // Deleted on the server: Gitea's flattened error still reads as Unauthenticated.
        assert!(fake.delete_runner(&registration.uuid));
        let err = client
            .fetch_task(
                &pb::FetchTaskRequest::default(),
                &hr_gitea::new_request_key(),
            )
            .await
            .unwrap_err();
        assert!(err.is_unauthenticated(), "{err}");
        assert!(!err.is_transient());
    });
}

#[test]
fn forgejo_style_errors_read_as_unauthenticated_too() {
    let fake = FakeGitea::start(FakeGiteaOptions {
        auth_errors: AuthErrorStyle::Connect,
        ..FakeGiteaOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let (out, runner_file) = register(dir.path(), &fake.url(), FakeGitea::REGISTRATION_TOKEN, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let registration = Registration::load(&runner_file).unwrap();
    assert!(fake.delete_runner(&registration.uuid));
    harness::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = RunnerClient::new(&registration.address, ClientOptions::default())
        .unwrap()
        .with_credentials(registration.credentials());
    let err = runtime
        .block_on(client.declare(&pb::DeclareRequest::default()))
        .unwrap_err();
    assert!(err.is_unauthenticated(), "{err}");
}

#[test]
fn an_unknown_registration_token_is_refused_and_nothing_is_written() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let (out, runner_file) = register(dir.path(), &fake.url(), "not-a-token", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(text.contains("refused the registration"), "{text}");
    assert!(text.contains("registration token not found"), "{text}");
    assert!(!runner_file.exists());
    assert!(fake.runners().is_empty());
}

#[test]
fn an_ephemeral_registration_is_stored_on_both_sides() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let (out, runner_file) = register(
        dir.path(),
        &fake.url(),
        FakeGitea::REGISTRATION_TOKEN,
        &["--ephemeral"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let registration = Registration::load(&runner_file).unwrap();
    assert!(registration.ephemeral);
    assert!(fake.runner(&registration.uuid).unwrap().ephemeral);
    // No warning about an unconfirmed ephemeral registration: the server echoed it.
    assert!(
        !stderr(&out).contains("did not confirm"),
        "{}",
        stderr(&out)
    );
}
