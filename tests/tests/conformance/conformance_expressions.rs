//! Conformance of the `${{ }}` engine against external suites (their formats:
//! docs/internals/conformance.md): GitHub's x-lang expression tests, act's interpreter tables, and
//! act's `if:` / interpolation tables.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot read its data should fail loudly

use std::path::{Path, PathBuf};

use harness::{Tally, conformance_dir};
use serde_json::Value as Json;
use workflows::expression::{
    Allowed, ErrorKind, EvalContext, ExprError, Host, JobStatus, Kind, Object, Value, parse,
    parse_condition, parse_template,
};

fn read_json(path: &Path) -> Json {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON in {}: {e}", path.display()))
}

fn object_from(json: &Json) -> Object {
    match Value::from_json(json) {
        Value::Object(o) => (*o).clone(),
        _ => Object::new(),
    }
}

/// `actual` against expected JSON: numbers numerically (`-0` equals `0`), objects with
/// the same keys, in the same order when `ordered`.
fn matches_json(actual: &Value, expected: &Json, ordered: bool) -> bool {
    match (actual, expected) {
        (Value::Null, Json::Null) => true,
        (Value::Bool(a), Json::Bool(b)) => a == b,
        (Value::Number(a), Json::Number(b)) => b.as_f64() == Some(*a),
        (Value::String(a), Json::String(b)) => a == b,
        (Value::Array(a), Json::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| matches_json(x, y, ordered))
        }
        (Value::Object(a), Json::Object(b)) => {
            a.len() == b.len()
                && if ordered {
                    a.iter()
                        .zip(b)
                        .all(|((ka, va), (kb, vb))| ka == kb && matches_json(va, vb, ordered))
                } else {
                    b.iter().all(|(k, vb)| {
                        a.iter()
                            .find(|(ka, _)| ka == k)
                            .is_some_and(|(_, va)| matches_json(va, vb, ordered))
                    })
                }
        }
        _ => false,
    }
}

fn describe(result: &Result<Value, ExprError>) -> String {
    match result {
        Ok(v) => format!("{} {}", v.kind(), v.to_json()),
        Err(e) => format!("{} error: {e}", e.kind),
    }
}

fn error_kind(name: &str) -> Option<ErrorKind> {
    match name {
        "lexing" => Some(ErrorKind::Lexing),
        "parsing" => Some(ErrorKind::Parsing),
        "evaluation" => Some(ErrorKind::Evaluation),
        _ => None,
    }
}

fn kind_named(name: &str) -> Option<Kind> {
    [
        Kind::Null,
        Kind::Boolean,
        Kind::Number,
        Kind::String,
        Kind::Array,
        Kind::Object,
    ]
    .into_iter()
    .find(|k| k.to_string() == name)
}

// ---------------------------------------------------------------------------------------
// Section 1: GitHub's x-lang suite.

#[test]
fn github_expression_suite() {
    let Some(dir) = conformance_dir() else { return };
    let dir = dir.join("languageservices/expressions/testdata");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 28, "expected 28 files in {}", dir.display());

    let mut values = Tally::new("expressions");
    let mut messages = Tally::new("expressions_error_messages");
    let mut total = 0;
    for file in &files {
        let file_name = file.file_name().map(|f| f.to_string_lossy().into_owned());
        let file_name = file_name.unwrap_or_default();
        let Json::Object(groups) = read_json(file) else {
            panic!("{file_name}: not an object of groups");
        };
        for (group, cases) in &groups {
            for (i, case) in cases.as_array().into_iter().flatten().enumerate() {
                total += 1;
                let name = format!("{file_name}/{group}/{i}");
                run_github_case(&name, case, &mut values, &mut messages);
            }
        }
    }
    assert_eq!(total, 1020, "the suite has 1020 cases");
    values.finish();
    messages.finish();
}

