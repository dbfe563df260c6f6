//! act's end-to-end workflow corpus (`act/runner_cases.json` + `act/testdata`, see
//! docs/internals/conformance.md) through the real job engine on this host: every row marked
//! `host_runnable_offline` must end as act expects (success or failure).
//!
//! Each row runs in a fresh copy of its `testdata` base folder, which is both the
//! workspace and the repository root, with `exec`'s defaults, which are act's (`ACT=true`,
//! actor `nektos/act`, remote `origin`, default branch `master`), act's repository
//! `nektos/act` (act's name for a folder without a remote) and act's platform map (labels
//! it does not map are skipped, as act skips them). Rows that need Docker or the network
//! are out of scope here; the rows that need node need JavaScript files the corpus does
//! not ship.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot read its data should fail loudly

use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::{Tally, conformance_dir};
use hr_engine::ExecOptions;
use hr_engine::events::{Event, EventSink};
use hr_process::host::StopPolicy;
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;

/// Rows where we deliberately differ from act, with why; each is skipped and printed.
const DIFFERENCES: &[(&str, &str)] = &[
    (
        "uses-workflow",
        "the caller passes a secret the called workflow does not declare; GitHub rejects that call (reader case errors-reusable-workflow-job-secrets-undefined.yml), act ignores it",
    ),
    (
        "workflow_call_inputs",
        "its workflow_call inputs have no `type`, which GitHub requires (reader suite); act accepts them",
    ),
    (
        "defaults-run",
        "checks that $SHELL is not bash, which depends on the host; act disabled this row in its own host test",
    ),
];

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_dir(&entry.path(), &target);
        } else if kind.is_symlink() {
            let link = std::fs::read_link(entry.path()).unwrap();
            std::os::unix::fs::symlink(link, target).unwrap();
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn dotenv(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .map(|v| v.replace("\\n", "\n"))
                .unwrap_or_else(|| v.to_string());
            (k.trim().to_string(), v)
        })
        .collect()
}

