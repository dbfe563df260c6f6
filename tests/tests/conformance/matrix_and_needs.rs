//! Conformance of `workflows::matrix` and `workflows::graph` against GitHub's workflow
//! parser tests (languageservices `reader/*.yml`) and act's planner cases.
//!
//! The workflows are read here with a plain YAML-to-JSON parse (not our model loader),
//! so these suites measure the two modules alone:
//! - `needs`: for every reader workflow with a `jobs` mapping, [`graph::check_needs`]
//!   must give exactly the `needs` messages GitHub expects, in its order.
//! - `matrix`: for every literal `strategy.matrix` (no `${{ }}`), [`matrix::expand`]
//!   must fail with GitHub's `Matrix ...` message when one is expected, else succeed.
//! - `planner`: act's `TestGraph*` cases that are about stages.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot read its data should fail loudly

use std::path::Path;

use harness::{Tally, conformance_dir};
use serde_json::Value as Json;
use workflows::expression::Value;
use workflows::{graph, matrix};

/// One reader test file: its workflow as JSON and the expected error messages (with the
/// `file (Line: L, Col: C): ` prefix removed).
struct ReaderCase {
    name: String,
    workflow: Json,
    errors: Vec<String>,
}

fn reader_cases(dir: &Path) -> Vec<Result<ReaderCase, String>> {
    harness::reader::reader_cases(dir)
        .into_iter()
        .map(|case| {
            let case = case?;
            let workflow: Json = serde_saphyr::from_str(&case.workflow)
                .map_err(|e| format!("{}: workflow YAML: {e}", case.name))?;
            Ok(ReaderCase {
                errors: case
                    .expected_messages()
                    .iter()
                    .map(|m| strip_location(m))
                    .collect(),
                name: case.name,
                workflow,
            })
        })
        .collect()
}

/// `".github/workflows/x.yml (Line: 1, Col: 2): text"` or `"...x.yml: text"` → `text`.
fn strip_location(message: &str) -> String {
    if let Some((_, text)) = message.split_once("): ") {
        return text.to_string();
    }
    match message.split_once(".yml: ") {
        Some((_, text)) => text.to_string(),
        None => message.to_string(),
    }
}

/// `(id, needs)` in workflow order; `needs` as a string or a sequence of strings.
fn jobs_and_needs(workflow: &Json) -> Option<Vec<(String, Vec<String>)>> {
    let jobs = workflow.get("jobs")?.as_object()?;
    jobs.iter()
        .map(|(id, job)| {
            let needs = match job.get("needs") {
                None => Vec::new(),
                Some(Json::String(s)) => vec![s.clone()],
                Some(Json::Array(items)) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string))
                    .collect::<Option<_>>()?,
                Some(_) => return None,
            };
            Some((id.clone(), needs))
        })
        .collect()
}

fn is_needs_message(message: &str) -> bool {
    message.starts_with("The workflow must contain at least one job with no dependencies")
        || (message.starts_with("Job '") && message.contains("depends on"))
}

#[test]
fn needs_reader_conformance() {
    let Some(dir) = conformance_dir() else { return };
    let mut tally = Tally::new("needs");
    for case in reader_cases(&dir) {
        let case = match case {
            Ok(case) => case,
            Err(_) => {
                tally.skip();
                continue;
            }
        };
        let Some(rows) = jobs_and_needs(&case.workflow) else {
            tally.skip();
            continue;
        };
        let expected: Vec<&String> = case.errors.iter().filter(|m| is_needs_message(m)).collect();
        // GitHub checks `needs` only when the jobs converted without errors.
        if expected.is_empty() && !case.errors.is_empty() {
            tally.skip();
            continue;
        }
        let view: Vec<(&str, &[String])> = rows
            .iter()
            .map(|(id, needs)| (id.as_str(), needs.as_slice()))
            .collect();
        let ours: Vec<String> = graph::check_needs(&view)
            .iter()
            .map(ToString::to_string)
            .collect();
        let same = ours.len() == expected.len() && ours.iter().zip(&expected).all(|(a, b)| a == *b);
        tally.check(same, &case.name, || {
            format!("expected {expected:?}, got {ours:?}")
        });
        if same && expected.is_empty() {
            // A sound graph must also stage every job exactly once.
            let staged: usize = graph::stages(&view).map_or(0, |s| s.iter().map(Vec::len).sum());
            tally.check(
                staged == rows.len(),
                format!("{} (stages)", case.name),
                || format!("staged {staged} of {} jobs", rows.len()),
            );
        }
    }
    tally.finish();
}

fn contains_expression(json: &Json) -> bool {
    match json {
        Json::String(s) => s.contains("${{"),
        Json::Array(items) => items.iter().any(contains_expression),
        Json::Object(map) => map
            .iter()
            .any(|(k, v)| k.contains("${{") || contains_expression(v)),
        _ => false,
    }
}

#[test]
fn matrix_reader_conformance() {
    let Some(dir) = conformance_dir() else { return };
    let mut tally = Tally::new("matrix");
    for case in reader_cases(&dir).into_iter().flatten() {
        let Some(jobs) = case.workflow.get("jobs").and_then(Json::as_object) else {
            continue;
        };
        let expected: Vec<&String> = case
            .errors
            .iter()
            .filter(|m| m.starts_with("Matrix "))
            .collect();
        for (id, job) in jobs {
            let Some(matrix) = job.get("strategy").and_then(|s| s.get("matrix")) else {
                continue;
            };
            if contains_expression(matrix) || !matrix.is_object() {
                tally.skip();
                continue;
            }
            let label = format!("{} job {id}", case.name);
            match matrix::expand(&Value::from_json(matrix)) {
                Ok(legs) => tally.check(expected.is_empty() && !legs.is_empty(), label, || {
                    format!("expanded to {} legs, expected {expected:?}", legs.len())
                }),
                Err(e) => tally.check(
                    expected.first().is_some_and(|m| **m == e.to_string()),
                    label,
                    || format!("error {e:?} ({e}), expected {expected:?}"),
                ),
            }
        }
    }
    tally.finish();
}
