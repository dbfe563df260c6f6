//! The GitHub listener when things go wrong, as a real process against the fake: a JIT
//! runner (flag and environment) that writes nothing, a job cancelled mid-step, a broker
//! whose polls fail, a `completejob` that fails once, and a runner SIGKILLed mid-job whose
//! job is reported failed when it starts again.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use harness::daemon_process::{DaemonOptions, RunnerHome};
use harness::fake_github::{FakeGitHub, FakeJob};
use nix::sys::signal::Signal;
use serde_json::json;

use crate::daemon_jobs::{message, script};
use crate::wait_for;

/// Whether the step of `id` has written `text` to its log blob yet.
fn step_log_has(fake: &FakeGitHub, job: &FakeJob, id: &str, text: &str) -> bool {
    fake.log(&job.job_id, Some(id))
        .is_some_and(|b| String::from_utf8_lossy(&b.data).contains(text))
}

fn one_completion(fake: &FakeGitHub, job: &FakeJob) -> serde_json::Value {
    let record = fake.job(&job.runner_request_id).unwrap();
    assert_eq!(record.completions.len(), 1, "{:#?}", record.completions);
    record.completions[0].clone()
}

const SLOW: &str = "22222222-0000-4000-8000-000000000001";
const ALWAYS: &str = "22222222-0000-4000-8000-000000000002";

fn slow_job() -> serde_json::Value {
    let mut always = script(ALWAYS, "cleanup", "echo cleanup ran");
    always["condition"] = json!("always()");
    message(vec![
        script(SLOW, "slow", "echo started; sleep 60; echo never"),
        always,
    ])
}

/// The JIT config of a runner registered at the fake, as generate-jitconfig encodes it.
fn jit_config(fake: &FakeGitHub, name: &str) -> (String, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (registered, _, _) = runtime.block_on(crate::registered_listener(fake, name));
    let files = json!({
        ".runner": STANDARD.encode(registered.settings.to_file()),
        ".credentials": STANDARD.encode(registered.credentials.to_file()),
        ".credentials_rsaparams": STANDARD.encode(hr_github::files::with_bom(&registered.key.to_rsa_parameters())),
    });
    let client = fake
        .runners()
        .iter()
        .find(|r| r.name == name)
        .unwrap()
        .client_id
        .clone();
    (STANDARD.encode(files.to_string()), client)
}

#[test]
fn a_jit_runner_runs_one_job_from_the_flag_or_the_environment_and_writes_nothing() {
    let fake = FakeGitHub::start();
    for (i, via_env) in [false, true].into_iter().enumerate() {
        let (encoded, client) = jit_config(&fake, &format!("jit-{i}"));
        let home = RunnerHome::unregistered("");
        let job = fake.queue_job(
            &client,
            message(vec![script(
                "33333333-0000-4000-8000-000000000001",
                "hi",
                "echo jit says hi",
            )]),
        );
        let options = if via_env {
            DaemonOptions::default().env("ACTIONS_RUNNER_INPUT_JITCONFIG", &encoded)
        } else {
            DaemonOptions::default().arg("--jitconfig").arg(&encoded)
        };
        let out = home.command(&options).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let done = one_completion(&fake, &job);
        assert_eq!(done["conclusion"], "succeeded", "{done:#}");
        assert!(step_log_has(
            &fake,
            &job,
            "33333333-0000-4000-8000-000000000001",
            "jit says hi"
        ));
        // Nothing of the runner was written: no runner files, no job record.
        for name in [
            ".runner",
            ".credentials",
            ".credentials_rsaparams",
            ".runner-job",
        ] {
            assert!(!home.dir.path().join(name).exists(), "{name}");
        }
        assert!(
            !stderr.contains(&encoded[..40]),
            "the config leaked: {stderr}"
        );
    }
}

