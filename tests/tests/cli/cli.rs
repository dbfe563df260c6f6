//! The `hybrid-runner` binary as users call it: exit codes, output formats, errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot read its data should fail loudly

use std::path::Path;
use std::process::Output;

pub(super) fn hybrid_runner(dir: &Path, args: &[&str]) -> Output {
    harness::cli::command()
        .args(args)
        .current_dir(dir)
        .env_remove("GITHUB_WORKSPACE")
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub(super) fn write(dir: &Path, path: &str, text: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const GOOD: &str =
    "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n";

const CYCLE: &str = "on: push
jobs:
  start:
    runs-on: ubuntu-latest
    steps:
      - run: echo 0
  one:
    needs: two
    runs-on: ubuntu-latest
    steps:
      - run: echo 1
  two:
    needs: one
    runs-on: ubuntu-latest
    steps:
      - run: echo 2
";

#[test]
fn validate_clean_workflows_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".github/workflows/ci.yml", GOOD);
    write(dir.path(), ".gitea/workflows/other.yaml", GOOD);
    let out = hybrid_runner(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("2 workflow files checked, 0 problems"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn validate_reports_path_line_col_and_exits_one() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".github/workflows/cycle.yml", CYCLE);
    write(dir.path(), ".github/workflows/ok.yml", GOOD);
    let out = hybrid_runner(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(".github/workflows/cycle.yml:8:12: "),
        "expected path:line:col, got {text}"
    );
    assert!(text.contains("cycle"), "{text}");
    assert!(!text.contains("ok.yml"), "{text}");
}

#[test]
fn validate_unknown_key_names_the_key_and_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let bad = "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    stesp:\n      - run: x\n";
    write(dir.path(), "wf.yml", bad);
    let out = hybrid_runner(dir.path(), &["validate", "wf.yml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("wf.yml:5:5: "), "{}", stdout(&out));
    assert!(stdout(&out).contains("stesp"), "{}", stdout(&out));
}

#[test]
fn validate_github_and_json_formats() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "cycle.yml", CYCLE);
    let out = hybrid_runner(dir.path(), &["validate", "--format", "github", "cycle.yml"]);
    assert!(
        stdout(&out).starts_with("::error file=cycle.yml,line=8,col=12::"),
        "{}",
        stdout(&out)
    );
    let out = hybrid_runner(dir.path(), &["validate", "--format", "json", "cycle.yml"]);
    let first: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(first["file"], "cycle.yml");
    assert_eq!(first["line"], 8);
}

