//! GitHub's workflow-parser "reader" suite (docs/internals/conformance.md) and act's
//! workflows as parse-only inputs, run against `workflows::model::load`.
//!
//! Tallies:
//! - `reader`: accept/reject right on every case we mirror.
//! - `reader_messages`: expected error messages reproduced exactly (`github_form`).
//! - `reader_locations`: expected error locations where we report something.
//! - `reader_jobs`: per job of accepted cases: id, name, needs, `if`, runs-on, the
//!   matrix (when it holds no expression), literal timeouts and `continue-on-error`, and per
//!   step: id, `if`, and literal `run` / `uses` / `name`.
//! - `reader_events`: the `on:` events of accepted cases that carry them.
//! - `reader_act`: act's workflows load, except the ones act itself rejects.
//!
//! Cases skipped (counted as skipped, each with its reason in `skip_reason`):
//! - error cases whose `skip` lists `C#`: TypeScript-only expectations (errors on
//!   unknown `workflow_dispatch` keys, which the canonical parser ignores). Accepted
//!   cases that only TypeScript runs are kept: they carry the expected `events`
//!   (tally `reader_events`).
//! - error cases decided by options we do not mirror: `permissions-policy` (caller
//!   permission checks), `max-depth` / `max-file-size` / `max-job-limit` /
//!   `max-result-size` / `max-nested-reusable-workflows-depth` (limits of GitHub's
//!   service), `skip-reusable-workflows`. Accepted cases with these options run.
//! - `experimental-features` (background steps): not offered.
//! - error cases about the permissions a called reusable workflow requests: GitHub's
//!   token permission policy is not mirrored (calls are checked for inputs and
//!   secrets with `model::check_call`).
//! - `errors-anchor-tag.yml`: GitHub used to reject anchors; we accept them, as
//!   GitHub does today.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot read its data should fail loudly

use std::path::{Path, PathBuf};

use harness::reader::{ReaderCase, reader_cases};
use harness::{Tally, conformance_dir};
use serde_json::Value as Json;
use serde_json::json;
use workflows::Diagnostics;
use workflows::expression::value::number_to_json;
use workflows::model::{self, Event, Input, InputType, Located, OrExpression, Workflow};

fn skip_reason(case: &ReaderCase) -> Option<&'static str> {
    let skip_list = case.options.get("skip").and_then(Json::as_array);
    let expects_errors = case.expected.get("errors").is_some();
    if expects_errors && skip_list.is_some_and(|s| s.iter().any(|v| v.as_str() == Some("C#"))) {
        return Some("errors only the TypeScript parser reports");
    }
    // Limits and policies of GitHub's service: they only decide error cases.
    const UNMIRRORED: &[&str] = &[
        "permissions-policy",
        "max-depth",
        "max-file-size",
        "max-job-limit",
        "max-result-size",
        "max-nested-reusable-workflows-depth",
        "skip-reusable-workflows",
    ];
    if expects_errors && UNMIRRORED.iter().any(|k| case.options.get(*k).is_some()) {
        return Some("errors from a service limit or policy we do not mirror");
    }
    if case.options.get("experimental-features").is_some() {
        return Some("experimental features (background steps) are not offered");
    }
    if expects_errors && case.name.contains("permissions") {
        return Some("permission limits of called workflows are not checked");
    }
    if case.name == "errors-anchor-tag.yml" {
        return Some("anchors are accepted");
    }
    None
}

/// `(Line: L, Col: C)` out of a GitHub-form message.
fn location_of(message: &str) -> Option<(u32, u32)> {
    let start = message.find("(Line: ")? + "(Line: ".len();
    let rest = &message[start..];
    let (line, rest) = rest.split_once(", Col: ")?;
    let (col, _) = rest.split_once(')')?;
    Some((line.parse().ok()?, col.parse().ok()?))
}

/// The text of a literal token: plain JSON (`include-source: false`) or `{"lit": ...}`.
fn literal(value: &Json) -> Option<&str> {
    value
        .as_str()
        .or_else(|| value.get("lit").and_then(Json::as_str))
}

