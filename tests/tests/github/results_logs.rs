//! The results client against the fake results service and blob store: step states with
//! growing change orders; a short step log as one block blob, a long one as an append blob
//! in blocks, sealed; the job log; metadata with the line count. A token that is not the
//! job's is refused.

use std::time::Duration;

use harness::fake_github::{FakeGitHub, OAuthClient};
use hr_github::{
    JobIds, ResultsClient, ResultsError, RunnerKey, StepConclusion, StepState, StepUpdate,
};
use serde_json::json;

#[test]
fn step_states_and_logs_reach_the_results_service() {
    let fake = FakeGitHub::start();
    fake.set_poll_hold(Duration::from_millis(100));
    let key = RunnerKey::generate().unwrap();
    fake.add_client(
        "c1",
        OAuthClient {
            modulus: key.modulus(),
            exponent: key.exponent(),
        },
    );
    let job = fake.queue_job("c1", json!({"steps": []}));
    let base = job.message["variables"]["system.github.results_endpoint"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    harness::install_crypto_provider();
    let http = hr_github::http_client(false).unwrap();
    let ids = JobIds {
        workflow_run_backend_id: job.plan_id.clone(),
        workflow_job_run_backend_id: job.job_id.clone(),
    };
    let results = ResultsClient::new(http.clone(), &base, &job.job_token, ids.clone());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let step = |state, conclusion| StepUpdate {
                external_id: "step-1".into(),
                number: 1,
                name: "Run make".into(),
                state,
                started_at: Some("2026-12-06T12:00:00.000Z".into()),
                completed_at: None,
                conclusion,
            };
            results
                .update_steps(&[step(StepState::InProgress, StepConclusion::Unknown)])
                .await
                .unwrap();
            results
                .update_steps(&[step(StepState::Completed, StepConclusion::Cancelled)])
                .await
                .unwrap();
            let updates = fake.step_updates(&job.job_id);
            assert_eq!(updates.len(), 2);
            assert_eq!(updates[0]["steps"][0]["status"], 3);
            assert_eq!(updates[1]["steps"][0]["status"], 6);
            assert_eq!(updates[1]["steps"][0]["conclusion"], 4);
            assert!(updates[1]["change_order"].as_u64() > updates[0]["change_order"].as_u64());

            // One block: a block blob.
            results
                .upload_step_log("step-1", b"hello\nworld\n", 2, 1024)
                .await
                .unwrap();
            let blob = fake.log(&job.job_id, Some("step-1")).unwrap();
            assert_eq!(
                (blob.kind.as_str(), blob.data.as_slice()),
                ("BlockBlob", &b"hello\nworld\n"[..])
            );
            assert_eq!(blob.line_count, Some(2));
            // Many blocks: an append blob, sealed with the last one.
            let long: Vec<u8> = (0..10_000)
                .flat_map(|i| format!("line {i}\n").into_bytes())
                .collect();
            results.upload_job_log(&long, 10_000, 4096).await.unwrap();
            let blob = fake.log(&job.job_id, None).unwrap();
            assert_eq!(blob.kind, "AppendBlob");
            assert!(blob.sealed);
            assert_eq!(blob.data, long);
            assert_eq!(blob.line_count, Some(10_000));

            // Someone else's token.
            let other = ResultsClient::new(http.clone(), &base, "not-the-job-token", ids.clone());
            let err = other.update_steps(&[]).await.unwrap_err();
            assert!(
                matches!(err, ResultsError::Failed { status: 401, .. }),
                "{err:?}"
            );
        });
}
