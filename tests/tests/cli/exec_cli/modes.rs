//! `-n` dry run, `-l` list, `--json` events.

use super::*;

const MODES: &str = "on: push
jobs:
  make:
    runs-on: ubuntu-latest
    steps:
      - run: touch created.txt
  check:
    needs: make
    runs-on: ubuntu-latest
    steps:
      - run: test -f created.txt
";

#[test]
fn dry_run_starts_no_process() {
    let repo = Repo::with(MODES);
    let run = repo.json(&["-n"]);
    run.assert_code(0);
    assert!(!repo.path().join("created.txt").exists());
    assert_eq!(run.jobs(), lines(&["check=success", "make=success"]));
    assert_eq!(run.steps("make"), lines(&["__run:success/success"]));
    assert!(run.output("make").is_empty());
    assert_eq!(run.notes("make"), lines(&["dry run: not started"]));
    let human = repo.exec(&["--dry-run"]);
    human.assert_code(0);
    assert!(!repo.path().join("created.txt").exists());
    // For real, the file appears.
    let real = repo.json(&[]);
    real.assert_code(0);
    assert!(repo.path().join("created.txt").exists());
}

#[test]
fn list_shows_jobs_without_running_them() {
    let repo = Repo::with(MODES);
    let run = repo.exec(&["-l"]);
    run.assert_code(0);
    let rows: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0][..3], ["Stage", "Job", "ID"], "{}", run.all());
    assert_eq!(rows[1][..2], ["0", "make"], "{}", run.all());
    assert_eq!(rows[2][..2], ["1", "check"], "{}", run.all());
    assert_eq!(rows.len(), 3, "{}", run.all());
    assert!(!repo.path().join("created.txt").exists());
}

#[test]
fn json_lines_parse_and_tell_the_whole_story() {
    let repo = Repo::with(MODES);
    let run = repo.json(&[]);
    run.assert_code(0);
    let kinds: Vec<String> = run
        .events()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        lines(&[
            "job_started",
            "step_started",
            "step_finished",
            "job_finished",
            "job_started",
            "step_started",
            "step_finished",
            "job_finished",
        ])
    );
    let finished = run.events_of("step_finished");
    assert_eq!(finished[0]["job"]["id"], "make");
    assert_eq!(finished[0]["step"]["name"], "Run touch created.txt");
    assert_eq!(finished[0]["step"]["index"], 0);
    assert!(finished[0]["duration"].is_number());
    assert_eq!(finished[1]["job"]["id"], "check");
    // Nothing but JSON on stdout.
    assert!(run.stdout.lines().all(|l| l.starts_with('{')));
}

const FROM_JOB_OUTPUTS: &str = "on: push
jobs:
  gen:
    runs-on: ubuntu-latest
    outputs:
      matrix: ${{ steps.s.outputs.matrix }}
      go: ${{ steps.s.outputs.go }}
    steps:
      - id: s
        run: |
          echo 'matrix={\"os\":[\"a\",\"b\"]}' >> $GITHUB_OUTPUT
          echo go=true >> $GITHUB_OUTPUT
  use:
    needs: gen
    name: Use ${{ matrix.os }}
    runs-on: ubuntu-latest
    strategy:
      matrix: ${{ fromJson(needs.gen.outputs.matrix) }}
    steps:
      - run: echo ${{ matrix.os }}
  gated:
    needs: gen
    if: fromJSON(needs.gen.outputs.go)
    runs-on: ubuntu-latest
    steps:
      - run: echo gated
  after:
    needs: use
    runs-on: ubuntu-latest
    steps:
      - run: echo after
";