fn run_github_case(name: &str, case: &Json, values: &mut Tally, messages: &mut Tally) {
    let expr = case["expr"].as_str().unwrap_or_default();
    let contexts = object_from(&case["contexts"]);
    let names: Vec<&str> = contexts.keys().collect();
    let allowed = Allowed {
        named_values: &names,
        functions: &[],
        status_function_args: false,
    };
    let ctx = EvalContext {
        contexts: &contexts,
        status: JobStatus::Success,
        host: None,
    };
    let result = parse(expr, &allowed).and_then(|e| e.evaluate(&ctx));
    let case_name = format!("{name} `{expr}`");
    if let Some(err) = case.get("err") {
        let want_kind = err["kind"].as_str().and_then(error_kind);
        let want_text = err["value"].as_str().unwrap_or_default();
        let got_kind = result.as_ref().err().map(|e| e.kind);
        values.check(
            got_kind.is_some() && got_kind == want_kind,
            &case_name,
            || {
                format!(
                    "expected {want_kind:?} error `{want_text}`, got {}",
                    describe(&result)
                )
            },
        );
        let message_ok = got_kind == want_kind
            && result
                .as_ref()
                .err()
                .is_some_and(|e| e.to_string().contains(want_text));
        messages.check(message_ok, &case_name, || {
            format!(
                "expected message containing `{want_text}`, got {}",
                describe(&result)
            )
        });
        return;
    }
    let want_kind = case["result"]["kind"].as_str().and_then(kind_named);
    let want_value = &case["result"]["value"];
    let ok = result
        .as_ref()
        .is_ok_and(|v| Some(v.kind()) == want_kind && matches_json(v, want_value, true));
    values.check(ok, &case_name, || {
        format!(
            "expected {want_kind:?} {want_value}, got {}",
            describe(&result)
        )
    });
}

// ---------------------------------------------------------------------------------------
// Section 3: act's interpreter tables.

/// A workspace for `hashFiles` that only answers "nothing matches" (the digest itself is
/// the runner's business): files are matched with `*`, `**`, `?` and `!` exclusions.
struct MatchOnlyHost {
    files: Vec<String>,
}

impl MatchOnlyHost {
    fn over(root: &Path) -> Self {
        let mut files = Vec::new();
        collect_files(root, root, &mut files);
        MatchOnlyHost { files }
    }
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// Glob match: `**` spans directories, `*` and `?` stay within one.
fn glob_matches(pattern: &[char], path: &[char]) -> bool {
    match pattern.first() {
        None => path.is_empty(),
        Some('*') if pattern.get(1) == Some(&'*') => {
            let rest = &pattern[2..];
            let rest = rest.strip_prefix(&['/']).unwrap_or(rest);
            (0..=path.len()).any(|i| glob_matches(rest, &path[i..]))
        }
        Some('*') => (0..=path.len())
            .take_while(|&i| i == 0 || path[i - 1] != '/')
            .any(|i| glob_matches(&pattern[1..], &path[i..])),
        Some('?') => {
            path.first().is_some_and(|&c| c != '/') && glob_matches(&pattern[1..], &path[1..])
        }
        Some(c) => path.first() == Some(c) && glob_matches(&pattern[1..], &path[1..]),
    }
}

impl Host for MatchOnlyHost {
    fn hash_files(&self, patterns: &[String]) -> Result<String, String> {
        let normalise = |p: &str| -> Vec<char> { p.trim_start_matches("./").chars().collect() };
        let matched = self.files.iter().any(|f| {
            let path: Vec<char> = f.chars().collect();
            let mut included = false;
            for p in patterns {
                if let Some(negated) = p.strip_prefix('!') {
                    if glob_matches(&normalise(negated), &path) {
                        included = false;
                    }
                } else if glob_matches(&normalise(p), &path) {
                    included = true;
                }
            }
            included
        });
        if matched {
            Err("this test workspace does not compute digests".into())
        } else {
            Ok(String::new())
        }
    }
}

fn matches_act(actual: &Value, expected: &Json) -> bool {
    if let Some(special) = expected.get("$special").and_then(Json::as_str) {
        return match (actual, special) {
            (Value::Number(n), "NaN") => n.is_nan(),
            (Value::Number(n), "Infinity") => *n == f64::INFINITY,
            (Value::Number(n), "-Infinity") => *n == f64::NEG_INFINITY,
            _ => false,
        };
    }
    matches_json(actual, expected, false)
}

/// act's contexts: the given ones, the pointer-typed `github`/`job` as null when unset and
/// every map-typed context as an empty object.
fn act_contexts(given: &Json) -> Object {
    let mut contexts = object_from(given);
    for name in workflows::expression::ALL_CONTEXTS {
        if !contexts.contains_key(name) {
            let unset = match name {
                "github" | "job" | "jobs" => Value::Null,
                _ => Value::object(Object::new()),
            };
            contexts.insert(name, unset);
        }
    }
    contexts
}

/// Rows where act's expectation differs from GitHub's semantics without a
/// `note_vs_github`: skipped like the noted rows (section 1 wins), each printed with why.
const UNMARKED_ACT_DIVERGENCES: &[(&str, &str)] = &[
    (
        "(github.event.commits.*.author.username)[0]",
        "GitHub keeps a filtered array filtered through parentheses, so [0] applies to each string element",
    ),
    (
        "github.event.commits[0].author.username1 != github.event.commits[1].author.username2",
        "both sides are null and null == null in GitHub",
    ),
    (
        "contains(fromJSON('[{ \"first\": { \"result\": \"success\" }},{ \"second\": { \"result\": \"success\" }}]').first.result, 'success')",
        "GitHub gives null for a property of a plain (unfiltered) array",
    ),
];

fn act_divergence(expr: &str) -> Option<&'static str> {
    UNMARKED_ACT_DIVERGENCES
        .iter()
        .find(|(e, _)| *e == expr)
        .map(|(_, why)| *why)
}

