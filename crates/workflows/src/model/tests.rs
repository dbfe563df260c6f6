//! Loader tests: accepted workflows keep their data and locations; rejected ones
//! report every problem GitHub's way.

use super::*;
use crate::diagnostic::Location;

fn load_ok(text: &str) -> Workflow {
    match load(text, "w.yml") {
        Ok(w) => w,
        Err(d) => panic!("unexpected diagnostics:\n{d}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    match load(text, "w.yml") {
        Ok(_) => panic!("expected diagnostics"),
        Err(d) => d.iter().map(|d| d.github_form()).collect(),
    }
}

#[test]
fn loads_a_basic_workflow() {
    let w = load_ok(
        "name: CI\non: [push, pull_request]\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: echo ${{ github.sha }}\n      - run: echo two\n  test:\n    needs: build\n    if: github.ref == 'refs/heads/main'\n    runs-on: [self-hosted, linux]\n    steps:\n      - id: t\n        run: make test\n",
    );
    assert!(w.triggered_by("push"));
    assert!(w.triggered_by("pull_request"));
    assert!(!w.triggered_by("release"));
    assert_eq!(w.jobs.len(), 2);
    let build = &w.jobs[0];
    let ids: Vec<_> = build.steps.iter().map(|s| s.id()).collect();
    assert_eq!(ids, ["__actions_checkout", "__run", "__run_2"]);
    assert_eq!(build.effective_name(), "build");
    let test = &w.jobs[1];
    assert_eq!(test.needs[0].value, "build");
    assert_eq!(test.needs[0].location, Location::new(11, 12));
    assert_eq!(test.runs_on.as_ref().unwrap().labels.len(), 2);
    assert_eq!(test.condition_text(), "github.ref == 'refs/heads/main'");
    assert_eq!(test.steps[0].id(), "t");
}

#[test]
fn outside_jobs_satisfy_needs_and_others_stay_unknown() {
    let text = "on: push\njobs:\n  deploy:\n    needs: [build, test]\n    runs-on: x\n    steps: [{run: a}]\n";
    let outside = ["build".to_string(), "test".to_string()];
    let w = load_with_outside_jobs(text, "w.yml", &outside, Dialect::Github).unwrap();
    assert_eq!(w.jobs[0].needs.len(), 2);
    let only_build = ["build".to_string()];
    let errs: Vec<String> = load_with_outside_jobs(text, "w.yml", &only_build, Dialect::Github)
        .unwrap_err()
        .iter()
        .map(|d| d.github_form())
        .collect();
    assert_eq!(
        errs,
        ["w.yml (Line: 4, Col: 20): Job 'deploy' depends on unknown job 'test'."]
    );
    assert!(load(text, "w.yml").is_err());
}

#[test]
fn reports_cycles_unknown_needs_and_bad_ids() {
    let errs = errors(
        "on: push\njobs:\n  one:\n    runs-on: x\n    steps: [{run: a}]\n  two:\n    needs: [one, three]\n    runs-on: x\n    steps: [{run: a}]\n  three:\n    needs: two\n    runs-on: x\n    steps: [{run: a}]\n  four:\n    needs: five\n    runs-on: x\n    steps: [{run: a}]\n  my.job:\n    runs-on: x\n    steps: [{run: a}]\n",
    );
    assert!(errs.contains(&"w.yml (Line: 7, Col: 18): Job 'two' depends on job 'three' which creates a cycle in the dependency graph.".to_string()), "{errs:#?}");
    assert!(errs.contains(&"w.yml (Line: 11, Col: 12): Job 'three' depends on job 'two' which creates a cycle in the dependency graph.".to_string()), "{errs:#?}");
    assert!(
        errs.contains(
            &"w.yml (Line: 15, Col: 12): Job 'four' depends on unknown job 'five'.".to_string()
        ),
        "{errs:#?}"
    );
    // Document order: the bad id (line 18) comes after the needs problems.
    assert!(
        errs[3].contains("The identifier 'my.job' is invalid"),
        "{errs:#?}"
    );
}

#[test]
fn reports_unknown_keys_missing_keys_and_duplicates() {
    let errs = errors(
        "on: push\njobs:\n  build:\n    runs-on: x\n    runs-on: y\n    steps:\n      - runn: echo\n      - id: a\n        run: x\n      - id: A\n        run: y\n  call:\n    uses: ./.github/workflows/x.yml\n    runs-on: z\n",
    );
    assert_eq!(
        errs,
        [
            "w.yml (Line: 5, Col: 5): 'runs-on' is already defined",
            "w.yml (Line: 7, Col: 9): Unexpected value 'runn'",
            "w.yml (Line: 7, Col: 9): There's not enough info to determine what you meant. Add one of these properties: parallel, run, shell, uses, with, working-directory",
            "w.yml (Line: 10, Col: 13): The identifier 'A' may not be used more than once within the same scope.",
            "w.yml (Line: 14, Col: 5): Unexpected value 'runs-on'",
        ]
    );
    assert_eq!(
        errors("on: push\n"),
        ["w.yml (Line: 1, Col: 1): Required property is missing: jobs"]
    );
}

#[test]
fn checks_expressions_against_the_key_contexts() {
    let errs = errors(
        "on: push\njobs:\n  a:\n    runs-on: ${{ secrets.x }}\n    steps:\n      - run: echo ${{ github.sha\n      - run: ok\n        if: hashFiles('x') && steps.s.outputs.y\n",
    );
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(errs[0].starts_with("w.yml (Line: 4, Col: 14): Unrecognized named-value: 'secrets'"));
    assert!(errs[1].contains("The expression is not closed"));
}

#[test]
fn keeps_matrix_and_typed_values() {
    let w = load_ok(
        "on:\n  push:\n    branches: [main]\n  workflow_dispatch:\n    inputs:\n      level:\n        type: choice\n        options: [a, b]\njobs:\n  a:\n    strategy:\n      fail-fast: false\n      matrix:\n        os: [x, y]\n        include:\n          - os: z\n    runs-on: ${{ matrix.os }}\n    timeout-minutes: ${{ matrix.t }}\n    container:\n      image: alpine\n    env:\n      N: 3\n    steps:\n      - run: echo\n",
    );
    let job = &w.jobs[0];
    let strategy = job.strategy.as_ref().unwrap();
    assert!(strategy.matrix.as_ref().unwrap().get("os").is_some());
    assert_eq!(
        strategy.fail_fast.as_ref().unwrap().value,
        OrExpression::Literal(false)
    );
    assert!(matches!(
        job.timeout_minutes.as_ref().unwrap().value,
        OrExpression::Expression(_)
    ));
    assert_eq!(job.env.as_ref().unwrap().get("N").unwrap().value, "3");
    let push = w.event("push").unwrap();
    assert_eq!(push.branches.as_ref().unwrap()[0].value, "main");
    let dispatch = w.event("workflow_dispatch").unwrap();
    assert_eq!(dispatch.dispatch_inputs[0].input_type, InputType::Choice);
}

#[test]
fn empty_file_is_an_error() {
    assert!(load("", "w.yml").is_err());
}

#[test]
fn sample_workflows_load() {
    let samples = [
        ("ci.yml", include_str!("../../examples/ci.yml")),
        (
            "build-images.yml",
            include_str!("../../examples/build-images.yml"),
        ),
        (
            "reusable-deploy.yml",
            include_str!("../../examples/reusable-deploy.yml"),
        ),
    ];
    for (name, text) in samples {
        let w = load(text, name).unwrap_or_else(|d| panic!("{name}:\n{d}"));
        assert!(!w.jobs.is_empty(), "{name}");
    }
    let ci = load(samples[0].1, "ci.yml").unwrap();
    assert!(ci.triggered_by("pull_request"));
    let test = ci.job("test").unwrap();
    assert_eq!(
        test.steps.iter().map(|s| s.id()).collect::<Vec<_>>(),
        ["__actions_checkout", "test", "__run"]
    );
    assert_eq!(
        test.steps[2].condition_expression(),
        "failure() && steps.test.outcome == 'failure'"
    );
    let deploy = load(samples[2].1, "reusable-deploy.yml").unwrap();
    let staging = deploy.job("staging").unwrap();
    assert!(staging.is_workflow_call());
    assert_eq!(staging.secrets, Some(CallSecrets::Inherit));
    let call = deploy
        .event("workflow_call")
        .unwrap()
        .call
        .as_ref()
        .unwrap();
    assert_eq!(
        call.outputs[0].value.value,
        "${{ jobs.deploy.outputs.url }}"
    );
}

#[test]
fn yaml_errors_carry_their_location_once() {
    let errs = errors("on: push\njobs:\n  a: [1, 2\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("w.yml (Line: "), "{errs:?}");
    assert!(!errs[0].contains(" at line "), "{errs:?}");
}

#[test]
fn reusable_workflow_references_are_checked() {
    let errs = errors("on: push\njobs:\n  a:\n    uses: octo/repo@v1\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("w.yml (Line: 4, Col: 11): Invalid workflow reference 'octo/repo@v1'")
    );
}

#[test]
fn calls_are_checked_against_the_called_workflow() {
    let caller = load_ok(
        "on: push\njobs:\n  a:\n    uses: o/r/.github/workflows/c.yml@v1\n    with:\n      flag: yes-please\n      extra: 1\n    secrets:\n      nope: x\n",
    );
    let callee = load_ok(
        "on:\n  workflow_call:\n    inputs:\n      flag:\n        type: boolean\n      name:\n        type: string\n        required: true\n    secrets:\n      token:\n        required: true\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n",
    );
    let problems: Vec<String> = check_call(&caller.jobs[0], &callee, "w.yml")
        .iter()
        .map(|d| d.github_form())
        .collect();
    assert_eq!(
        problems,
        [
            "w.yml (Line: 6, Col: 13): Unexpected value 'yes-please'",
            "w.yml (Line: 7, Col: 14): Invalid input, extra is not defined in the referenced workflow.",
            "w.yml (Line: 4, Col: 11): Input name is required, but not provided while calling.",
            "w.yml (Line: 9, Col: 13): Invalid secret, nope is not defined in the referenced workflow.",
            "w.yml (Line: 4, Col: 11): Secret token is required, but not provided while calling.",
        ]
    );
}

#[test]
fn ten_thousand_unnamed_steps_get_their_ids_without_a_scan_per_candidate() {
    // Tried `__run_2`, `__run_3`, ... against a list per step: 4,000 steps took 28 s.
    let steps = 10_000;
    let mut text = String::from("on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n");
    text.push_str("      - uses: docker://run_3\n");
    text.push_str("      - uses: docker://RUN\n");
    for _ in 0..steps {
        text.push_str("      - run: echo\n");
    }
    text.push_str("      - uses: docker://run\n");
    let w = load_ok(&text);
    let ids: Vec<&str> = w.jobs[0].steps.iter().map(|s| s.id()).collect();
    // `__run` folds to the taken `__RUN`, `__run_3` is taken too.
    assert_eq!(
        ids[..5],
        ["__run_3", "__RUN", "__run_2", "__run_4", "__run_5"]
    );
    assert_eq!(ids[steps + 1], format!("__run_{}", steps + 2));
    assert_eq!(ids[steps + 2], format!("__run_{}", steps + 3));
}

#[test]
fn absolute_action_urls_are_gitea_and_forgejo_syntax() {
    let text = "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - uses: https://gitea.com/actions/checkout@v4\n      - uses: http://gitea.local:3000/o/r/sub@main\n";
    let workflow = load(text, ".gitea/workflows/w.yml").unwrap();
    assert_eq!(workflow.jobs[0].steps.len(), 2);
    assert!(load(text, ".forgejo/workflows/w.yml").is_ok());
    // GitHub refuses them, and says whose syntax they are.
    let github = load(text, ".github/workflows/w.yml")
        .unwrap_err()
        .to_string();
    assert!(github.contains("is Gitea and Forgejo syntax"), "{github}");
    let bad = "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - uses: https://gitea.com/checkout@v4\n";
    let errors = load_as(bad, "w.yml", Dialect::Gitea)
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("w.yml:6:15: Expected format {org}/{repo}[/path]@ref. Actual 'https://gitea.com/checkout@v4'"),
        "{errors}"
    );
}