#[test]
fn a_cancelled_job_ends_canceled_in_seconds_and_its_always_steps_run() {
    let fake = FakeGitHub::start();
    let home = RunnerHome::register_github(&fake, "gh-cancel", "", "", &[]);
    let job = fake.queue_job(&home.uuid, slow_job());
    let mut daemon = home.start(&DaemonOptions::default().arg("--once"));
    wait_for("the slow step", &daemon, Duration::from_secs(30), || {
        step_log_has(&fake, &job, SLOW, "started")
    });
    let cancelled = Instant::now();
    fake.queue_message(
        &home.uuid,
        "JobCancellation",
        &json!({"jobId": job.job_id, "timeout": "00:05:00"}).to_string(),
    );
    let status = daemon
        .wait_exit(Duration::from_secs(30))
        .expect("the daemon ends");
    let took = cancelled.elapsed();
    assert!(status.success(), "{}", daemon.output());
    let done = one_completion(&fake, &job);
    assert_eq!(done["conclusion"], "canceled", "{done:#}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(
        step_log_has(&fake, &job, ALWAYS, "cleanup ran"),
        "{}",
        daemon.output()
    );
    assert!(!step_log_has(&fake, &job, SLOW, "never"));
}

#[test]
fn failed_polls_are_retried_and_a_failed_completejob_still_lands_once() {
    let fake = FakeGitHub::start();
    let home = RunnerHome::register_github(&fake, "gh-faults", "", "", &[]);
    fake.fail_polls(3);
    fake.fail_completions(1);
    let job = fake.queue_job(
        &home.uuid,
        message(vec![script(
            "44444444-0000-4000-8000-000000000001",
            "ok",
            "echo fine",
        )]),
    );
    let mut daemon = home.start(&DaemonOptions::default().arg("--once"));
    let status = daemon
        .wait_exit(Duration::from_secs(60))
        .expect("the daemon ends");
    assert!(status.success(), "{}", daemon.output());
    let done = one_completion(&fake, &job);
    assert_eq!(done["conclusion"], "succeeded", "{done:#}");
    let output = daemon.output();
    assert!(output.contains("polling the broker failed"), "{output}");
    assert!(output.contains("completejob failed; retrying"), "{output}");
}

#[test]
fn a_runner_killed_mid_job_reports_the_job_failed_when_it_starts_again() {
    let fake = FakeGitHub::start();
    fake.set_session_expiry(Duration::from_secs(1));
    let home = RunnerHome::register_github(&fake, "gh-killed", "", "", &[]);
    let job = fake.queue_job(&home.uuid, slow_job());
    let mut daemon = home.start(&DaemonOptions::default());
    wait_for("the slow step", &daemon, Duration::from_secs(30), || {
        step_log_has(&fake, &job, SLOW, "started")
    });
    assert!(home.dir.path().join(".runner-job").exists());
    daemon.signal(Signal::SIGKILL);
    daemon.wait_exit(Duration::from_secs(10)).expect("killed");
    assert!(
        fake.job(&job.runner_request_id)
            .unwrap()
            .completions
            .is_empty()
    );
    let mut again = home.start(&DaemonOptions::default());
    wait_for("the job's failure", &again, Duration::from_secs(30), || {
        !fake
            .job(&job.runner_request_id)
            .unwrap()
            .completions
            .is_empty()
    });
    let done = one_completion(&fake, &job);
    assert_eq!(done["conclusion"], "failed", "{done:#}");
    assert!(
        done["annotations"][0]["message"]
            .as_str()
            .unwrap()
            .contains("runner stopped while it ran this job"),
        "{done:#}"
    );
    assert!(!home.dir.path().join(".runner-job").exists());
    // It listens again: a session is open after the old one expired.
    wait_for("a new session", &again, Duration::from_secs(30), || {
        fake.session_of(&home.uuid).is_some()
    });
    again.signal(Signal::SIGTERM);
    let status = again.wait_exit(Duration::from_secs(20)).expect("stops");
    assert!(status.success(), "{}", again.output());
}

