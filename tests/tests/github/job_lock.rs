//! Holding a job on the fake run service (with short timings): the first renewal is retried
//! and must succeed, renewals go on until the job ends, a lost job cancels the steps, and
//! the completion is retried until it lands, once.

use std::collections::BTreeMap;
use std::time::Duration;

use harness::fake_github::{FakeGitHub, FakeJob};
use hr_github::{CompleteJob, Conclusion, JobLock, LockError, LockTimings, RunService};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn lock_for(fake: &FakeGitHub, job: &FakeJob, first_attempts: u32) -> JobLock {
    harness::install_crypto_provider();
    JobLock {
        run: RunService::new(hr_github::http_client(false).unwrap()),
        base: format!("{}/run/", fake.url()),
        job_token: job.job_token.clone(),
        plan_id: job.plan_id.clone(),
        job_id: job.job_id.clone(),
        timings: LockTimings {
            first_attempts,
            first_interval: Duration::from_millis(20),
            renew_every: Duration::from_millis(50),
            give_up_after: Duration::from_secs(5),
            complete_attempts: 4,
            complete_interval: Duration::from_millis(20),
            complete_max_interval: Duration::from_millis(40),
        },
    }
}

fn end(job: &FakeJob) -> CompleteJob {
    CompleteJob {
        plan_id: job.plan_id.clone(),
        job_id: job.job_id.clone(),
        conclusion: Conclusion::Succeeded,
        outputs: BTreeMap::new(),
        step_results: vec![],
        annotations: vec![],
        billing_owner_id: None,
    }
}

#[test]
fn a_job_is_held_renewed_lost_and_completed_once() {
    let fake = FakeGitHub::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // The first renewal survives two 500s; renewals go on while the job runs.
        let job = fake.queue_job("c", json!({}));
        let lock = lock_for(&fake, &job, 5);
        fake.fail_renewals(2);
        lock.first_renewal().await.unwrap();
        let done = CancellationToken::new();
        let lost = CancellationToken::new();
        let keeper = tokio::spawn({
            let lock = lock.clone();
            let (done, lost) = (done.clone(), lost.clone());
            async move { lock.keep(None, done, lost).await }
        });
        tokio::time::sleep(Duration::from_millis(400)).await;
        done.cancel();
        assert!(keeper.await.unwrap().is_none());
        assert!(!lost.is_cancelled());
        assert!(fake.job(&job.runner_request_id).unwrap().renewals >= 4);

        // Completion through two 500s lands once.
        fake.fail_completions(2);
        assert!(lock.complete(&end(&job)).await.unwrap());
        assert_eq!(
            fake.job(&job.runner_request_id).unwrap().completions.len(),
            1
        );

        // Too many failures before the first renewal: the job does not start.
        let job = fake.queue_job("c", json!({}));
        fake.fail_renewals(10);
        let err = lock_for(&fake, &job, 3).first_renewal().await.unwrap_err();
        assert!(
            matches!(err, LockError::FirstRenewal { attempts: 3, .. }),
            "{err:?}"
        );
        fake.fail_renewals(0);

        // A job lost mid-run cancels its steps.
        let job = fake.queue_job("c", json!({}));
        let lock = lock_for(&fake, &job, 3);
        lock.first_renewal().await.unwrap();
        let lost = CancellationToken::new();
        let keeper = tokio::spawn({
            let lock = lock.clone();
            let lost = lost.clone();
            async move { lock.keep(None, CancellationToken::new(), lost).await }
        });
        fake.lose_job(&job.runner_request_id);
        tokio::time::timeout(Duration::from_secs(5), lost.cancelled())
            .await
            .expect("the steps are told the job is lost");
        assert!(matches!(keeper.await.unwrap(), Some(LockError::Lost(_))));
    });
}