/// Runs one row; `Ok(log)` when the outcome matches, `Err(why + log)` when not.
fn run_row(conformance: &Path, row: &Json) -> Result<(), String> {
    let testdata = conformance.join("act/testdata");
    let base = row["base"].as_str().unwrap();
    let copy = tempfile::tempdir().unwrap();
    let root = copy.path().join("repo");
    copy_dir(&testdata.join(base), &root);
    let files: Vec<PathBuf> = row["workflow_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            root.join(
                f.as_str()
                    .unwrap()
                    .strip_prefix(&format!("{base}/"))
                    .unwrap(),
            )
        })
        .collect();
    let config = &row["config"];
    let relative = |key: &str| {
        config[key]
            .as_str()
            .map(|p| root.join(p.strip_prefix(&format!("{base}/")).unwrap_or(p)))
    };
    let mut secrets = relative("secrets_file")
        .map(|p| dotenv(&p))
        .unwrap_or_default();
    if row["dir"]
        .as_str()
        .is_some_and(|d| d.starts_with("uses-workflow"))
    {
        secrets.push(("secret".into(), "keep_it_private".into()));
    }
    let env = relative("env_file").map(|p| dotenv(&p)).unwrap_or_default();
    let inputs = config["inputs"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let matrix = config["matrix_filter"]
        .as_object()
        .map(|o| {
            o.iter()
                .flat_map(|(k, vs)| {
                    vs.as_array()
                        .into_iter()
                        .flatten()
                        .map(move |v| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    // act's platform map of the host test: every label it maps runs on the host here.
    let mut platforms: Vec<(String, String)> = Vec::new();
    for test in row["act_tests"].as_array().into_iter().flatten() {
        for (label, _) in test["platforms"].as_object().into_iter().flatten() {
            if !platforms.iter().any(|(l, _)| l == label) {
                platforms.push((label.clone(), "host".into()));
            }
        }
    }
    let options = ExecOptions {
        workflow_files: files,
        workdir: root.clone(),
        event: row["event"].as_str().unwrap().to_string(),
        event_path: relative("event_path"),
        jobs: Vec::new(),
        inputs,
        secrets,
        vars: Vec::new(),
        env,
        matrix,
        platforms,
        strict_platforms: true,
        concurrency: 2,
        action_cache: copy.path().join("cache"),
        offline: true,
        default_actions_url: "https://github.com".into(),
        github: vec![
            ("repository_owner".into(), "nektos".into()),
            ("repository".into(), "nektos/act".into()),
        ],
        remote_name: hr_engine::contexts::DEFAULT_REMOTE.into(),
        default_branch: None,
        stop: StopPolicy {
            interrupt_grace: Duration::from_millis(500),
            terminate_grace: Duration::from_millis(500),
        },
        dry_run: false,
        debug_lines: false,
        // In-process, `current_exe()` is this test binary, not `hybrid-runner`: a `docker`
        // shim would call the test harness. act's host rows have real Docker in mind anyway.
        builds: hr_engine::image_steps::BuildSettings {
            docker_shim: false,
            ..Default::default()
        },
        pods: None,
        job_services: None,
    };
    let expect_success = row["expected"] == "success";
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (outcome, log) = runtime.block_on(async {
        let (sink, mut events) = EventSink::channel();
        let collector = tokio::spawn(async move {
            let mut log = Vec::new();
            while let Some(e) = events.recv().await {
                log.push(describe(&e));
            }
            log
        });
        let outcome = match hr_engine::load_workflows(&options) {
            Ok(workflows) => {
                let run = hr_engine::run(
                    options,
                    workflows,
                    sink,
                    CancellationToken::new(),
                    CancellationToken::new(),
                );
                match tokio::time::timeout(Duration::from_secs(120), run).await {
                    Ok(Ok(report)) => Ok(report.success()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("timed out after 120 s".to_string()),
                }
            }
            Err(e) => {
                drop(sink);
                Err(e.to_string())
            }
        };
        (outcome, collector.await.unwrap_or_default())
    });
    let log = log.join("\n");
    match outcome {
        Ok(success) if success == expect_success => Ok(()),
        Ok(success) => Err(format!(
            "expected {}, got {}\n{log}",
            row["expected"],
            if success { "success" } else { "failure" }
        )),
        Err(e) if !expect_success => {
            let _ = e;
            Ok(())
        }
        Err(e) => Err(format!(
            "expected success, the run failed to start: {e}\n{log}"
        )),
    }
}

fn describe(e: &Event) -> String {
    match e {
        Event::Log { job, line, .. } => format!("    [{}] {line}", job.name),
        Event::Annotation {
            job, annotation, ..
        } => {
            format!(
                "    [{}] {}: {}",
                job.name, annotation.level, annotation.message
            )
        }
        Event::StepFinished {
            job,
            step,
            outcome,
            conclusion,
            ..
        } => {
            format!(
                "  [{}] step {} -> {outcome:?}/{conclusion:?}",
                job.name, step.name
            )
        }
        Event::JobFinished { job, result, .. } => format!("[{}] job -> {result:?}", job.name),
        Event::JobSkipped { job, reason } => format!("[{}] skipped: {reason}", job.name),
        _ => String::new(),
    }
}

#[test]
fn act_host_corpus() {
    let Some(dir) = conformance_dir() else { return };
    let rows: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("act/runner_cases.json")).unwrap())
            .unwrap();
    let mut tally = Tally::new("act_host_corpus");
    for row in rows.as_array().unwrap() {
        let name = format!(
            "{} ({})",
            row["dir"].as_str().unwrap(),
            row["event"].as_str().unwrap()
        );
        if row["host_runnable_offline"] != true {
            tally.skip();
            continue;
        }
        if let Some((_, why)) = DIFFERENCES.iter().find(|(d, _)| row["dir"] == *d) {
            println!("skip {name}: {why}");
            tally.skip();
            continue;
        }
        match run_row(&dir, row) {
            Ok(()) => tally.pass(),
            Err(why) => tally.fail(name, why),
        }
    }
    tally.finish();
}
