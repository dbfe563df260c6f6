//! Exit codes and `-j` job selection.

use super::*;

const PASS_FAIL: &str = "on: push
jobs:
  good:
    runs-on: ubuntu-latest
    steps:
      - run: echo good
  bad:
    runs-on: ubuntu-latest
    steps:
      - run: exit 4
";

#[test]
fn exit_zero_when_every_job_succeeds() {
    let repo = Repo::with(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo one\n  b:\n    needs: a\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo two\n",
    );
    let run = repo.json(&[]);
    run.assert_code(0);
    assert_eq!(run.jobs(), lines(&["a=success", "b=success"]));
    assert_eq!(run.output("a"), lines(&["one"]));
    // Human output too: a table at the end.
    let human = repo.exec(&[]);
    human.assert_code(0);
    assert!(human.stdout.contains("two"), "{}", human.all());
}

#[test]
fn exit_one_when_a_job_fails() {
    let repo = Repo::with(PASS_FAIL);
    let run = repo.json(&[]);
    run.assert_code(1);
    assert_eq!(run.jobs(), lines(&["bad=failure", "good=success"]));
    assert_eq!(
        run.annotations("bad"),
        lines(&["error: Process completed with exit code 4."])
    );
}

#[test]
fn exit_two_for_an_invalid_workflow_with_its_position() {
    let repo = Repo::with(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n        shel: bash\n",
    );
    let run = repo.exec(&["-W", ".github/workflows/ci.yml"]);
    run.assert_code(2);
    assert_eq!(run.stdout, "", "{}", run.all());
    let first = run.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(".github/workflows/ci.yml:7:9: "),
        "expected path:line:col, got {}",
        run.all()
    );
    assert!(first.contains("shel"), "{first}");
    // The same from the default folder.
    let run = repo.exec(&[]);
    run.assert_code(2);
    assert!(
        run.stderr.starts_with(".github/workflows/ci.yml:7:9: "),
        "{}",
        run.all()
    );
}

#[test]
fn exit_two_for_bad_flags() {
    let repo = Repo::with(PASS_FAIL);
    for args in [
        &["--no-such-flag"][..],
        &["--env", "NOEQUALS"],
        &["--matrix", "novalue"],
        &["--concurrency", "many"],
        &["-s", "HYBRID_RUNNER_TEST_UNSET_SECRET"],
        &["-W", "missing.yml"],
    ] {
        let run = repo.exec(args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.all());
        assert!(!run.stderr.is_empty(), "{args:?}: no message");
        assert!(
            !run.stdout.contains("good"),
            "{args:?} ran jobs: {}",
            run.all()
        );
    }
}

#[test]
fn job_flag_runs_the_job_and_what_it_needs_only() {
    let repo = Repo::with(
        "on: push
jobs:
  base:
    runs-on: ubuntu-latest
    steps:
      - run: echo base
  mid:
    needs: base
    runs-on: ubuntu-latest
    steps:
      - run: echo mid
  top:
    needs: mid
    runs-on: ubuntu-latest
    steps:
      - run: echo top
  other:
    runs-on: ubuntu-latest
    steps:
      - run: echo other
",
    );
    let run = repo.json(&["-j", "mid"]);
    run.assert_code(0);
    assert_eq!(run.jobs(), lines(&["base=success", "mid=success"]));
    let run = repo.json(&["-j", "nope"]);
    run.assert_code(2);
    assert!(run.stderr.contains("nope"), "{}", run.all());
    assert!(run.events().is_empty(), "{}", run.all());
}

#[test]
fn a_huge_github_env_value_fails_the_next_step_with_a_clear_error() {
    let repo = Repo::with(
        "on: push
jobs:
  big:
    runs-on: ubuntu-latest
    steps:
      - run: printf 'BIG=%0200000d\\n' 0 >> \"$GITHUB_ENV\"
      - run: echo never
",
    );
    let run = repo.json(&[]);
    run.assert_code(1);
    assert_eq!(run.job("big").as_deref(), Some("failure"));
    let all = run.all();
    assert!(
        all.contains("too large for the kernel")
            && all.contains("environment variable `BIG` with 200005 bytes"),
        "{all}"
    );
    assert!(!all.contains("install it or pick another shell"), "{all}");
}
