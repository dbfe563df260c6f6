//! `hybrid-runner daemon` as a GitHub runner, a real process against the fake GitHub:
//! registered with `register --github`, then `daemon --once` takes a job from the broker,
//! runs it through the engine and reports it: step states and live logs on the results
//! service, one `completejob` with the conclusion, the job outputs and every step's result.

use std::time::Duration;

use harness::daemon_process::{DaemonOptions, RunnerHome};
use harness::fake_github::FakeGitHub;
use serde_json::{Value, json};

/// A script step of a job message.
pub(crate) fn script(id: &str, name: &str, script: &str) -> Value {
    json!({
        "type": "action", "id": id, "contextName": name,
        "displayNameToken": {"type": 0, "lit": name},
        "reference": {"type": "script"},
        "inputs": {"type": 2, "map": [{"key": "script", "value": script}, {"key": "shell", "value": "bash"}]},
        "condition": "success()",
    })
}

/// A job message with `steps`, as GitHub sends it (the fake fills in the ids and
/// endpoints).
pub(crate) fn message(steps: Vec<Value>) -> Value {
    json!({
        "messageType": "PipelineAgentJobRequest",
        "plan": {"planType": "actions"},
        "jobDisplayName": "build (linux)",
        "jobName": "build",
        "variables": {
            "system.github.token": {"value": "ghs_jobtoken_value", "isSecret": true},
            "MY_SECRET": {"value": "s3cr3t-value-42", "isSecret": true},
        },
        "mask": [],
        "contextData": {
            "github": {"t": 2, "d": [
                {"k": "repository", "v": "octo/hello"},
                {"k": "workflow", "v": "CI"},
                {"k": "event_name", "v": "push"},
                {"k": "sha", "v": "0123456789abcdef0123456789abcdef01234567"},
                {"k": "server_url", "v": "https://github.com"},
            ]},
            "matrix": {"t": 2, "d": [{"k": "os", "v": "linux"}]},
            "vars": {"t": 2, "d": [{"k": "COLOUR", "v": "teal"}]},
        },
        "environmentVariables": [{"type": 2, "map": [
            {"key": "GREETING", "value": "hello"},
            {"key": "OS", "value": {"type": 3, "expr": "matrix.os"}},
        ]}],
        "jobOutputs": {"type": 2, "map": [{"key": "answer", "value": {"type": 3, "expr": "steps.make.outputs.v"}}]},
        "steps": steps,
    })
}

fn run_once(home: &RunnerHome) -> (std::process::ExitStatus, String) {
    let mut daemon = home.start(&DaemonOptions::default().arg("--once"));
    let status = daemon
        .wait_exit(Duration::from_secs(90))
        .unwrap_or_else(|| panic!("the daemon did not end:\n{}", daemon.output()));
    (status, daemon.output())
}

/// Every blob's text of the job, step logs and the job log.
fn all_logs(fake: &FakeGitHub, job_id: &str, steps: &[Value]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for step in steps {
        let id = step["id"].as_str().unwrap();
        if let Some(blob) = fake.log(job_id, Some(id)) {
            out.push((
                id.to_string(),
                String::from_utf8_lossy(&blob.data).into_owned(),
            ));
        }
    }
    if let Some(blob) = fake.log(job_id, None) {
        out.push((
            "job".into(),
            String::from_utf8_lossy(&blob.data).into_owned(),
        ));
    }
    out
}

