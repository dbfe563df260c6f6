//! The run service client against the fake: a job offered on the broker is acquired with
//! the runner's token (once: a second acquire is refused), renewed and completed with the
//! job's own token; a lost job's renewal says so; a completion answered 500 is an error
//! the caller may retry, and lands once when retried.

use std::collections::BTreeMap;
use std::time::Duration;

use harness::fake_github::FakeGitHub;
use hr_github::run_service::{StepResult, StepStatus};
use hr_github::{
    BrokerMessage, CompleteJob, Conclusion, RunService, RunServiceError, RunnerStatus,
};
use serde_json::json;

#[test]
fn a_job_is_acquired_renewed_and_completed_once() {
    let fake = FakeGitHub::start();
    fake.set_poll_hold(Duration::from_millis(200));
    let http = {
        harness::install_crypto_provider();
        hr_github::http_client(false).unwrap()
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let (registered, tokens, broker) = crate::registered_listener(&fake, "worker").await;
            let client_id = registered.credentials.client_id.clone();
            let session = broker.create_session("test").await.unwrap();
            let queued =
                fake.queue_job(&client_id, json!({"jobDisplayName": "build", "steps": []}));
            let Some(BrokerMessage::JobRequest(request)) = broker
                .get_message(&session, RunnerStatus::Online)
                .await
                .unwrap()
            else {
                panic!("a job request")
            };
            let run = RunService::new(http.clone());
            let message = run.acquire(&tokens, &request).await.unwrap();
            assert_eq!(message["jobDisplayName"], "build");
            assert_eq!(message["jobId"], queued.job_id.as_str());
            let endpoint = &message["resources"]["endpoints"][0];
            let base = endpoint["url"].as_str().unwrap();
            let job_token = endpoint["authorization"]["parameters"]["AccessToken"]
                .as_str()
                .unwrap();
            let err = run.acquire(&tokens, &request).await.unwrap_err();
            assert!(
                matches!(err, RunServiceError::AlreadyAcquired(_)),
                "{err:?}"
            );

            let until = run
                .renew(base, job_token, &queued.plan_id, &queued.job_id)
                .await
                .unwrap();
            assert!(until.ends_with('Z'), "{until}");
            // The runner's own token is not the job's.
            let runner_token = tokens.token().await.unwrap();
            let err = run
                .renew(base, &runner_token, &queued.plan_id, &queued.job_id)
                .await
                .unwrap_err();
            assert!(matches!(err, RunServiceError::JobNotFound(_)), "{err:?}");

            let end = CompleteJob {
                plan_id: queued.plan_id.clone(),
                job_id: queued.job_id.clone(),
                conclusion: Conclusion::Canceled,
                outputs: BTreeMap::from([("image".to_string(), ("sha256:1".to_string(), false))]),
                step_results: vec![StepResult {
                    external_id: "s1".into(),
                    number: 1,
                    name: "Run make".into(),
                    status: StepStatus::Completed,
                    conclusion: Some(Conclusion::Canceled),
                    started_at: None,
                    completed_at: None,
                    completed_log_url: None,
                    completed_log_lines: None,
                }],
                annotations: vec![],
                billing_owner_id: request.billing_owner_id.clone(),
            };
            fake.fail_completions(1);
            let err = run.complete(base, job_token, &end).await.unwrap_err();
            assert!(err.is_transient(), "{err:?}");
            run.complete(base, job_token, &end).await.unwrap();
            let job = fake.job(&queued.runner_request_id).unwrap();
            assert_eq!(job.completions.len(), 1);
            let body = job.completion.unwrap();
            assert_eq!(body["conclusion"], "canceled");
            assert_eq!(body["outputs"]["image"]["value"], "sha256:1");
            assert_eq!(body["billingOwnerId"], "fake-billing-owner");
            assert_eq!(job.renewals, 1);

            // A lost job: renewal says so, and the caller must stop.
            let lost = fake.queue_job(&client_id, json!({"steps": []}));
            fake.lose_job(&lost.runner_request_id);
            let err = run
                .renew(base, &lost.job_token, &lost.plan_id, &lost.job_id)
                .await
                .unwrap_err();
            assert!(matches!(err, RunServiceError::JobNotFound(_)), "{err:?}");
            assert!(!err.is_transient());
        });
}