#[test]
fn a_dry_run_marks_what_only_a_real_run_has_instead_of_failing() {
    let repo = Repo::with(FROM_JOB_OUTPUTS);
    let run = repo.json(&["-n"]);
    run.assert_code(0);
    assert_eq!(
        run.jobs(),
        lines(&[
            "after=success",
            "gated=success",
            "gen=success",
            "use (matrix computed at run time)=success",
        ])
    );
    assert_eq!(
        run.annotations("use"),
        lines(&[
            "notice: dry run: matrix not expanded: `fromJson(needs.gen.outputs.matrix)` reads needs.gen.outputs.matrix, which has a value only at run time"
        ])
    );
    assert_eq!(
        run.notes("gated"),
        lines(&[
            "dry run: if: `fromJSON(needs.gen.outputs.go)` reads needs.gen.outputs.go, which has a value only at run time; the job runs as if it held",
            "dry run: not started",
        ])
    );
    // The human output says which job it could not expand, in the recap too.
    let human = repo.exec(&["-n", "--concurrency", "1"]);
    human.assert_code(0);
    assert!(
        human
            .stdout
            .contains("  use (matrix computed at run time): notice: dry run: matrix not expanded"),
        "{}",
        human.all()
    );
    // A real run has the values: the legs run, named by `name:`.
    let real = repo.json(&[]);
    real.assert_code(0);
    assert_eq!(
        real.jobs(),
        lines(&[
            "Use a=success",
            "Use b=success",
            "after=success",
            "gated=success",
            "gen=success",
        ])
    );
}

const CALLABLE: &str = "on:
  workflow_call:
    inputs:
      targets: {type: string, required: true}
jobs:
  build:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        target: ${{ fromJSON(inputs.targets) }}
    steps:
      - run: echo ${{ matrix.target }}
";

#[test]
fn a_dry_run_of_a_called_workflow_without_its_inputs_marks_its_matrix() {
    let repo = Repo::with(CALLABLE);
    let run = repo.json(&["-n", "-E", "workflow_call"]);
    run.assert_code(0);
    assert_eq!(
        run.annotations("build"),
        lines(&[
            "notice: dry run: matrix not expanded: `fromJSON(inputs.targets)` reads inputs.targets, which has a value only at run time"
        ])
    );
    // Given, the input expands the matrix; a real run without it still fails, as on GitHub.
    let given = repo.json(&["-n", "-E", "workflow_call", "--input", "targets=[\"x\"]"]);
    given.assert_code(0);
    assert_eq!(given.jobs(), lines(&["build (x)=success"]));
    let real = repo.json(&["-E", "workflow_call"]);
    real.assert_code(1);
    assert_eq!(real.jobs(), lines(&["build=failure"]));
}

#[test]
fn a_name_that_cannot_be_evaluated_fails_its_run_as_on_github() {
    let repo = Repo::with(
        "on: push\njobs:\n  j:\n    name: ${{ fromJSON('not json') }}\n    runs-on: ubuntu-latest\n    strategy:\n      matrix:\n        n: [1]\n    steps:\n      - run: echo hi\n",
    );
    let run = repo.json(&[]);
    run.assert_code(1);
    assert_eq!(run.jobs(), lines(&["j (1)=failure"]));
    let notes = run.notes("j");
    assert!(
        notes[0]
            .starts_with("error: Error when evaluating 'name' for job 'j'. Error parsing fromJson"),
        "{notes:?}"
    );
}

#[test]
fn a_dry_run_gives_a_called_workflow_no_value_for_an_input_from_job_outputs() {
    let repo = Repo::with(
        "on: push
jobs:
  gen:
    runs-on: ubuntu-latest
    outputs:
      list: ${{ steps.s.outputs.list }}
    steps:
      - id: s
        run: echo 'list=[\"x\",\"y\"]' >> $GITHUB_OUTPUT
  call:
    needs: gen
    uses: ./.github/workflows/build.yml
    with:
      targets: ${{ needs.gen.outputs.list }}
",
    );
    repo.write(".github/workflows/build.yml", CALLABLE);
    let run = repo.json(&["-n", "-W", ".github/workflows/ci.yml"]);
    run.assert_code(0);
    assert_eq!(
        run.annotations("call/build"),
        lines(&[
            "notice: dry run: matrix not expanded: `fromJSON(inputs.targets)` reads inputs.targets, which has a value only at run time"
        ])
    );
    let real = repo.json(&["-W", ".github/workflows/ci.yml"]);
    real.assert_code(0);
    assert_eq!(
        real.jobs(),
        lines(&[
            "call / build (x)=success",
            "call / build (y)=success",
            "call=success",
            "gen=success"
        ])
    );
}

