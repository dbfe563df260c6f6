//! The broker client against the fake broker: a registered runner opens a session, polls
//! (nothing, then a job request it acknowledges, a cancellation, a forced token refresh),
//! gets a new token after its old one was revoked, and is refused a second session, a
//! stale session id and a version below the minimum with the broker's error kinds.

use std::sync::Arc;
use std::time::Duration;

use harness::fake_github::FakeGitHub;
use hr_github::registration::DEFAULT_RUNNER_VERSION;
use hr_github::{BrokerClient, BrokerError, BrokerMessage, RunnerIdentity, RunnerStatus, Session};

#[test]
fn a_registered_runner_listens_on_the_broker() {
    let fake = FakeGitHub::start();
    fake.set_poll_hold(Duration::from_millis(200));
    harness::install_crypto_provider();
    let http = hr_github::http_client(false).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let (registered, tokens, broker) =
                crate::registered_listener(&fake, "listener").await;
            let client_id = registered.credentials.client_id.clone();
            let identity = RunnerIdentity {
                agent_id: registered.settings.agent_id,
                agent_name: registered.settings.agent_name.clone(),
                version: DEFAULT_RUNNER_VERSION.into(),
                disable_update: true,
            };
            let session = broker.create_session("host (PID: 1)").await.unwrap();
            assert_eq!(fake.session_of(&client_id), Some(session.session_id.clone()));

            // Nothing queued: the held poll ends empty.
            assert_eq!(broker.get_message(&session, RunnerStatus::Online).await.unwrap(), None);
            fake.queue_message(
                &client_id,
                "RunnerJobRequest",
                r#"{"id":"1","runner_request_id":"rr-1","should_acknowledge":true,"run_service_url":"http://run/","billing_owner_id":"b"}"#,
            );
            let Some(BrokerMessage::JobRequest(job)) =
                broker.get_message(&session, RunnerStatus::Online).await.unwrap()
            else {
                panic!("a job request")
            };
            broker
                .acknowledge(&session, &job.runner_request_id, RunnerStatus::Online)
                .await
                .unwrap();
            assert_eq!(fake.acknowledged(), ["rr-1"]);
            fake.queue_message(&client_id, "JobCancellation", r#"{"jobId":"job-1","timeout":"00:05:00"}"#);
            assert_eq!(
                broker.get_message(&session, RunnerStatus::Busy).await.unwrap(),
                Some(BrokerMessage::Cancel { job_id: "job-1".into() })
            );
            assert!(fake.polls().iter().any(|(c, status)| c == &client_id && status == "Busy"));

            // A revoked token: one 401, a new token, and the call goes through.
            let before = fake.token_requests().len();
            fake.revoke_access_tokens();
            assert_eq!(broker.get_message(&session, RunnerStatus::Online).await.unwrap(), None);
            assert_eq!(fake.token_requests().len(), before + 1);

            // A second listener as the same runner is refused while the session is open.
            let second = BrokerClient::new(
                http.clone(),
                registered.settings.server_url_v2.as_deref().unwrap(),
                Arc::clone(&tokens),
                identity.clone(),
            );
            let err = second.create_session("other").await.unwrap_err();
            assert!(matches!(err, BrokerError::SessionConflict(_)), "{err:?}");
            assert!(err.is_transient());
            // A stale session id.
            let stale = Session { session_id: "nope".into() };
            let err = broker.get_message(&stale, RunnerStatus::Online).await.unwrap_err();
            assert!(matches!(err, BrokerError::SessionInvalid(_)), "{err:?}");
            // Below the service's minimum version.
            fake.set_minimum_runner_version("9.0.0");
            let err = broker.get_message(&session, RunnerStatus::Online).await.unwrap_err();
            assert!(matches!(err, BrokerError::VersionTooOld(_)), "{err:?}");
            assert!(err.to_string().contains("minimum is v9.0.0"), "{err}");

            broker.delete_session().await.unwrap();
            assert_eq!(fake.session_of(&client_id), None);
            second.create_session("other").await.unwrap();
        });
}
