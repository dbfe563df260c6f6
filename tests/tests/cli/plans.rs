//! `list`, `exec -l` and `validate` on workflows as they are written in real repositories:
//! matrices that read inputs nobody gave, job names with `${{ matrix.* }}`, and problems
//! inside multi-line `if:` blocks, printed one line each.

use super::cli::{hybrid_runner, write};

fn out(o: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

const REUSABLE: &str = "name: reuse
on:
  workflow_call:
    inputs:
      targets:
        type: string
        required: true
jobs:
  prep:
    runs-on: ubuntu-latest
    steps:
      - run: echo prep
  build:
    needs: prep
    runs-on: ubuntu-latest
    strategy:
      matrix:
        target: ${{ fromJSON(inputs.targets) }}
    steps:
      - run: echo ${{ matrix.target }}
";

#[test]
fn list_keeps_a_reusable_workflow_whose_matrix_reads_an_input_nobody_gave() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".github/workflows/reuse.yml", REUSABLE);
    let o = hybrid_runner(dir.path(), &["list"]);
    let (stdout, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stderr, "");
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .skip(1)
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(rows[0][..3], ["0", "prep", "prep"], "{stdout}");
    assert_eq!(
        rows[1][..3],
        ["1", "build", "build (matrix computed at run time)"],
        "{stdout}"
    );
    let o = hybrid_runner(dir.path(), &["list", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&out(&o).0).unwrap();
    let build = &json["workflows"][0]["stages"][1][0];
    assert_eq!(build["id"], "build");
    assert_eq!(
        build["matrix_deferred"],
        "`fromJSON(inputs.targets)` reads inputs.targets, which has a value only at run time"
    );
}

const NAMED: &str = "on: push
jobs:
  test:
    name: Test on ${{ matrix.os }} node ${{ matrix.node }}
    runs-on: ubuntu-latest
    strategy:
      matrix:
        os: [ubuntu, debian]
        node: [18]
    steps:
      - run: echo hi
  lint:
    name: Lint
    runs-on: ubuntu-latest
    strategy:
      matrix:
        os: [ubuntu]
    steps:
      - run: echo hi
  deploy:
    name: Deploy on ${{ github.event_name }}
    runs-on: ubuntu-latest
    steps:
      - run: echo hi
";

#[test]
fn list_and_exec_list_name_each_run_as_github_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".github/workflows/ci.yml", NAMED);
    for args in [&["list"][..], &["exec", "-l"]] {
        let o = hybrid_runner(dir.path(), args);
        let (stdout, stderr) = out(&o);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {stdout}{stderr}");
        let names: Vec<&str> = stdout
            .lines()
            .skip(1)
            .filter_map(|l| {
                l.split("  ")
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .nth(2)
            })
            .collect();
        assert_eq!(
            names,
            [
                "Test on ubuntu node 18",
                "Test on debian node 18",
                "Lint (ubuntu)",
                "Deploy on push"
            ],
            "{args:?}: {stdout}"
        );
    }
}

const MULTI_LINE_IF: &str = "on: push
jobs:
  deploy:
    runs-on: ubuntu-latest
    if: >
      github.event_name == 'push' &&
        (github.ref == 'refs/heads/main' ||
         github.ref == 'refs/heads/dev') &&
      nosuchfunction(1)
    steps:
      - run: echo hi
";

#[test]
fn a_problem_in_a_multi_line_if_is_one_line_of_text() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".github/workflows/ci.yml", MULTI_LINE_IF);
    let o = hybrid_runner(dir.path(), &["validate"]);
    let (stdout, _) = out(&o);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout
            .starts_with(".github/workflows/ci.yml:5:9: Unrecognized function: 'nosuchfunction'."),
        "{stdout}"
    );
    assert!(
        stdout.contains("within expression: github.event_name == 'push' && (github.ref == 'refs/heads/main' || github.ref == 'refs/heads/dev') && nosuchfunction(1)."),
        "{stdout}"
    );
    // `--format json` keeps the expression as written.
    let o = hybrid_runner(dir.path(), &["validate", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(out(&o).0.trim()).unwrap();
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("&&\n  (github.ref == 'refs/heads/main' ||\n   github.ref"),
        "{json}"
    );
    // `list` and `exec` print the same problem on one line of stderr.
    for args in [&["list"][..], &["exec", "-n"]] {
        let o = hybrid_runner(dir.path(), args);
        let (_, stderr) = out(&o);
        let problems: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("nosuchfunction"))
            .collect();
        assert_eq!(problems.len(), 1, "{args:?}: {stderr}");
        assert!(problems[0].ends_with("nosuchfunction(1). Functions available here: 'contains', 'startsWith', 'endsWith', 'format', 'join', 'toJSON', 'fromJSON', 'case', 'success', 'always', 'failure', 'cancelled'."), "{args:?}: {stderr}");
    }
}

#[test]
fn a_plan_error_is_one_line_naming_the_job() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        ".github/workflows/ci.yml",
        "on: push\njobs:\n  a:\n    runs-on: x\n    strategy:\n      matrix:\n        os: ${{ fromJSON('{}') }}\n    steps: [{run: echo}]\n",
    );
    let o = hybrid_runner(dir.path(), &["list"]);
    let (_, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr.lines().next().unwrap_or_default(),
        ".github/workflows/ci.yml: error when evaluating 'strategy' for job 'a': Matrix vector 'os' must be a sequence of values, not Object",
        "{stderr}"
    );
}