#[test]
fn a_registered_runner_runs_a_job_and_reports_it_once() {
    let fake = FakeGitHub::start();
    let home = RunnerHome::register_github(&fake, "gh-daemon", "", "", &[]);
    let steps = vec![
        script(
            "11111111-0000-4000-8000-000000000001",
            "greet",
            "echo \"$GREETING from ${{ github.repository }} on ${{ matrix.os }} ($OS), colour ${{ vars.COLOUR }}\"",
        ),
        script(
            "11111111-0000-4000-8000-000000000002",
            "secret",
            "echo \"the secret is ${{ secrets.MY_SECRET }}\"; echo \"runtime ${ACTIONS_RUNTIME_URL} results ${ACTIONS_RESULTS_URL:-none}\"",
        ),
        script(
            "11111111-0000-4000-8000-000000000003",
            "make",
            "echo v=42 >> \"$GITHUB_OUTPUT\"",
        ),
        {
            let mut s = script(
                "11111111-0000-4000-8000-000000000004",
                "flaky",
                "echo failing on purpose; exit 3",
            );
            s["continueOnError"] = json!(true);
            s
        },
        {
            let mut s = script(
                "11111111-0000-4000-8000-000000000005",
                "fails",
                "echo ::error title=Broken::it broke; exit 1",
            );
            s["condition"] = json!("success()");
            s
        },
        script(
            "11111111-0000-4000-8000-000000000006",
            "skipped",
            "echo never",
        ),
        {
            let mut s = script(
                "11111111-0000-4000-8000-000000000007",
                "cleanup",
                "echo always ran",
            );
            s["condition"] = json!("always()");
            s
        },
    ];
    let job = fake.queue_job(&home.uuid, message(steps.clone()));
    let (status, output) = run_once(&home);
    assert!(status.success(), "{status:?}\n{output}");
    assert!(
        fake.acknowledged().contains(&job.runner_request_id),
        "{output}"
    );
    let record = fake.job(&job.runner_request_id).unwrap();
    assert_eq!(record.completions.len(), 1, "{output}");
    let done = &record.completions[0];
    assert_eq!(done["conclusion"], "failed", "{done:#}");
    assert_eq!(done["outputs"]["answer"]["value"], "42", "{done:#}");
    assert_eq!(done["billingOwnerId"], "fake-billing-owner");
    let results: Vec<(&str, &str)> = done["stepResults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["conclusion"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        results,
        [
            ("Set up job", "succeeded"),
            ("greet", "succeeded"),
            ("secret", "succeeded"),
            ("make", "succeeded"),
            ("flaky", "succeeded"),
            ("fails", "failed"),
            ("skipped", "skipped"),
            ("cleanup", "succeeded"),
            ("Complete job", "succeeded"),
        ],
        "{done:#}"
    );
    // The step's own `::error` and the runner's exit-code line, as GitHub shows both.
    let annotations = done["annotations"].as_array().unwrap();
    let broke = annotations
        .iter()
        .find(|a| a["message"] == "it broke")
        .unwrap_or_else(|| panic!("{done:#}"));
    assert_eq!(broke["level"], "failure");
    assert_eq!(broke["title"], "Broken");
    assert_eq!(broke["stepNumber"], 6, "{done:#}");
    assert!(
        annotations
            .iter()
            .any(|a| a["message"] == "Process completed with exit code 1."),
        "{done:#}"
    );

    // Logs: each step's blob is sealed and holds its lines; the secret is in none.
    let logs = all_logs(&fake, &job.job_id, &steps);
    let log_of = |id: &str| {
        logs.iter()
            .find(|(s, _)| s.ends_with(id))
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| panic!("no log for {id}: {logs:?}"))
    };
    assert!(
        log_of("0001").contains("hello from octo/hello on linux (linux), colour teal"),
        "{logs:?}"
    );
    let secret = log_of("0002");
    assert!(secret.contains("the secret is ***"), "{secret}");
    assert!(
        secret.contains(&format!("runtime {}/run/", fake.url())),
        "{secret}"
    );
    assert!(log_of("0007").contains("always ran"), "{logs:?}");
    for (step, text) in &logs {
        assert!(!text.contains("s3cr3t-value-42"), "{step}: {text}");
        assert!(!text.contains("ghs_jobtoken_value"), "{step}: {text}");
    }
    let job_log = log_of("job");
    assert!(
        job_log.contains("always ran") && job_log.contains("Runner: gh-daemon"),
        "{job_log}"
    );
    for id in ["0001", "0007"] {
        let blob = fake
            .log(
                &job.job_id,
                Some(&format!("11111111-0000-4000-8000-00000000{id}")),
            )
            .unwrap();
        assert!(blob.sealed && blob.line_count.is_some(), "{blob:?}");
    }
    // The live console got the running steps' lines, numbered from 1 per step.
    let feed = fake.feed(&job.job_id);
    let greet = feed
        .iter()
        .find(|b| b["stepId"] == "11111111-0000-4000-8000-000000000001")
        .unwrap_or_else(|| panic!("no feed for the first step: {feed:#?}"));
    assert_eq!(greet["startLine"], 1, "{greet:#}");
    assert_eq!(greet["count"], greet["value"].as_array().unwrap().len());
    assert!(
        greet["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("hello from octo/hello")),
        "{greet:#}"
    );
    for batch in &feed {
        assert!(!batch.to_string().contains("s3cr3t-value-42"), "{batch}");
    }
    // Step states: the last update has every step completed (status 6).
    let updates = fake.step_updates(&job.job_id);
    let last = updates.last().expect("step updates");
    assert!(
        last["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == 6),
        "{last:#}"
    );
    // The job folder is gone, and no job-in-flight record is left.
    assert!(!home.dir.path().join(".runner-job").exists());
}

/// A tar.gz as GitHub serves a repository: one top folder holding `files`.
fn tarball(files: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("src/octo-action-0123456");
    for (name, text) in files {
        let path = top.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let archive = dir.path().join("a.tar.gz");
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(dir.path().join("src"))
        .arg("octo-action-0123456")
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(archive).unwrap()
}

#[test]
fn actions_come_from_the_launch_service_with_the_composite_actions_they_use() {
    let fake = FakeGitHub::start();
    let home = RunnerHome::register_github(&fake, "gh-actions", "", "", &[]);
    let outer_sha = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1";
    let inner_sha = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2";
    fake.add_action(
        "octo/greet@v1",
        outer_sha,
        tarball(&[(
            "action.yml",
            "name: greet\ninputs:\n  who:\n    required: true\nruns:\n  using: composite\n  steps:\n    - run: echo \"greet ${{ inputs.who }}\"\n      shell: bash\n    - uses: octo/inner@v2\n      with:\n        what: nested\n",
        )]),
    );
    fake.add_action(
        "octo/inner@v2",
        inner_sha,
        tarball(&[(
            "action.yml",
            "name: inner\ninputs:\n  what: {}\nruns:\n  using: composite\n  steps:\n    - run: echo \"inner ${{ inputs.what }}\"\n      shell: bash\n",
        )]),
    );
    let step = json!({
        "type": "action", "id": "55555555-0000-4000-8000-000000000001", "contextName": "greet",
        "reference": {"type": "repository", "name": "octo/greet", "ref": "v1", "repositoryType": "GitHub"},
        "inputs": {"type": 2, "map": [{"key": "who", "value": "world"}]},
        "condition": "success()",
    });
    let job = fake.queue_job(&home.uuid, message(vec![step]));
    let (status, output) = run_once(&home);
    assert!(status.success(), "{output}");
    let record = fake.job(&job.runner_request_id).unwrap();
    assert_eq!(record.completions.len(), 1, "{output}");
    assert_eq!(record.completions[0]["conclusion"], "succeeded", "{output}");
    let log = fake
        .log(&job.job_id, Some("55555555-0000-4000-8000-000000000001"))
        .unwrap();
    let text = String::from_utf8_lossy(&log.data);
    assert!(
        text.contains("greet world") && text.contains("inner nested"),
        "{text}"
    );
    // Both were stored in the cache at the commits the service resolved.
    let cache = home.dir.path().join("cache/hybrid-runner/actions");
    assert!(
        cache
            .join("octo/greet")
            .join(outer_sha)
            .join("action.yml")
            .is_file()
    );
    assert!(
        cache
            .join("octo/inner")
            .join(inner_sha)
            .join("action.yml")
            .is_file()
    );
    let job_log = String::from_utf8_lossy(&fake.log(&job.job_id, None).unwrap().data).into_owned();
    assert!(
        job_log.contains("Actions ready: octo/greet@v1, octo/inner@v2"),
        "{job_log}"
    );
}

#[test]
fn checkout_fetches_the_jobs_commit_with_the_job_token_and_keeps_it_nowhere() {
    let fake = FakeGitHub::start();
    let home = RunnerHome::register_github(&fake, "gh-checkout", "", "", &[]);
    // The repository GitHub would serve, here a bare repository behind `file://`; the
    // job's commit is not the branch tip.
    let server = tempfile::tempdir().unwrap();
    let src = server.path().join("src");
    let first = harness::git::repo(&src, &[("README", "first\n")]);
    harness::git::commit_files(&src, &[("README", "second\n")], "second");
    std::fs::create_dir_all(server.path().join("octo")).unwrap();
    harness::git::git(
        server.path(),
        &["clone", "-q", "--bare", "src", "octo/hello.git"],
    );
    let mut job_message = message(vec![
        json!({
            "type": "action", "id": "99999999-0000-4000-8000-000000000001", "contextName": "__actions_checkout",
            "reference": {"type": "repository", "name": "actions/checkout", "ref": "v4", "repositoryType": "GitHub"},
            "condition": "success()",
        }),
        script(
            "99999999-0000-4000-8000-000000000002",
            "show",
            "echo \"readme=$(cat README) head=$(git rev-parse HEAD)\"; cat .git/config",
        ),
    ]);
    let github = &mut job_message["contextData"]["github"]["d"];
    for (k, v) in [
        ("server_url", format!("file://{}", server.path().display())),
        ("sha", first.clone()),
        ("ref", "refs/heads/main".to_string()),
    ] {
        let items = github.as_array_mut().unwrap();
        items.retain(|item| item["k"] != k);
        items.push(json!({"k": k, "v": v}));
    }
    let job = fake.queue_job(&home.uuid, job_message);
    let (status, output) = run_once(&home);
    assert!(status.success(), "{output}");
    let record = fake.job(&job.runner_request_id).unwrap();
    let job_log = String::from_utf8_lossy(&fake.log(&job.job_id, None).unwrap().data).into_owned();
    assert_eq!(
        record.completions[0]["conclusion"], "succeeded",
        "{job_log}"
    );
    let log = fake
        .log(&job.job_id, Some("99999999-0000-4000-8000-000000000002"))
        .unwrap();
    let text = String::from_utf8_lossy(&log.data);
    assert!(
        text.contains(&format!("readme=first head={first}")),
        "{text}"
    );
    // The token was neither kept in the checkout's config nor written to any log.
    assert!(!text.to_lowercase().contains("extraheader"), "{text}");
    let checkout = fake
        .log(&job.job_id, Some("99999999-0000-4000-8000-000000000001"))
        .unwrap();
    let checkout = String::from_utf8_lossy(&checkout.data);
    assert!(checkout.contains("http.extraheader=***"), "{checkout}");
    let basic = hr_engine::checkout::auth_header("ghs_jobtoken_value");
    for secret in ["ghs_jobtoken_value", basic.rsplit(' ').next().unwrap()] {
        assert!(!job_log.contains(secret), "{secret} leaked: {job_log}");
    }
}
