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
