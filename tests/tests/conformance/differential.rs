//! Differential test against GitHub's own workflow parser (`@actions/workflow-parser`
//! 0.3.61 from npm, run by `tests/oracle/parse-workflows.mjs`): every workflow of
//! actionlint's testdata and of GitHub's reader suite is read by both, as GitHub, and they
//! must agree on accept or reject. Each known disagreement is listed in [`KNOWN`] with its
//! reason (docs/internals/conformance.md); a new one fails, and so does a listed one that
//! no longer disagrees.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use harness::reader::reader_cases;
use harness::{Tally, conformance_dir, npm_clients};
use serde_json::Value as Json;
use workflows::model::{self, Dialect};

/// Files where we deliberately differ from `parseWorkflow` + `convertWorkflowTemplate`.
const KNOWN: &[(&str, &str)] = &[
    (
        "actionlint/err/evaluated_template.yaml",
        "env as one expression at step level: the runner evaluates it to a mapping; the TypeScript converter refuses the token",
    ),
    (
        "actionlint/examples/expand_object.yaml",
        "env as one expression at step level (as above)",
    ),
    (
        "actionlint/ok/anchors.yaml",
        "env as one expression at job and step level (as above)",
    ),
    (
        "actionlint/examples/invalid_action_format.yaml",
        "'uses: actions/checkout' without @ref: the runner's PipelineTemplateConverter refuses it (Expected format {org}/{repo}[/path]@ref); the TypeScript parser does not check",
    ),
    (
        "actionlint/ok/events_with_no_config.yaml",
        "the npm schema's repository-dispatch-string is 'branch_protection_rule' by mistake; the runner's schema has 'repository_dispatch'",
    ),
    (
        "actionlint/ok/workflow_call_job.yaml",
        "a job's 'uses: ${{ 'oooops' }}' folds to 'oooops', no workflow reference: refused when read, not when the call is resolved",
    ),
    (
        "actionlint/ok/workflow_dispatch_upper_case_inputs.yaml",
        DISPATCH_AS_THE_SUITE,
    ),
];

const DISPATCH_AS_THE_SUITE: &str = "a workflow_dispatch input with no value: GitHub's reader suite accepts it (on-workflow_dispatch-inputs.yml, which the TypeScript parser lists in its skipped-tests.txt)";

/// Files to compare: actionlint's testdata as they are, and each reader case's workflow
/// written under `scratch` (cases with called workflows or parser options left out: those
/// need a file provider or options the oracle script does not pass).
fn inputs(dir: &Path, scratch: &Path) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir.join("actionlint"))
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
    {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let name = path.strip_prefix(dir).unwrap().display().to_string();
            files.push((name, path.to_path_buf()));
        }
    }
    // Cases the TypeScript parser itself does not claim to pass (its skipped-tests.txt).
    let not_claimed = std::fs::read_to_string(
        dir.join("languageservices/workflow-parser/testdata/skipped-tests.txt"),
    )
    .unwrap_or_default();
    for case in reader_cases(dir).into_iter().filter_map(Result::ok) {
        if not_claimed.lines().any(|l| l.trim() == case.name) {
            continue;
        }
        let plain = case
            .options
            .as_object()
            .is_none_or(|o| o.keys().all(|k| k == "include-source"));
        if !plain || !case.called.is_empty() {
            continue;
        }
        let path = scratch.join(&case.name);
        std::fs::write(&path, &case.workflow).unwrap();
        files.push((format!("reader/{}", case.name), path));
    }
    files
}

/// The oracle's verdict per file: its first error, or `None` when it accepts the file.
fn oracle(clients: &Path, files: &[(String, PathBuf)]) -> BTreeMap<PathBuf, Option<String>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("oracle/parse-workflows.mjs");
    let output = Command::new("node")
        .arg(script)
        .args(files.iter().map(|(_, p)| p))
        .env("HYBRID_RUNNER_NPM_CLIENTS", clients)
        .output()
        .expect("node runs (npm is installed by .ci/test)");
    assert!(
        output.status.success(),
        "the oracle failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let v: Json = serde_json::from_str(line).unwrap();
            let first = v["errors"][0].as_str().map(str::to_string);
            (PathBuf::from(v["file"].as_str().unwrap()), first)
        })
        .collect()
}

#[test]
fn validate_agrees_with_githubs_parser() {
    let Some(dir) = conformance_dir() else { return };
    let Some(clients) = npm_clients() else { return };
    if !clients
        .join("@actions/workflow-parser/package.json")
        .is_file()
    {
        assert!(
            !harness::under_ci(),
            "@actions/workflow-parser is not installed (.ci/test installs it)"
        );
        eprintln!("notice: @actions/workflow-parser is not installed; skipping");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let files = inputs(&dir, scratch.path());
    for (known, _) in KNOWN {
        assert!(
            files.iter().any(|(name, _)| name == known),
            "KNOWN lists {known}, which is not among the files compared"
        );
    }
    let verdicts = oracle(&clients, &files);
    let mut tally = Tally::new("differential");
    let mut stale = Vec::new();
    for (name, path) in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let ours = model::load_as(&text, name, Dialect::Github)
            .err()
            .map(|d| d.0[0].to_string());
        let theirs = verdicts.get(path).cloned().flatten();
        let known = KNOWN.iter().find(|(f, _)| f == name);
        match (ours.is_some() == theirs.is_some(), known) {
            (true, None) => tally.pass(),
            (true, Some(_)) => {
                stale.push(name.clone());
                tally.pass();
            }
            (false, Some((_, why))) => {
                println!("skip {name}: {why}");
                tally.skip();
            }
            (false, None) => tally.fail(
                name,
                format!(
                    "GitHub's parser {}, we {}",
                    theirs.map_or("accepts".into(), |e| format!("rejects ({e})")),
                    ours.map_or("accept".into(), |e| format!("reject ({e})"))
                ),
            ),
        }
    }
    let failed = tally.failed();
    assert!(
        stale.is_empty(),
        "listed in KNOWN but agreeing now, remove them: {stale:?}"
    );
    tally.finish();
    assert_eq!(
        failed, 0,
        "every disagreement is fixed or listed in KNOWN with its reason"
    );
}
