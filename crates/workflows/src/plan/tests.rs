//! Planning tests over small workflows.
use super::*;
use crate::expression::template::parse_condition;

fn load(text: &str) -> Workflow {
    crate::model::load(text, ".github/workflows/t.yml").unwrap()
}

const WORKFLOW: &str = "name: demo
on: [push]
jobs:
  deploy:
    needs: [build, lint]
    runs-on: ubuntu-latest
    steps: [{run: echo}]
  lint:
    runs-on: ubuntu-latest
    steps: [{run: echo}]
  build:
    runs-on: [self-hosted, linux]
    strategy:
      matrix:
        os: ${{ fromJSON('[\"a\", \"b\"]') }}
        v: [1, 2]
        exclude: [{os: b, v: 2}]
    steps: [{run: echo}]
  later:
    needs: build
    runs-on: ${{ matrix.x }}
    strategy:
      matrix:
        x: ${{ fromJSON(needs.build.outputs.list) }}
    steps: [{run: echo}]
";

#[test]
fn stages_follow_needs_and_legs_expand() {
    let plan = plan(&[load(WORKFLOW)], Some("push")).unwrap();
    let w = &plan.workflows[0];
    assert_eq!(w.name, "demo");
    let ids: Vec<Vec<&str>> = w
        .stages
        .iter()
        .map(|s| s.iter().map(|j| j.id.as_str()).collect())
        .collect();
    assert_eq!(ids, vec![vec!["lint", "build"], vec!["deploy", "later"]]);
    let Legs::Matrix(legs) = &w.stages[0][1].legs else {
        panic!("build has a matrix");
    };
    let names: Vec<&str> = legs.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, vec!["build (a, 1)", "build (a, 2)", "build (b, 1)"]);
    assert_eq!(w.stages[0][1].runs_on, vec!["self-hosted", "linux"]);
    assert_eq!(legs[2].runs_on, vec!["self-hosted", "linux"]);
    assert!(matches!(w.stages[1][1].legs, Legs::Deferred { .. }));
    assert_eq!(plan.job_count(), 3 + 1 + 1 + 1);
}

#[test]
fn runs_on_reads_each_legs_matrix() {
    let text = "on: push\njobs:\n  t:\n    runs-on: [\"${{ matrix.os }}\", x64]\n    strategy:\n      matrix:\n        os: [ubuntu-24.04, macos-14]\n    steps: [{run: echo}]\n";
    let plan = plan(&[load(text)], None).unwrap();
    let Legs::Matrix(legs) = &plan.workflows[0].stages[0][0].legs else {
        panic!("t has a matrix");
    };
    assert_eq!(legs[0].runs_on, vec!["ubuntu-24.04", "x64"]);
    assert_eq!(legs[1].runs_on, vec!["macos-14", "x64"]);
}

#[test]
fn other_events_plan_nothing() {
    let plan = plan(&[load(WORKFLOW)], Some("release")).unwrap();
    assert!(plan.workflows.is_empty());
}

#[test]
fn matrix_errors_name_the_job() {
    let text = "on: push\njobs:\n  a:\n    runs-on: x\n    strategy:\n      matrix:\n        os: ${{ fromJSON('{}') }}\n    steps: [{run: echo}]\n";
    let err = plan(&[load(text)], None).unwrap_err();
    assert!(err.to_string().contains("job 'a'"), "{err}");
}

#[test]
fn job_if_sees_needs_results() {
    let everything = Allowed::everything();
    let default_if = parse_condition("", &everything).unwrap();
    let always = parse_condition("always()", &everything).unwrap();
    let on_failure = parse_condition("${{ failure() }}", &everything).unwrap();
    let contexts = Object::new();
    let eval = |c: &crate::expression::Condition, needs: &[JobResult]| {
        c.evaluate(&EvalContext {
            contexts: &contexts,
            status: job_status(needs, false),
            host: None,
        })
        .unwrap()
    };
    use JobResult::*;
    assert!(eval(&default_if, &[Success, Success]));
    assert!(!eval(&default_if, &[Success, Skipped]));
    assert!(!eval(&default_if, &[Failure]));
    assert!(eval(&always, &[Skipped, Failure]));
    assert!(eval(&on_failure, &[Success, Failure]));
    assert!(!eval(&on_failure, &[Skipped]));
    assert_eq!(job_status(&[Success], true), JobStatus::Cancelled);
}

/// Serves workflows from a fixed table, as the runner serves files of the repository.
struct Table(Vec<(String, String)>);

fn table_of(pairs: &[(&str, &str)]) -> Table {
    Table(
        pairs
            .iter()
            .map(|(name, text)| (name.to_string(), text.to_string()))
            .collect(),
    )
}

impl CalledWorkflows for Table {
    fn load(&self, reference: &str) -> Option<Result<Workflow, Diagnostics>> {
        let (name, text) = self.0.iter().find(|(name, _)| *name == reference)?;
        Some(crate::model::load(text, name))
    }
}