/// Rows whose `note_vs_github` records a divergence from GitHub (all but the one that
/// notes agreement).
fn diverges_from_github(row: &Json) -> bool {
    row["note_vs_github"]
        .as_str()
        .is_some_and(|n| !n.starts_with("Matches"))
}

#[test]
fn act_expression_tables() {
    let Some(dir) = conformance_dir() else { return };
    let rows = read_json(&dir.join("act/expressions.json"));
    let host = MatchOnlyHost::over(&dir.join("act/testdata/pkg/exprparser/testdata"));
    let mut tally = Tally::new("act_expressions");
    for (i, row) in rows.as_array().into_iter().flatten().enumerate() {
        if row["disabled"] == Json::Bool(true) || diverges_from_github(row) {
            tally.skip();
            continue;
        }
        let expr = row["expr"].as_str().unwrap_or_default();
        if let Some(why) = act_divergence(expr) {
            println!(
                "skip act/expressions.json[{i}] `{expr}`: act differs from GitHub here: {why}"
            );
            tally.skip();
            continue;
        }
        let contexts = act_contexts(&row["contexts"]);
        let ctx = EvalContext {
            contexts: &contexts,
            status: JobStatus::Success,
            host: Some(&host),
        };
        let result = parse(expr, &Allowed::everything()).and_then(|e| e.evaluate(&ctx));
        let case = format!(
            "act/expressions.json[{i}] {}/{} `{expr}`",
            row["test"].as_str().unwrap_or_default(),
            row["name"].as_str().unwrap_or_default()
        );
        let expected = &row["expected"];
        if let Some(err) = row.get("error") {
            tally.check(result.is_err(), &case, || {
                format!("expected an error ({err}), got {}", describe(&result))
            });
        } else {
            tally.check(
                result.as_ref().is_ok_and(|v| matches_act(v, expected)),
                &case,
                || format!("expected {expected}, got {}", describe(&result)),
            );
        }
    }
    tally.finish();
}

// ---------------------------------------------------------------------------------------
// Section 4: act's `if:` and interpolation tables. act gives no context JSON here, only
// prose (`contexts_note`); these objects transcribe it.

fn strings(pairs: &[(&str, &str)]) -> Value {
    let mut o = Object::new();
    for (k, v) in pairs {
        o.insert(*k, Value::string(*v));
    }
    Value::object(o)
}

