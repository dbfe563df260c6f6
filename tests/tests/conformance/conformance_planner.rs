//! act's planner cases (`act/planner_cases.json`, see docs/internals/conformance.md) through the product's
//! loader and planner: `needs` stages per event, workflows without the event, load-time
//! errors (invalid job ids, empty files, unknown `needs`).
//!
//! Deliberate differences from act, skipped with the reason printed:
//! - a job id starting with `__` (`invalid-job-name/valid-2.yml`): GitHub reserves it and
//!   rejects the workflow (reader case `errors-job-id-leading-underscores.yml`); we follow GitHub.
//! - a workflow without `on:` (`issue-1595/no-event.yml`, alone and in its folder): GitHub
//!   rejects it (`Required property is missing: on`); act plans nothing for it.
//! - a path that does not exist (`TestNoWorkflowsFoundByPlanner`): act plans nothing, our
//!   commands report it as a usage error.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot read its data should fail loudly

use std::path::{Path, PathBuf};

use harness::{Tally, conformance_dir};
use serde_json::Value as Json;
use workflows::plan;

/// Deliberately different from act: (path, why).
const DIFFERENCES: &[(&str, &str)] = &[
    (
        "pkg/model/testdata/invalid-job-name/valid-2.yml",
        "GitHub rejects job ids starting with '__'",
    ),
    (
        "pkg/runner/testdata/issue-1595/no-event.yml",
        "GitHub rejects a workflow without 'on:' (Required property is missing: on); act plans nothing for it",
    ),
    (
        "pkg/runner/testdata/issue-1595/",
        "the folder holds no-event.yml, which GitHub rejects (no 'on:'); act plans the rest",
    ),
];

struct Outcome {
    stages: Vec<Vec<String>>,
    errors: Vec<String>,
}

fn workflow_files(path: &Path, recurse: bool) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(path) else {
        return files;
    };
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_dir() && recurse {
            files.extend(workflow_files(&p, true));
        } else if p.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            files.push(p);
        }
    }
    files.sort();
    files
}

/// Loads every file and plans the ones that load, as `hybrid-runner list` does.
fn plan_path(path: &Path, event: Option<&str>, recurse: bool) -> Outcome {
    let mut outcome = Outcome {
        stages: Vec::new(),
        errors: Vec::new(),
    };
    let mut loaded = Vec::new();
    for file in workflow_files(path, recurse) {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        match workflows::model::load(&text, &name) {
            Ok(w) => loaded.push(w),
            Err(d) => outcome.errors.push(d.to_string()),
        }
    }
    for workflow in &loaded {
        if event.is_some_and(|e| !workflow.triggered_by(e)) {
            continue;
        }
        match plan::plan_workflow(workflow, &workflows::expression::Object::new()) {
            Ok(p) => outcome.stages.extend(
                p.stages
                    .iter()
                    .map(|s| s.iter().map(|j| j.id.clone()).collect::<Vec<_>>()),
            ),
            Err(e) => outcome.errors.push(e.to_string()),
        }
    }
    outcome
}

#[test]
fn act_planner_cases() {
    let Some(dir) = conformance_dir() else { return };
    let cases: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("act/planner_cases.json")).unwrap())
            .unwrap();
    let mut tally = Tally::new("planner");
    for case in cases.as_array().unwrap() {
        let rel = case["path"].as_str().unwrap_or_default();
        let source = case["source"].as_str().unwrap_or_default();
        let label = format!("{source} {rel}");
        if let Some((_, why)) = DIFFERENCES.iter().find(|(p, _)| *p == rel) {
            println!("skip {label}: {why}");
            tally.skip();
            continue;
        }
        let path = dir.join("act/testdata").join(rel.trim_end_matches('/'));
        if !path.exists() {
            println!("skip {label}: a missing path is a usage error here");
            tally.skip();
            continue;
        }
        let event = match case["event"].as_str() {
            Some(e) if e.starts_with('(') => None,
            Some(e) => Some(e),
            None => None,
        };
        let recurse = case["recurse"].as_bool().unwrap_or(false);
        let outcome = plan_path(&path, event, recurse);
        let expected = &case["expected"];
        let expect_error = !expected["error"].is_null();
        let mut ok = expect_error != outcome.errors.is_empty();
        if let Some(want) = expected
            .get("stages")
            .filter(|s| s.is_array() && !expect_error)
        {
            let want: Vec<Vec<String>> = serde_json::from_value(want.clone()).unwrap();
            ok &= outcome.stages == want;
        }
        if let Some(n) = expected["stages_count"].as_u64() {
            ok &= outcome.stages.len() as u64 == n;
        }
        tally.check(ok, &label, || {
            format!(
                "expected {expected}, got stages {:?}, errors {:?}",
                outcome.stages, outcome.errors
            )
        });
    }
    tally.finish();
}