const CALLEE: &str = "on:
  workflow_call:
    outputs:
      digest:
        value: ${{ jobs.build.outputs.digest }}
    secrets:
      token:
        required: false
    inputs:
      targets:
        type: string
        required: true
      mode:
        type: string
        default: fast
jobs:
  build:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        target: ${{ fromJSON(inputs.targets) }}
        mode: ['${{ inputs.mode }}']
    steps: [{run: echo}]
";

#[test]
fn called_workflows_are_planned_with_inputs_from_with() {
    let caller = load(
        "on: push\njobs:\n  call:\n    uses: ./.github/workflows/callee.yml\n    secrets: inherit\n    with:\n      targets: '[\"x86\", \"arm\"]'\n",
    );
    let table = table_of(&[("./.github/workflows/callee.yml", CALLEE)]);
    let plan = plan_workflow_calling(&caller, &Object::new(), &table).unwrap();
    let job = &plan.stages[0][0];
    assert_eq!(job.calls.as_deref(), Some("./.github/workflows/callee.yml"));
    let called = job.called.as_ref().expect("the callee is planned");
    assert_eq!(called.secrets, PassedSecrets::Inherit);
    assert_eq!(
        called.outputs,
        vec![(
            "digest".to_string(),
            "${{ jobs.build.outputs.digest }}".to_string()
        )]
    );
    let Legs::Matrix(legs) = &called.plan.stages[0][0].legs else {
        panic!("the callee's matrix expands");
    };
    let names: Vec<&str> = legs.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, vec!["build (x86, fast)", "build (arm, fast)"]);
    // Without a source for called workflows the job is planned on its own.
    assert!(
        plan_workflow(&caller, &Object::new()).unwrap().stages[0][0]
            .called
            .is_none()
    );
}

#[test]
fn bad_calls_and_endless_calls_are_errors() {
    let caller = load(
        "on: push\njobs:\n  call:\n    uses: ./.github/workflows/callee.yml\n    with:\n      nope: 1\n",
    );
    let table = table_of(&[("./.github/workflows/callee.yml", CALLEE)]);
    let err = plan_workflow_calling(&caller, &Object::new(), &table).unwrap_err();
    assert!(matches!(err, PlanError::Call { .. }), "{err}");
    let looping =
        "on:\n  workflow_call:\njobs:\n  again:\n    uses: ./.github/workflows/loop.yml\n";
    let table = table_of(&[("./.github/workflows/loop.yml", looping)]);
    let err = plan_workflow_calling(&load(looping), &Object::new(), &table).unwrap_err();
    assert_eq!(limit(&err), "Nested reusable workflow depth exceeded 9.");
}

/// The message of a [`PlanError::CallLimit`].
fn limit(err: &PlanError) -> &str {
    match err {
        PlanError::CallLimit(problem) => &problem.message,
        _ => panic!("not a call limit: {err}"),
    }
}

/// `depth + 1` workflows `w0.yml` … where each calls the next from `fan_out` jobs; the
/// last runs one job. Returns the caller and the table of the called ones.
fn call_chain(depth: usize, fan_out: usize) -> (Workflow, Table) {
    let file = |i: usize| format!("./.github/workflows/w{i}.yml");
    let text = |i: usize| {
        let mut text = String::from("on:\n  push:\n  workflow_call:\njobs:\n");
        if i == depth {
            text.push_str("  leaf:\n    runs-on: x\n    steps: [run: x]\n");
        }
        for j in 0..if i == depth { 0 } else { fan_out } {
            text.push_str(&format!("  c{j}:\n    uses: {}\n", file(i + 1)));
        }
        text
    };
    let called = (1..=depth).map(|i| (file(i), text(i))).collect();
    (load(&text(0)), Table(called))
}

#[test]
fn call_trees_past_githubs_limits_are_refused_before_they_are_planned() {
    // Nine levels of calls below the caller are allowed, ten are not.
    let (caller, table) = call_chain(9, 1);
    assert!(plan_workflow_calling(&caller, &Object::new(), &table).is_ok());
    let (caller, table) = call_chain(10, 1);
    let err = plan_workflow_calling(&caller, &Object::new(), &table).unwrap_err();
    assert_eq!(
        err.to_string(),
        ".github/workflows/t.yml:6:11: Nested reusable workflow depth exceeded 9. Call reusable workflows at most 9 levels below this workflow; a workflow that calls itself, directly or through others, never ends."
    );
    // Ten files, each calling the next from four jobs: 4^9 = 262,144 leaf jobs, which
    // planning took 22 s and 400 MB to expand.
    let (caller, table) = call_chain(9, 4);
    let err = plan_workflow_calling(&caller, &Object::new(), &table).unwrap_err();
    assert_eq!(
        limit(&err),
        "The workflow may not contain more than 256 jobs"
    );
    assert!(
        err.to_string()
            .starts_with(".github/workflows/t.yml:6:11: "),
        "{err}"
    );
    // Callers count: 128 calls of a one-job workflow are 256 jobs, 129 are 258.
    let (caller, table) = call_chain(1, 128);
    assert!(plan_workflow_calling(&caller, &Object::new(), &table).is_ok());
    let (caller, table) = call_chain(1, 129);
    let err = plan_workflow_calling(&caller, &Object::new(), &table).unwrap_err();
    assert_eq!(
        limit(&err),
        "The workflow may not contain more than 256 jobs"
    );
}