#[test]
fn validate_usage_errors_exit_two() {
    let dir = tempfile::tempdir().unwrap();
    let out = hybrid_runner(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error: no workflows found"),
        "{}",
        stderr(&out)
    );
    let out = hybrid_runner(dir.path(), &["validate", "missing.yml"]);
    assert_eq!(out.status.code(), Some(2));
    let out = hybrid_runner(dir.path(), &["validate", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn workflow_links_out_of_the_repository_are_refused_and_never_read() {
    let outside = tempfile::tempdir().unwrap();
    let credentials = outside.path().join("git-credentials");
    std::fs::write(&credentials, "https://user:S3CRET-CREDENTIAL@example.com\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".git")).unwrap();
    write(dir.path(), ".github/workflows/ok.yml", GOOD);
    // A link inside the repository stays allowed.
    write(dir.path(), "shared/ci.yml", GOOD);
    std::os::unix::fs::symlink(
        "../../shared/ci.yml",
        dir.path().join(".github/workflows/shared.yml"),
    )
    .unwrap();
    std::os::unix::fs::symlink(&credentials, dir.path().join(".github/workflows/x.yml")).unwrap();
    for args in [
        &["validate"][..],
        &["list"],
        &["exec", "-n"],
        &["validate", ".github/workflows/x.yml"],
    ] {
        let out = hybrid_runner(dir.path(), args);
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {all}");
        assert!(all.contains(".github/workflows/x.yml"), "{args:?}: {all}");
        assert!(all.contains("symbolic link"), "{args:?}: {all}");
        assert!(!all.contains("S3CRET"), "{args:?} leaked the file: {all}");
    }
    std::fs::remove_file(dir.path().join(".github/workflows/x.yml")).unwrap();
    let out = hybrid_runner(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn expr_prints_json_results() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("1 == 1", "true"),
        ("-0", "0"),
        ("0.1 + 0", ""),
        ("format('{0}-{1}', 1.50, 'x')", "\"1.5-x\""),
        ("fromJSON('[1, \"a\", null]')", "[1,\"a\",null]"),
        ("NaN", "\"NaN\""),
        ("-Infinity", "\"-Infinity\""),
        ("'' || 'fallback'", "\"fallback\""),
    ];
    for (expr, want) in cases {
        let out = hybrid_runner(dir.path(), &["expr", expr]);
        if want.is_empty() {
            // `+` is not an operator: a lexing or parsing error, exit 1.
            assert_eq!(out.status.code(), Some(1), "{expr}");
            continue;
        }
        assert_eq!(out.status.code(), Some(0), "{expr}: {}", stderr(&out));
        assert_eq!(stdout(&out).trim(), want, "{expr}");
    }
}

#[test]
fn expr_uses_contexts_file_and_rejects_unknown_names() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "ctx.json",
        r#"{"github": {"ref": "refs/heads/main", "event": {"labels": [{"name": "a"}, {"name": "b"}]}}}"#,
    );
    let out = hybrid_runner(
        dir.path(),
        &[
            "expr",
            "--contexts",
            "ctx.json",
            "github.event.labels.*.name",
        ],
    );
    assert_eq!(stdout(&out).trim(), r#"["a","b"]"#, "{}", stderr(&out));
    let out = hybrid_runner(dir.path(), &["expr", "--contexts", "ctx.json", "env.X"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error: parsing: Unrecognized named-value: 'env'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn expr_errors_name_their_kind() {
    let dir = tempfile::tempdir().unwrap();
    let out = hybrid_runner(dir.path(), &["expr", "\"double\""]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error: lexing: "),
        "{}",
        stderr(&out)
    );
    let out = hybrid_runner(dir.path(), &["expr", "format('{0}')"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error: evaluation: "),
        "{}",
        stderr(&out)
    );
    let out = hybrid_runner(dir.path(), &["expr", "--contexts", "nope.json", "1"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn expr_hash_files_reads_the_workspace() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "lock/a.txt", "alpha");
    let out = hybrid_runner(dir.path(), &["expr", "hashFiles('lock/**')"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let digest = stdout(&out);
    assert_eq!(digest.trim().trim_matches('"').len(), 64, "{digest}");
    let out = hybrid_runner(dir.path(), &["expr", "hashFiles('nothing/**')"]);
    assert_eq!(stdout(&out).trim(), "\"\"");
}

const MATRIX: &str = "name: matrix demo
on: [push, pull_request]
jobs:
  lint:
    runs-on: ubuntu-latest
    steps:
      - run: echo lint
  test:
    needs: lint
    runs-on: ${{ matrix.os }}
    strategy:
      matrix:
        os: [ubuntu-latest, windows-latest]
        node: [18, 20]
        exclude:
          - os: windows-latest
            node: 18
    steps:
      - run: echo test
  deploy:
    needs: [test]
    if: github.ref == 'refs/heads/main'
    runs-on: ubuntu-latest
    steps:
      - run: echo deploy
";

#[test]
fn list_shows_stages_and_matrix_legs() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".github/workflows/m.yml", MATRIX);
    write(
        dir.path(),
        ".github/workflows/tag.yml",
        "on:\n  push:\n    tags: ['v*']\n  release:\njobs:\n  publish:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo\n",
    );
    let out = hybrid_runner(dir.path(), &["list", "-E", "pull_request"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("test (ubuntu-latest, 18)"), "{text}");
    assert!(text.contains("test (ubuntu-latest, 20)"), "{text}");
    assert!(text.contains("test (windows-latest, 20)"), "{text}");
    assert!(!text.contains("test (windows-latest, 18)"), "{text}");
    assert!(!text.contains("publish"), "{text}");
    let out = hybrid_runner(dir.path(), &["list", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let m = json["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["file"] == ".github/workflows/m.yml")
        .unwrap();
    let stages = m["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 3);
    assert_eq!(stages[0][0]["id"], "lint");
    assert_eq!(stages[1].as_array().unwrap().len(), 3);
    assert_eq!(stages[1][0]["matrix"]["os"], "ubuntu-latest");
    assert_eq!(stages[1][2]["runs_on"][0], "windows-latest");
    assert_eq!(stages[2][0]["id"], "deploy");
}

#[test]
fn list_expands_local_reusable_workflows() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        ".github/workflows/caller.yml",
        "on: push\njobs:\n  release:\n    uses: ./.github/workflows/build.yml\n    with:\n      arch: '[\"amd64\", \"arm64\"]'\n    secrets: inherit\n",
    );
    write(
        dir.path(),
        ".github/workflows/build.yml",
        "on:\n  workflow_call:\n    inputs:\n      arch:\n        type: string\n        required: true\njobs:\n  image:\n    runs-on: ubuntu-latest\n    strategy:\n      matrix:\n        arch: ${{ fromJSON(inputs.arch) }}\n    steps:\n      - run: echo ${{ matrix.arch }}\n",
    );
    let out = hybrid_runner(dir.path(), &["list", "-E", "push"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("release / image (amd64)"), "{text}");
    assert!(text.contains("release / image (arm64)"), "{text}");
    // A call with an input the callee does not declare is reported and exits 1.
    write(
        dir.path(),
        ".github/workflows/caller.yml",
        "on: push\njobs:\n  release:\n    uses: ./.github/workflows/build.yml\n    with:\n      arch: '[]'\n      colour: red\n",
    );
    let out = hybrid_runner(dir.path(), &["list", "-E", "push"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot call"), "{}", stderr(&out));
    assert!(stderr(&out).contains("colour"), "{}", stderr(&out));
}

/// Each file is read by its folder's platform; `--dialect` reads all by one, and a refusal
/// names whose syntax the file used.
#[test]
fn validate_reads_each_folder_by_its_platform_and_dialect_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let forgejo = "on: push\nenable-email-notifications: true\njobs:\n  a:\n    runs-on: docker\n    steps:\n      - run: echo ${{ forge.ref }}\n";
    write(dir.path(), ".forgejo/workflows/ci.yml", forgejo);
    write(dir.path(), ".github/workflows/ci.yml", GOOD);
    let out = hybrid_runner(dir.path(), &["validate"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("2 workflow files checked, 0 problems"),
        "{}",
        stderr(&out)
    );

    let out = hybrid_runner(
        dir.path(),
        &[
            "validate",
            "--dialect",
            "github",
            ".forgejo/workflows/ci.yml",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains(
            ".forgejo/workflows/ci.yml:2:1: Unexpected value 'enable-email-notifications'"
        ),
        "{text}"
    );
    assert!(text.contains("is Forgejo syntax"), "{text}");
    assert!(
        text.contains("Forgejo's name for the github context"),
        "{text}"
    );

    let out = hybrid_runner(dir.path(), &["validate", "--dialect", "gitlab"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