#[test]
fn a_job_whose_renewal_is_answered_404_is_stopped() {
    let fake = FakeGitHub::start();
    // A short lock: the runner renews at half the time left, every 2 s here.
    fake.set_lock_duration(Duration::from_secs(4));
    let home = RunnerHome::register_github(&fake, "gh-lost", "", "", &[]);
    let job = fake.queue_job(&home.uuid, slow_job());
    let mut daemon = home.start(&DaemonOptions::default().arg("--once"));
    wait_for("the slow step", &daemon, Duration::from_secs(30), || {
        step_log_has(&fake, &job, SLOW, "started")
    });
    let renewals = fake.job(&job.runner_request_id).unwrap().renewals;
    fake.lose_job(&job.runner_request_id);
    let lost = Instant::now();
    let status = daemon
        .wait_exit(Duration::from_secs(30))
        .expect("the daemon ends");
    assert!(status.success(), "{}", daemon.output());
    let output = daemon.output();
    assert!(output.contains("the job's lock was lost"), "{output}");
    assert!(
        lost.elapsed() < Duration::from_secs(15),
        "{:?}",
        lost.elapsed()
    );
    assert!(!step_log_has(&fake, &job, SLOW, "never"));
    assert!(renewals >= 1, "renewed before the loss: {renewals}");
}

#[test]
fn a_second_daemon_on_the_same_runner_file_is_refused_at_once() {
    let fake = FakeGitHub::start();
    let home = RunnerHome::register_github(&fake, "gh-twice", "", "", &[]);
    let mut first = home.start(&DaemonOptions::default());
    wait_for("the first session", &first, Duration::from_secs(30), || {
        fake.session_of(&home.uuid).is_some()
    });
    let mut second = home.start(&DaemonOptions::default());
    let status = second
        .wait_exit(Duration::from_secs(10))
        .expect("the second daemon ends at once");
    assert_eq!(status.code(), Some(2), "{}", second.output());
    assert!(second.output().contains("lock"), "{}", second.output());
    first.signal(Signal::SIGTERM);
    assert!(first.wait_exit(Duration::from_secs(20)).unwrap().success());
}

#[test]
fn token_refreshes_and_broker_migrations_are_followed() {
    let fake = FakeGitHub::start();
    let home = RunnerHome::register_github(&fake, "gh-moves", "", "", &[]);
    fake.queue_message(&home.uuid, "ForceTokenRefresh", "{}");
    // The broker moves to itself under the same base: the runner keeps polling there.
    fake.queue_message(
        &home.uuid,
        "BrokerMigration",
        &json!({"brokerBaseUrl": format!("{}/broker/", fake.url())}).to_string(),
    );
    let before = fake.token_requests().len();
    let job = fake.queue_job(
        &home.uuid,
        message(vec![script(
            "aaaaaaaa-0000-4000-8000-000000000001",
            "ok",
            "echo moved",
        )]),
    );
    let mut daemon = home.start(&DaemonOptions::default().arg("--once"));
    let status = daemon.wait_exit(Duration::from_secs(60)).expect("ends");
    assert!(status.success(), "{}", daemon.output());
    assert_eq!(one_completion(&fake, &job)["conclusion"], "succeeded");
    // One token at start, one more after the forced refresh.
    assert!(
        fake.token_requests().len() >= before + 2,
        "{:?}\n{}",
        fake.token_requests(),
        daemon.output()
    );
    assert!(
        daemon.output().contains("the broker moved"),
        "{}",
        daemon.output()
    );
}

#[test]
fn a_runner_version_the_broker_refuses_ends_the_daemon_with_the_remedy() {
    let fake = FakeGitHub::start();
    let home = RunnerHome::register_github(&fake, "gh-old", "", "", &[]);
    fake.set_minimum_runner_version("9.0.0");
    let mut daemon = home.start(&DaemonOptions::default());
    let status = daemon.wait_exit(Duration::from_secs(30)).expect("ends");
    let output = daemon.output();
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(
        output.contains("refuses this runner's version")
            && output.contains("9.0.0")
            && output.contains("HYBRID_RUNNER_GITHUB_RUNNER_VERSION"),
        "{output}"
    );
    // Its session is closed on the way out.
    assert!(fake.session_of(&home.uuid).is_none(), "{output}");
}