fn runner_contexts(suite: &str) -> Object {
    let mut c = Object::new();
    let matrix = strings(&[("os", "Linux"), ("foo", "bar")]);
    let secrets = strings(&[("CASE_INSENSITIVE_SECRET", "value")]);
    let vars = strings(&[("CASE_INSENSITIVE_VAR", "value")]);
    match suite {
        "if_condition" => {
            c.insert(
                "env",
                strings(&[
                    ("SOMETHING_TRUE", "true"),
                    ("SOMETHING_FALSE", "false"),
                    ("SOME_TEXT", "text"),
                    ("ACT", "true"),
                ]),
            );
            c.insert("matrix", matrix);
            c.insert(
                "github",
                strings(&[
                    ("actor", "nektos/act"),
                    ("job", "job1"),
                    ("workflow", "test-workflow"),
                ]),
            );
        }
        "runcontext_evaluate" => {
            // act prints maps with sorted keys; insert them in that order.
            c.insert("env", strings(&[("ACT", "true"), ("key", "value")]));
            c.insert("secrets", secrets);
            c.insert("vars", vars);
            c.insert("matrix", matrix);
            c.insert(
                "github",
                strings(&[
                    ("workflow", "test-workflow"),
                    ("actor", "nektos/act"),
                    ("run_id", "1"),
                    ("run_number", "1"),
                ]),
            );
            c.insert("job", strings(&[("status", "success")]));
            let mut steps = Object::new();
            for (id, key, value) in [
                ("idwithnothing", "foowithnothing", "barwithnothing"),
                ("id-with-hyphens", "foo-with-hyphens", "bar-with-hyphens"),
                (
                    "id_with_underscores",
                    "foo_with_underscores",
                    "bar_with_underscores",
                ),
            ] {
                let mut step = Object::new();
                step.insert("conclusion", Value::string("success"));
                step.insert("outcome", Value::string("failure"));
                step.insert("outputs", strings(&[(key, value)]));
                steps.insert(id, Value::object(step));
            }
            c.insert("steps", Value::object(steps));
        }
        _ => {
            c.insert(
                "env",
                strings(&[
                    ("KEYWITHNOTHING", "valuewithnothing"),
                    ("KEY-WITH-HYPHENS", "value-with-hyphens"),
                    ("KEY_WITH_UNDERSCORES", "value_with_underscores"),
                    ("SOMETHING_TRUE", "true"),
                    ("SOMETHING_FALSE", "false"),
                    ("ACT", "true"),
                ]),
            );
            c.insert("secrets", secrets);
            c.insert("vars", vars);
        }
    }
    c
}

#[test]
fn act_runner_expression_tables() {
    let Some(dir) = conformance_dir() else { return };
    let rows = read_json(&dir.join("act/runner_expressions.json"));
    let host = MatchOnlyHost { files: Vec::new() };
    let allowed = Allowed::everything();
    let mut tally = Tally::new("act_runner_expressions");
    for (i, row) in rows.as_array().into_iter().flatten().enumerate() {
        if row["disabled"] == Json::Bool(true) || diverges_from_github(row) {
            tally.skip();
            continue;
        }
        let suite = row["suite"].as_str().unwrap_or_default();
        let input = row["in"].as_str().unwrap_or_default();
        let expected = &row["expected"];
        let contexts = runner_contexts(suite);
        let ctx = EvalContext {
            contexts: &contexts,
            status: JobStatus::Success,
            host: Some(&host),
        };
        let case = format!("act/runner_expressions.json[{i}] {suite} `{input}`");
        match suite {
            "if_condition" => {
                let result = parse_condition(input, &allowed).and_then(|c| c.evaluate(&ctx));
                let ok = if row["want_error"] == Json::Bool(true) {
                    result.is_err()
                } else {
                    result.as_ref().ok() == expected.as_bool().as_ref()
                };
                tally.check(ok, &case, || {
                    format!(
                        "expected {expected} (want_error {}), got {result:?}",
                        row["want_error"]
                    )
                });
            }
            "interpolate" => {
                let result =
                    parse_template(input, &allowed).and_then(|t| t.evaluate_to_string(&ctx));
                tally.check(
                    result.as_ref().ok().map(String::as_str) == expected.as_str(),
                    &case,
                    || format!("expected {expected}, got {result:?}"),
                );
            }
            _ => {
                let result = parse(input, &allowed).and_then(|e| e.evaluate(&ctx));
                tally.check(
                    result.as_ref().is_ok_and(|v| matches_act(v, expected)),
                    &case,
                    || format!("expected {expected}, got {}", describe(&result)),
                );
            }
        }
    }
    tally.finish();
}