const STEPS_FROM_JOB_OUTPUTS: &str = "on: push
jobs:
  gen:
    runs-on: ubuntu-latest
    outputs:
      list: ${{ steps.s.outputs.list }}
      flag: ${{ steps.s.outputs.flag }}
      os: ${{ steps.s.outputs.os }}
      first: ${{ fromJSON(steps.s.outputs.list)[0] }}
    steps:
      - id: s
        run: |
          echo 'list=[\"x\",\"y\"]' >> $GITHUB_OUTPUT
          echo flag=true >> $GITHUB_OUTPUT
          echo os=ubuntu-latest >> $GITHUB_OUTPUT
          echo 'MATRIX=[\"m\"]' >> $GITHUB_ENV
      - run: echo ${{ fromJSON(env.MATRIX)[0] }}
  use:
    needs: gen
    runs-on: ubuntu-latest
    env:
      LIST: ${{ needs.gen.outputs.list }}
    steps:
      - name: gated
        if: fromJSON(needs.gen.outputs.flag)
        run: echo gated
      - id: prev
        run: echo 'x=[\"a\"]' >> $GITHUB_OUTPUT
      - name: first
        run: echo ${{ fromJSON(needs.gen.outputs.list)[0] }} ${{ fromJSON(env.LIST)[1] }}
      - name: from prev
        env:
          A: ${{ fromJSON(steps.prev.outputs.x)[0] }}
        run: echo $A
      - name: action
        uses: ./.github/actions/greet
        with:
          who: ${{ fromJSON(needs.gen.outputs.list)[1] }}
  plat:
    needs: gen
    runs-on: ${{ needs.gen.outputs.os }}
    steps:
      - run: echo on ${{ needs.gen.outputs.os }}
";

const GREET: &str = "name: greet
inputs:
  who: {required: true}
runs:
  using: composite
  steps:
    - run: echo hello ${{ inputs.who }}
      shell: bash
";

/// "`<expression>` reads <value>, which has a value only at run time".
fn reads(expression: &str, value: &str) -> String {
    format!("`{expression}` reads {value}, which has a value only at run time")
}

#[test]
fn a_dry_run_runs_steps_that_read_what_only_a_real_run_has() {
    let repo = Repo::with(STEPS_FROM_JOB_OUTPUTS);
    repo.write(".github/actions/greet/action.yml", GREET);
    let run = repo.json(&["-n"]);
    run.assert_code(0);
    assert_eq!(
        run.jobs(),
        lines(&["gen=success", "plat=success", "use=success"])
    );
    let not_started = "dry run: not started".to_string();
    let list = "needs.gen.outputs.list";
    assert_eq!(
        run.notes("gen"),
        [
            not_started.clone(),
            format!(
                "dry run: run: {}",
                reads("fromJSON(env.MATRIX)[0]", "env.MATRIX")
            ),
            not_started.clone(),
            format!(
                "dry run: output 'first': {}",
                reads("fromJSON(steps.s.outputs.list)[0]", "steps.s.outputs.list")
            ),
        ]
    );
    assert_eq!(
        run.notes("use"),
        [
            format!(
                "dry run: if: {}; the step runs as if it held",
                reads("fromJSON(needs.gen.outputs.flag)", "needs.gen.outputs.flag")
            ),
            not_started.clone(),
            not_started.clone(),
            format!(
                "dry run: run: {}",
                reads("fromJSON(needs.gen.outputs.list)[0]", list)
            ),
            not_started.clone(),
            format!(
                "dry run: env: {}",
                reads("fromJSON(steps.prev.outputs.x)[0]", "steps.prev.outputs.x")
            ),
            not_started.clone(),
            format!(
                "dry run: with: {}",
                reads("fromJSON(needs.gen.outputs.list)[1]", list)
            ),
            not_started.clone(),
        ]
    );
    assert_eq!(
        run.steps("use"),
        lines(&[
            "__run:success/success",
            "prev:success/success",
            "__run_2:success/success",
            "__run_3:success/success",
            "__self:success/success",
        ])
    );
    assert_eq!(
        run.notes("plat"),
        [
            format!(
                "dry run: runs-on: {}; the job runs as if on this host",
                reads("needs.gen.outputs.os", "needs.gen.outputs.os")
            ),
            not_started,
        ]
    );
    // A real run has every value.
    let real = repo.json(&[]);
    real.assert_code(0);
    assert_eq!(real.output("gen"), lines(&["m"]));
    assert_eq!(real.output("use"), lines(&["gated", "x y", "a", "hello y"]));
    assert_eq!(real.output("plat"), lines(&["on ubuntu-latest"]));
}

