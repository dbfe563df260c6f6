#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Job summaries and the cache server of the real `hybrid-runner daemon` against the fake
//! Gitea: with the `job-summary` capability announced on Declare, each main step's
//! `GITHUB_STEP_SUMMARY` reaches the server's summary API (checked as Gitea checks it: the
//! runtime token's task, its run and job ids, the step index, the type); without it
//! nothing is sent. The daemon's cache server runs by default, a task's
//! `ACTIONS_CACHE_URL` carries a masked token, and with `@actions/cache` from npm a later
//! task restores what an earlier one saved, also after the daemon restarted.

use harness::daemon_checks::{describe_task, job_payload, row_count, wait_finished};
use harness::daemon_process::{DaemonOptions, RunnerHome};
use harness::fake_gitea::{FakeGitea, FakeGiteaOptions, pb};

const JOB: &str = r##"    steps:
      - run: echo "# Build report" >> "$GITHUB_STEP_SUMMARY"
      - run: echo "no summary here"
      - run: |
          echo "| tests | 12 passed |" >> "$GITHUB_STEP_SUMMARY"
          echo "cache url ${ACTIONS_CACHE_URL:-none}"
"##;

fn run_with(
    capabilities: Option<&str>,
) -> (
    pb::Result,
    std::collections::BTreeMap<i64, String>,
    String,
    usize,
) {
    let fake = FakeGitea::start(FakeGiteaOptions {
        declare_capabilities: capabilities.map(str::to_string),
        ..FakeGiteaOptions::default()
    });
    let home = RunnerHome::register(&fake, "ubuntu-latest:host", "");
    let id = fake.enqueue_task(fake.task_spec(&["ubuntu-latest"], &job_payload(JOB)));
    let daemon = home.start(&DaemonOptions::default());
    let task = wait_finished(&fake, &daemon, id);
    let all = describe_task(&task, &daemon);
    let masked = row_count(&task, "cache url http://")
        + task
            .log_lines()
            .iter()
            .filter(|l| l.starts_with("cache url http://") && l.contains("/_cache/***/"))
            .count();
    (
        task.result().unwrap_or(pb::Result::Unspecified),
        task.summaries.clone(),
        all,
        masked,
    )
}

#[test]
fn step_summaries_reach_a_gitea_that_announces_them_and_only_then() {
    let (result, summaries, all, masked) = run_with(Some("cancelling,job-summary"));
    assert_eq!(result, pb::Result::Success, "{all}");
    assert_eq!(
        summaries,
        [
            (0, "# Build report\n".to_string()),
            (2, "| tests | 12 passed |\n".to_string())
        ]
        .into(),
        "{all}"
    );
    // The daemon's cache server runs by default; the URL's token is masked.
    assert!(masked >= 1, "{all}");
    let (result, summaries, all, _) = run_with(Some("cancelling"));
    assert_eq!(result, pb::Result::Success, "{all}");
    assert!(summaries.is_empty(), "{all}");
}

/// A node step whose `c.mjs` saves (`save KEY`) or restores (`restore KEY`) `data` with
/// `@actions/cache` (from `$CACHE_LIB`), printing one line the test looks for.
fn cache_job(cmd: &str, key: &str) -> String {
    format!(
        r##"    steps:
      - run: |
          cat > c.mjs <<'EOF'
          import fs from 'node:fs';
          const cache = await import(process.env.CACHE_LIB);
          const [cmd, key] = process.argv.slice(2);
          if (cmd === 'save') {{
            fs.mkdirSync('data', {{ recursive: true }});
            fs.writeFileSync('data/f.txt', `saved as ${{key}}`);
            console.log(`saved id=${{await cache.saveCache(['data'], key)}}`);
          }} else {{
            const hit = await cache.restoreCache(['data'], key, ['deps-']);
            console.log(`restored ${{hit ?? 'miss'}} ${{hit ? fs.readFileSync('data/f.txt', 'utf8') : ''}}`);
          }}
          EOF
          node c.mjs {cmd} {key}
"##
    )
}

#[test]
fn tasks_share_the_daemons_cache_also_across_a_restart() {
    let Some(clients) = harness::npm_clients() else {
        return;
    };
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let home = RunnerHome::register(&fake, "ubuntu-latest:host", "");
    let lib = clients.join("@actions/cache/lib/cache.js");
    let options = DaemonOptions::default().env(
        "HYBRID_RUNNER_RUNNER_ENVS",
        format!("CACHE_LIB=file://{}", lib.display()),
    );
    let run = |daemon: &harness::daemon_process::Daemon, cmd: &str, key: &str| {
        let id = fake
            .enqueue_task(fake.task_spec(&["ubuntu-latest"], &job_payload(&cache_job(cmd, key))));
        let task = wait_finished(&fake, daemon, id);
        let all = describe_task(&task, daemon);
        assert_eq!(task.result(), Some(pb::Result::Success), "{all}");
        (task.log_lines(), all)
    };
    let mut daemon = home.start(&options);
    let (lines, all) = run(&daemon, "save", "deps-abc");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("saved id=") && l != "saved id=-1"),
        "{all}"
    );
    let (lines, all) = run(&daemon, "restore", "deps-zzz");
    assert!(
        lines
            .iter()
            .any(|l| l == "restored deps-abc saved as deps-abc"),
        "{all}"
    );
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    let _ = daemon.wait_exit(std::time::Duration::from_secs(30));
    drop(daemon);
    // A new daemon on the same folders: the entry is still there.
    let daemon = home.start(&options);
    let (lines, all) = run(&daemon, "restore", "deps-abc");
    assert!(
        lines
            .iter()
            .any(|l| l == "restored deps-abc saved as deps-abc"),
        "{all}"
    );
}