/// The items of a sequence token: a JSON array or `{"seq": [...]}`.
fn sequence(value: &Json) -> Option<&Vec<Json>> {
    value
        .as_array()
        .or_else(|| value.get("seq").and_then(Json::as_array))
}

fn runs_on_projection(value: &Json) -> Option<Vec<String>> {
    if let Some(label) = literal(value) {
        return Some(vec![label.to_string()]);
    }
    sequence(value)?
        .iter()
        .map(|v| literal(v).map(str::to_string))
        .collect()
}

/// Compares one expected job with ours; `Err` says what differs.
fn compare_job(expected: &Json, workflow: &Workflow) -> Result<(), String> {
    let id = expected.get("id").and_then(literal).unwrap_or_default();
    let job = workflow
        .job(id)
        .ok_or_else(|| format!("job {id} missing"))?;
    let name = expected.get("name").and_then(literal);
    if let Some(name) = name
        && !name.contains("${{")
        && name != job.effective_name()
    {
        return Err(format!("name {name:?} != {:?}", job.effective_name()));
    }
    let needs: Vec<String> = expected
        .get("needs")
        .and_then(sequence)
        .map(|n| {
            n.iter()
                .filter_map(|v| literal(v).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let ours: Vec<String> = job.needs.iter().map(|n| n.value.clone()).collect();
    if needs != ours {
        return Err(format!("needs {needs:?} != {ours:?}"));
    }
    if let Some(runs_on) = expected.get("runs-on").and_then(runs_on_projection) {
        let ours: Vec<String> = job
            .runs_on
            .as_ref()
            .map(|r| r.labels.iter().map(|l| l.value.clone()).collect())
            .unwrap_or_default();
        if runs_on != ours {
            return Err(format!("runs-on {runs_on:?} != {ours:?}"));
        }
    }
    let expected_matrix = expected
        .get("strategy")
        .and_then(token_json)
        .and_then(|s| s.get("matrix").cloned());
    if let Some(expected_matrix) = expected_matrix {
        let ours = job
            .strategy
            .as_ref()
            .and_then(|s| s.matrix.as_ref())
            .map(|m| m.to_value().to_json());
        if !ours
            .as_ref()
            .is_some_and(|o| same_data(o, &expected_matrix))
        {
            return Err(format!("matrix {expected_matrix} != {ours:?}"));
        }
    }
    let literal_of = |v: &Option<Located<OrExpression<f64>>>| match v.as_ref().map(|l| &l.value) {
        Some(OrExpression::Literal(n)) => Some(number_to_json(*n)),
        _ => None,
    };
    let scalars = [
        ("timeout-minutes", literal_of(&job.timeout_minutes)),
        (
            "cancel-timeout-minutes",
            literal_of(&job.cancel_timeout_minutes),
        ),
        (
            "continue-on-error",
            match job.continue_on_error.as_ref().map(|l| &l.value) {
                Some(OrExpression::Literal(b)) => Some(json!(b)),
                _ => None,
            },
        ),
    ];
    for (key, ours) in scalars {
        let Some(expected) = expected.get(key).and_then(token_json) else {
            continue;
        };
        if !ours.as_ref().is_some_and(|o| same_data(o, &expected)) {
            return Err(format!("{key} {expected} != {ours:?}"));
        }
    }
    let expected_if = condition(expected);
    if expected_if != job.condition_expression() {
        return Err(format!(
            "if {expected_if:?} != {:?}",
            job.condition_expression()
        ));
    }
    let expected_steps = expected.get("steps").and_then(sequence);
    for (i, step) in expected_steps.into_iter().flatten().enumerate() {
        let Some(ours) = job.steps.get(i) else {
            break;
        };
        let literals = [
            ("run", ours.run.as_ref()),
            ("uses", ours.uses.as_ref()),
            ("name", ours.name.as_ref()),
        ];
        for (key, value) in literals {
            let Some(expected) = step.get(key).and_then(literal) else {
                continue;
            };
            let ours = value.map(|v| v.value.as_str());
            // GitHub folds literal expressions (`${{ 'x' }}` → `x`); we keep the source.
            if ours.is_some_and(|o| o.contains("${{")) {
                continue;
            }
            if ours != Some(expected) {
                return Err(format!("step {i} {key} {expected:?} != {ours:?}"));
            }
        }
        let expected_if = condition(step);
        if expected_if != ours.condition_expression() {
            return Err(format!(
                "step {i} if {expected_if:?} != {:?}",
                ours.condition_expression()
            ));
        }
    }
    let step_ids: Vec<String> = expected
        .get("steps")
        .and_then(sequence)
        .map(|s| {
            s.iter()
                .filter_map(|st| st.get("id").and_then(literal).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let ours: Vec<String> = job.steps.iter().map(|s| s.id().to_string()).collect();
    if step_ids != ours {
        return Err(format!("step ids {step_ids:?} != {ours:?}"));
    }
    Ok(())
}

/// A template token as plain JSON; `None` when it holds an expression (we keep
/// expression source text, GitHub keeps a parsed form).
fn token_json(token: &Json) -> Option<Json> {
    let Some(kind) = token.get("type").and_then(Json::as_u64) else {
        return Some(token.clone());
    };
    Some(match kind {
        0 => token.get("lit")?.clone(),
        1 => Json::Array(
            token
                .get("seq")?
                .as_array()?
                .iter()
                .map(token_json)
                .collect::<Option<_>>()?,
        ),
        2 => {
            let mut map = serde_json::Map::new();
            for pair in token.get("map")?.as_array()? {
                let key = literal(pair.get("Key")?)?.to_string();
                map.insert(key, token_json(pair.get("Value")?)?);
            }
            Json::Object(map)
        }
        5 => token.get("bool")?.clone(),
        6 => token.get("num")?.clone(),
        7 => Json::Null,
        _ => return None,
    })
}

/// Numbers compared by value (`10` and `10.0` are the same matrix value).
fn same_data(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_data(a, b))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| ka == kb && same_data(va, vb))
        }
        _ => a == b,
    }
}

/// The `expr` of an expected `if` token (`success()` when absent).
fn condition(expected: &Json) -> String {
    expected
        .get("if")
        .and_then(|c| c.get("expr").and_then(Json::as_str).or_else(|| literal(c)))
        .unwrap_or("success()")
        .to_string()
}

fn texts(list: &[Located<String>]) -> Json {
    Json::Array(list.iter().map(|l| json!(l.value)).collect())
}

fn type_name(t: InputType) -> &'static str {
    match t {
        InputType::String => "string",
        InputType::Boolean => "boolean",
        InputType::Number => "number",
        InputType::Choice => "choice",
        InputType::Environment => "environment",
    }
}

fn inputs_projection(inputs: &[Input]) -> Json {
    let mut out = serde_json::Map::new();
    for input in inputs {
        let mut i = serde_json::Map::new();
        i.insert("type".into(), json!(type_name(input.input_type)));
        if let Some(d) = &input.description {
            i.insert("description".into(), json!(d));
        }
        if input.required {
            i.insert("required".into(), json!(true));
        }
        if let Some(d) = &input.default {
            i.insert("default".into(), d.to_value().to_json());
        }
        if !input.options.is_empty() {
            i.insert("options".into(), json!(input.options));
        }
        out.insert(input.name.value.clone(), Json::Object(i));
    }
    Json::Object(out)
}

/// Our events in the shape of the expected `events` object.
fn event_projection(event: &Event) -> Json {
    let mut out = serde_json::Map::new();
    if event.name.value == "schedule" {
        return Json::Array(
            event
                .schedule
                .iter()
                .map(|c| match &c.timezone {
                    Some(tz) => json!({"cron": c.cron.value, "timezone": tz.value}),
                    None => json!({"cron": c.cron.value}),
                })
                .collect(),
        );
    }
    let lists = [
        ("branches", &event.branches),
        ("branches-ignore", &event.branches_ignore),
        ("tags", &event.tags),
        ("tags-ignore", &event.tags_ignore),
        ("paths", &event.paths),
        ("paths-ignore", &event.paths_ignore),
        ("names", &event.names),
        ("versions", &event.versions),
    ];
    for (key, list) in lists {
        if let Some(list) = list {
            out.insert(key.into(), texts(list));
        }
    }
    if !event.types.is_empty() {
        out.insert("types".into(), texts(&event.types));
    }
    if !event.workflows.is_empty() {
        out.insert("workflows".into(), texts(&event.workflows));
    }
    if !event.dispatch_inputs.is_empty() {
        out.insert("inputs".into(), inputs_projection(&event.dispatch_inputs));
    }
    if let Some(call) = &event.call {
        if !call.inputs.is_empty() {
            out.insert("inputs".into(), inputs_projection(&call.inputs));
        }
        if !call.secrets.is_empty() {
            let mut secrets = serde_json::Map::new();
            for secret in &call.secrets {
                let mut s = serde_json::Map::new();
                if let Some(d) = &secret.description {
                    s.insert("description".into(), json!(d));
                }
                if secret.required {
                    s.insert("required".into(), json!(true));
                }
                secrets.insert(secret.name.value.clone(), Json::Object(s));
            }
            out.insert("secrets".into(), Json::Object(secrets));
        }
        if !call.outputs.is_empty() {
            let mut outputs = serde_json::Map::new();
            for output in &call.outputs {
                let mut o = serde_json::Map::new();
                if let Some(d) = &output.description {
                    o.insert("description".into(), json!(d));
                }
                o.insert("value".into(), json!(output.value.value));
                outputs.insert(output.name.value.clone(), Json::Object(o));
            }
            out.insert("outputs".into(), Json::Object(outputs));
        }
    }
    Json::Object(out)
}

#[derive(Default)]
struct Tallies {
    accept: Option<Tally>,
    messages: Option<Tally>,
    locations: Option<Tally>,
    jobs: Option<Tally>,
    events: Option<Tally>,
}

fn run_case(case: &ReaderCase, t: &mut Tallies) {
    let (Some(accept), Some(messages), Some(locations), Some(jobs), Some(events)) = (
        t.accept.as_mut(),
        t.messages.as_mut(),
        t.locations.as_mut(),
        t.jobs.as_mut(),
        t.events.as_mut(),
    ) else {
        return;
    };
    if let Some(reason) = skip_reason(case) {
        println!("skip {}: {reason}", case.name);
        accept.skip();
        return;
    }
    let file = format!(".github/workflows/{}", case.name);
    let result = model::load(&case.workflow, &file).and_then(|w| check_calls(case, &file, w));
    let expected = case.expected_messages();
    match (&result, expected.is_empty()) {
        (Ok(workflow), true) => {
            accept.pass();
            if let Some(Json::Object(expected_events)) = case.expected.get("events") {
                for (name, expected) in expected_events {
                    let ours = workflow.event(name).map(event_projection);
                    events.check(ours.as_ref() == Some(expected), &case.name, || {
                        format!("event {name}: expected {expected}, got {ours:?}")
                    });
                }
            }
            for job in case
                .expected
                .get("jobs")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
            {
                let id = job.get("id").and_then(literal).unwrap_or_default();
                match compare_job(job, workflow) {
                    Ok(()) => jobs.pass(),
                    Err(why) => jobs.fail(format!("{}#{id}", case.name), why),
                }
            }
        }
        (Err(diagnostics), false) => {
            accept.pass();
            let ours: Vec<String> = diagnostics.iter().map(|d| d.github_form()).collect();
            for message in &expected {
                messages.check(ours.contains(message), &case.name, || {
                    format!("expected {message:?}; got {ours:#?}")
                });
                if let Some((line, col)) = location_of(message) {
                    let found = diagnostics.iter().any(|d| {
                        d.location
                            .is_some_and(|l| l.line == line && l.column == col)
                    });
                    locations.check(found, &case.name, || {
                        format!("nothing reported at {line}:{col}; got {ours:#?}")
                    });
                }
            }
        }
        (Ok(_), false) => accept.fail(&case.name, format!("accepted; expected {expected:#?}")),
        (Err(d), true) => accept.fail(&case.name, format!("rejected:\n{d}")),
    }
}

/// Checks each job calling a supplied workflow against it, as GitHub does at load.
fn check_calls(case: &ReaderCase, file: &str, workflow: Workflow) -> Result<Workflow, Diagnostics> {
    let mut problems = Vec::new();
    for job in &workflow.jobs {
        let Some(uses) = &job.uses else {
            continue;
        };
        let Some((reference, content)) = case.called.iter().find(|(r, _)| *r == uses.value) else {
            continue;
        };
        match model::load(content, reference) {
            Ok(callee) => problems.extend(model::check_call(job, &callee, file)),
            Err(d) => problems.extend(d.0),
        }
    }
    if problems.is_empty() {
        Ok(workflow)
    } else {
        Err(Diagnostics(problems))
    }
}

#[test]
fn reader_suite() {
    let Some(root) = conformance_dir() else {
        return;
    };
    let cases = reader_cases(&root);
    assert_eq!(cases.len(), 195, "the reader suite has 195 cases");
    let mut t = Tallies {
        accept: Some(Tally::new("reader")),
        messages: Some(Tally::new("reader_messages")),
        locations: Some(Tally::new("reader_locations")),
        jobs: Some(Tally::new("reader_jobs")),
        events: Some(Tally::new("reader_events")),
    };
    for case in &cases {
        match case {
            Ok(case) => run_case(case, &mut t),
            Err(why) => panic!("not a reader case: {why}"),
        }
    }
    for tally in [t.accept, t.messages, t.locations, t.jobs, t.events]
        .into_iter()
        .flatten()
    {
        tally.finish();
    }
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_yaml(&path, out);
        } else if path.extension().is_some_and(|x| x == "yml" || x == "yaml") {
            out.push(path);
        }
    }
}