#[test]
fn more_than_fifty_different_called_workflows_are_refused() {
    let file = |i: usize| format!("./.github/workflows/c{i}.yml");
    let callee = "on: workflow_call\njobs:\n  one:\n    runs-on: x\n    steps: [run: x]\n";
    for (count, ok) in [(50, true), (51, false)] {
        let mut text = String::from("on: push\njobs:\n");
        for i in 0..count {
            text.push_str(&format!("  j{i}:\n    uses: {}\n", file(i)));
        }
        let called = (0..count).map(|i| (file(i), callee.to_string())).collect();
        let result = plan_workflow_calling(&load(&text), &Object::new(), &Table(called));
        match result {
            Ok(_) => assert!(ok, "{count} called workflows passed"),
            Err(e) => {
                assert!(!ok, "{e}");
                assert_eq!(limit(&e), "The maximum file count of 51 has been exceeded");
                assert!(
                    e.to_string()
                        .starts_with(".github/workflows/t.yml:104:11: "),
                    "{e}"
                );
            }
        }
    }
}

const REUSABLE: &str = "on:
  workflow_call:
    inputs:
      targets: {type: string, required: true}
      flavour: {type: string, default: plain}
jobs:
  prep:
    runs-on: ubuntu-latest
    steps: [{run: echo}]
  build:
    needs: prep
    runs-on: ubuntu-latest
    strategy:
      matrix:
        target: ${{ fromJSON(inputs.targets) }}
    steps: [{run: echo}]
";

#[test]
fn a_matrix_that_fails_on_an_input_nobody_gave_is_computed_at_run_time() {
    let mut contexts = Object::new();
    contexts.insert("inputs", Value::object(Object::new()));
    let plan = plan_workflow(&load(REUSABLE), &contexts).unwrap();
    assert_eq!(plan.stages[0][0].id, "prep");
    let build = &plan.stages[1][0];
    let Legs::Deferred { reason } = &build.legs else {
        panic!("build is deferred: {:?}", build.legs);
    };
    assert_eq!(
        reason,
        "`fromJSON(inputs.targets)` reads inputs.targets, which has a value only at run time"
    );
    assert_eq!(build.name, "build");
    // Given, the input expands the matrix.
    let mut inputs = Object::new();
    inputs.insert("targets", Value::from("[\"x\", \"y\"]"));
    contexts.insert("inputs", Value::object(inputs));
    let plan = plan_workflow(&load(REUSABLE), &contexts).unwrap();
    let Legs::Matrix(legs) = &plan.stages[1][0].legs else {
        panic!("build has legs");
    };
    assert_eq!(legs[1].name, "build (y)");
    // A value the plan has that still fails is the workflow's problem.
    let mut inputs = Object::new();
    inputs.insert("targets", Value::from("not json"));
    contexts.insert("inputs", Value::object(inputs));
    assert!(matches!(
        plan_workflow(&load(REUSABLE), &contexts),
        Err(PlanError::MatrixExpression { .. })
    ));
}

#[test]
fn job_names_with_expressions_are_evaluated_per_leg() {
    let text = "on: push
jobs:
  plain:
    name: Test
    runs-on: x
    strategy:
      matrix: {os: [a, b], node: [1]}
    steps: [{run: echo}]
  named:
    name: Test ${{ matrix.os }} node ${{ matrix.node }} (${{ strategy.job-index }}/${{ strategy.job-total }})
    runs-on: x
    strategy:
      matrix: {os: [a, b], node: [1]}
    steps: [{run: echo}]
  single:
    name: Deploy ${{ github.event_name }}
    runs-on: x
    steps: [{run: echo}]
  later:
    name: After ${{ needs.single.outputs.env }}
    needs: single
    runs-on: x
    steps: [{run: echo}]
";
    let mut github = Object::new();
    github.insert("event_name", Value::from("push"));
    let mut contexts = Object::new();
    contexts.insert("github", Value::object(github));
    let plan = plan_workflow(&load(text), &contexts).unwrap();
    let names = |job: &PlannedJob| match &job.legs {
        Legs::Matrix(legs) => legs.iter().map(|l| l.name.clone()).collect::<Vec<_>>(),
        _ => vec![job.name.clone()],
    };
    let stage = &plan.stages[0];
    assert_eq!(names(&stage[0]), ["Test (a, 1)", "Test (b, 1)"]);
    assert_eq!(
        names(&stage[1]),
        ["Test a node 1 (0/2)", "Test b node 1 (1/2)"]
    );
    assert_eq!(stage[1].name, "named");
    assert_eq!(names(&stage[2]), ["Deploy push"]);
    // `needs` outputs are unknown before the run: the name stays as written.
    assert_eq!(
        names(&plan.stages[1][0]),
        ["After ${{ needs.single.outputs.env }}"]
    );
}
