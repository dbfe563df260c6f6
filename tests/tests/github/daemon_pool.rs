//! `hybrid-runner daemon --github URL --pat-file FILE --capacity 2`, a real process against
//! the fake GitHub: four jobs queued for the repository run on the pool's ephemeral JIT
//! runners, never more than two at once; after SIGTERM no runner of the pool is left. The
//! same with a GitHub App's installation token.

use std::time::{Duration, Instant};

use harness::daemon_process::{Daemon, DaemonOptions, RunnerHome};
use harness::fake_github::{FakeGitHub, private_key_pem};
use nix::sys::signal::Signal;

use crate::daemon_jobs::{message, script};

const PAT: &str = "ghp_fakepoolpersonalaccesstoken00000001";

/// The daemon of `home` in pool mode with `auth` flags.
fn pool(home: &RunnerHome, fake: &FakeGitHub, auth: &[&str], capacity: usize) -> Daemon {
    let url = format!("{}/octo/hello", fake.url());
    let capacity = capacity.to_string();
    let args = [
        &["--github", url.as_str()][..],
        auth,
        &["--capacity", capacity.as_str()],
    ]
    .concat()
    .into_iter()
    .chain(["--labels", "pool:host", "--name-prefix", "hr-pool"]);
    let options = args.fold(DaemonOptions::default(), |o, a| o.arg(a));
    home.start(&options)
}

/// Runs `count` jobs of `work` on a pool of `capacity`, stops it, checks every job ran
/// once and no runner is left; the daemon's CPU and peak RSS before the stop, and how
/// long the jobs took.
fn run_pool(
    fake: &FakeGitHub,
    auth: &[&str],
    home: &RunnerHome,
    (count, capacity, work): (usize, usize, &str),
) -> (Option<harness::daemon_process::ProcessUsage>, Duration) {
    let jobs: Vec<_> = (0..count)
        .map(|n| {
            fake.queue_job_for_any(message(vec![script(
                &format!("88888888-0000-4000-8000-{n:012}"),
                "work",
                work,
            )]))
        })
        .collect();
    let mut daemon = pool(home, fake, auth, capacity);
    let start = Instant::now();
    crate::wait_for("every job", &daemon, Duration::from_secs(90), || {
        crate::all_completed(fake, &jobs)
    });
    let took = start.elapsed();
    // The pool keeps its idle runners listening.
    crate::wait_for("the idle runners", &daemon, Duration::from_secs(30), || {
        fake.runners().len() >= capacity
    });
    for runner in fake.runners() {
        assert!(runner.ephemeral, "{runner:?}");
        assert!(runner.labels.iter().any(|l| l == "pool"), "{runner:?}");
        assert!(runner.name.starts_with("hr-pool-"), "{runner:?}");
    }
    let usage = daemon.usage();
    daemon.signal(Signal::SIGTERM);
    let status = daemon
        .wait_exit(Duration::from_secs(30))
        .expect("the pool stops");
    let output = daemon.output();
    assert!(status.success(), "{output}");
    for job in &jobs {
        let record = fake.job(&job.runner_request_id).unwrap();
        assert_eq!(record.completions.len(), 1, "{output}");
        assert_eq!(record.completions[0]["conclusion"], "succeeded", "{output}");
    }
    assert!(
        fake.peak_running() <= capacity,
        "{} at once",
        fake.peak_running()
    );
    assert!(fake.runners().is_empty(), "left: {:?}", fake.runners());
    assert!(!output.contains(PAT), "the token leaked");
    (usage, took)
}

const FOUR_OF_TWO: (usize, usize, &str) = (4, 2, "echo pool job; sleep 1");

#[test]
fn a_pool_of_two_runs_four_jobs_two_at_a_time_and_leaves_no_runner() {
    let fake = FakeGitHub::start();
    fake.add_pat(PAT, &format!("{}/octo/hello", fake.url()));
    let home = RunnerHome::unregistered("");
    let pat = home.dir.path().join("pat");
    std::fs::write(&pat, format!("{PAT}\n")).unwrap();
    run_pool(
        &fake,
        &["--pat-file", pat.to_str().unwrap()],
        &home,
        FOUR_OF_TWO,
    );
    assert_eq!(fake.peak_running(), 2, "the pool ran two at once");
}

/// The measure: a pool of 20 and 100 queued one-step jobs. Printed, not asserted:
/// how long they took, the daemon's peak RSS and CPU.
#[test]
fn pool_of_20_runs_100_one_step_jobs() {
    let fake = FakeGitHub::start();
    fake.add_pat(PAT, &format!("{}/octo/hello", fake.url()));
    let home = RunnerHome::unregistered("");
    let pat = home.dir.path().join("pat");
    std::fs::write(&pat, PAT).unwrap();
    let (usage, took) = run_pool(
        &fake,
        &["--pat-file", pat.to_str().unwrap()],
        &home,
        (100, 20, "echo one step"),
    );
    println!(
        "github pool: 100 one-step jobs on 20 JIT runners done in {:.1} s; at most {} at once",
        took.as_secs_f64(),
        fake.peak_running()
    );
    if let Some(usage) = usage {
        println!(
            "  daemon peak RSS {:.1} MiB (VmHWM); CPU {:.2} s (own), {:.2} s (steps)",
            usage.peak_rss_kib as f64 / 1024.0,
            usage.cpu.as_secs_f64(),
            usage.children_cpu.as_secs_f64()
        );
    }
}

#[test]
fn a_pool_authenticates_as_a_github_app() {
    let fake = FakeGitHub::start();
    let key = hr_github::RunnerKey::generate().unwrap();
    fake.add_app(4242, &key);
    fake.add_installation(77, 4242, &format!("{}/octo/hello", fake.url()));
    let home = RunnerHome::unregistered("");
    let pem = home.dir.path().join("app.pem");
    std::fs::write(&pem, private_key_pem(&key)).unwrap();
    run_pool(
        &fake,
        &[
            "--app-id",
            "4242",
            "--app-key-file",
            pem.to_str().unwrap(),
            "--installation-id",
            "77",
        ],
        &home,
        FOUR_OF_TWO,
    );
}