/// Files to reject: those act rejects (planner_cases.json: invalid job ids, empty
/// files, `needs` naming a job that does not exist), and workflows that act's tests do
/// not run and GitHub rejects.
fn act_expects_rejection(relative: &str) -> bool {
    const REJECTED: &[&str] = &[
        "empty-workflow/push.yml",
        "nested/workflows/fail.yml",
        "issue-1595/missing.yml",
        "issue-1595/no-first.yml",
        // act plans nothing for a workflow without `on:`; GitHub rejects it.
        "issue-1595/no-event.yml",
        // Not run by act; GitHub rejects a null step...
        "job-nil-step/push.yml",
        // ...a step with both `run` and `uses`...
        "uses-and-run-in-one-step/push.yml",
        // ...an empty `uses`, and a `uses` without `@ref`.
        "uses-github-empty/push.yml",
        "uses-github-noref/push.yml",
        // act runs it, but GitHub requires `type` on `workflow_call` inputs
        // (reader case errors-required-property-missing.yml).
        "workflow_call_inputs/workflow_call_inputs.yml",
        // act accepts it, but GitHub reserves job ids starting with `__`
        // (reader case errors-job-id-leading-underscores.yml).
        "invalid-job-name/valid-2.yml",
    ];
    relative.contains("invalid-job-name/invalid-") || REJECTED.iter().any(|r| relative.ends_with(r))
}

#[test]
fn act_workflows_load() {
    let Some(root) = conformance_dir() else {
        return;
    };
    let base = root.join("act/testdata/pkg");
    let mut paths = Vec::new();
    collect_yaml(&base.join("runner/testdata"), &mut paths);
    collect_yaml(&base.join("model/testdata"), &mut paths);
    paths.sort();
    let mut tally = Tally::new("reader_act");
    for path in paths {
        let relative = path
            .strip_prefix(&base)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        let file_name = path.file_name().map(|f| f.to_string_lossy().into_owned());
        // Action metadata and act's own config files are not workflows.
        if matches!(file_name.as_deref(), Some("action.yml" | "action.yaml"))
            || relative.contains("/config/")
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let result = model::load(&text, &relative);
        let reject = act_expects_rejection(&relative);
        match (result, reject) {
            (Ok(_), false) | (Err(_), true) => tally.pass(),
            (Ok(_), true) => tally.fail(&relative, "accepted; act rejects it"),
            (Err(d), false) => tally.fail(&relative, format!("rejected:\n{d}")),
        }
    }
    tally.finish();
}