#[test]
fn a_dry_run_still_fails_what_fails_for_a_reason_of_its_own() {
    let repo = Repo::with(
        "on: push
jobs:
  gen:
    runs-on: ubuntu-latest
    outputs:
      list: ${{ steps.s.outputs.list }}
    steps:
      - id: s
        run: echo 'list=[\"x\"]' >> $GITHUB_OUTPUT
  bad-run:
    runs-on: ubuntu-latest
    steps:
      - run: echo ${{ fromJSON('{bad') }}
  bad-if:
    runs-on: ubuntu-latest
    steps:
      - if: fromJSON('{bad')
        run: echo never
  bad-beside-unknown:
    needs: gen
    runs-on: ubuntu-latest
    steps:
      - run: echo ${{ fromJSON(needs.gen.outputs.list)[0] }} ${{ fromJSON('{bad') }}
  bad-env:
    runs-on: ubuntu-latest
    env:
      X: ${{ fromJSON(github.event_name) }}
    steps:
      - run: echo $X
",
    );
    let expected = lines(&[
        "bad-beside-unknown=failure",
        "bad-env=failure",
        "bad-if=failure",
        "bad-run=failure",
        "gen=success",
    ]);
    let dry = repo.json(&["-n"]);
    dry.assert_code(1);
    assert_eq!(dry.jobs(), expected);
    for job in ["bad-run", "bad-beside-unknown"] {
        let annotations = dry.annotations(job);
        assert!(
            annotations[0].starts_with("error: run: Error parsing fromJson")
                && annotations[0].ends_with("fromJSON('{bad')"),
            "{job}: {annotations:?}"
        );
    }
    assert!(
        dry.annotations("bad-if")[0].starts_with("error: if: Error parsing fromJson"),
        "{}",
        dry.all()
    );
    assert!(
        dry.notes("bad-env")[0].starts_with("error: job env: Error parsing fromJson"),
        "{}",
        dry.all()
    );
    // As a real run fails them.
    let real = repo.json(&[]);
    real.assert_code(1);
    assert_eq!(real.jobs(), expected);
}

#[test]
fn a_dry_run_leaves_out_a_called_workflows_output_that_fails_on_its_jobs_outputs() {
    let repo = Repo::with(
        "on: push
jobs:
  call:
    uses: ./.github/workflows/lib.yml
  after:
    needs: call
    runs-on: ubuntu-latest
    steps:
      - run: echo ${{ needs.call.outputs.first }}
",
    );
    repo.write(
        ".github/workflows/lib.yml",
        "on:
  workflow_call:
    outputs:
      first:
        value: ${{ fromJSON(jobs.build.outputs.list)[0] }}
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      list: ${{ steps.s.outputs.list }}
    steps:
      - id: s
        run: echo 'list=[\"x\"]' >> $GITHUB_OUTPUT
",
    );
    let args = ["-W", ".github/workflows/ci.yml"];
    let dry = repo.json(&["-n", args[0], args[1]]);
    dry.assert_code(0);
    assert_eq!(
        dry.notes("call"),
        [format!(
            "dry run: output 'first': {}",
            reads(
                "fromJSON(jobs.build.outputs.list)[0]",
                "jobs.build.outputs.list"
            )
        )]
    );
    let real = repo.json(&args);
    real.assert_code(0);
    assert_eq!(real.output("after"), lines(&["x"]));
}
