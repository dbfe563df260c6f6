//! Workflows that grow without bound in memory or time: an expression past GitHub's 1 MiB
//! bound, reusable-workflow trees past GitHub's limits, and inputs whose handling was
//! quadratic (thousands of steps, comments or jobs). Each fails or finishes as GitHub
//! would, and the rest of the run carries on.

use std::path::Path;

use super::cli::{hybrid_runner, write};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `format('{0}{0}{0}{0}', ...)` nested 40 times around `'x'`: 4^40 characters.
fn quadrupled() -> String {
    let mut e = "'x'".to_string();
    for _ in 0..40 {
        e = format!("format('{{0}}{{0}}{{0}}{{0}}', {e})");
    }
    e
}

const MEMORY_EXCEEDED: &str =
    "The maximum allowed memory size was exceeded while evaluating the following expression";

#[test]
fn an_expression_past_one_mebibyte_fails_alone_and_the_rest_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    // `expr`: an evaluation error, not an abort.
    let out = hybrid_runner(dir.path(), &["expr", &quadrupled()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).starts_with(&format!("error: evaluation: {MEMORY_EXCEEDED}: format(")),
        "{}",
        text(&out.stderr)
    );
    // In a matrix: `list` names the job and still lists the other workflow.
    write(
        dir.path(),
        ".github/workflows/big.yml",
        &format!(
            "on: push\njobs:\n  big:\n    runs-on: ubuntu-latest\n    strategy:\n      matrix:\n        v: ${{{{ fromJSON(format('[\"{{0}}\"]', {})) }}}}\n    steps:\n      - run: echo ${{{{ matrix.v }}}}\n",
            quadrupled()
        ),
    );
    write(
        dir.path(),
        ".github/workflows/small.yml",
        "on: push\njobs:\n  small:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo small\n",
    );
    let out = hybrid_runner(dir.path(), &["list"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("'big'"), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(MEMORY_EXCEEDED),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("small"), "{}", text(&out.stdout));
    // `exec -n`: the job fails with the message, the other job runs.
    let out = hybrid_runner(dir.path(), &["exec", "-n"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(all.contains(MEMORY_EXCEEDED), "{all}");
    assert!(all.contains("small"), "{all}");
}

/// Ten files `w0.yml` … `w9.yml`, each calling the next from four jobs: 4^9 = 262,144
/// jobs once expanded.
fn call_fan_out(dir: &Path) {
    for i in 0..10 {
        let mut body = String::from("on:\n  push:\n  workflow_call:\njobs:\n");
        if i == 9 {
            body.push_str("  leaf:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo\n");
        } else {
            for j in 0..4 {
                body.push_str(&format!(
                    "  c{j}:\n    uses: ./.github/workflows/w{}.yml\n",
                    i + 1
                ));
            }
        }
        write(dir, &format!(".github/workflows/w{i}.yml"), &body);
    }
}

#[test]
fn reusable_workflow_trees_past_githubs_limits_are_refused_before_they_expand() {
    let dir = tempfile::tempdir().unwrap();
    call_fan_out(dir.path());
    let jobs = ".github/workflows/w0.yml:6:11: The workflow may not contain more than 256 jobs";
    let out = hybrid_runner(dir.path(), &["list", "-W", ".github/workflows/w0.yml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(jobs), "{}", text(&out.stderr));
    let out = hybrid_runner(
        dir.path(),
        &["exec", "-n", "-W", ".github/workflows/w0.yml"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(jobs), "{}", text(&out.stderr));
    // A workflow that calls itself nests without end.
    write(
        dir.path(),
        ".github/workflows/self.yml",
        "on:\n  push:\n  workflow_call:\njobs:\n  again:\n    uses: ./.github/workflows/self.yml\n",
    );
    let out = hybrid_runner(
        dir.path(),
        &["exec", "-n", "-W", ".github/workflows/self.yml"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(
            ".github/workflows/self.yml:6:11: Nested reusable workflow depth exceeded 9."
        ),
        "{}",
        text(&out.stderr)
    );
}

// The sizes below took more than 10 s each before (release build; far longer in a debug
// one); each now finishes in well under a second. They check the result, never the time.

#[test]
fn validate_takes_thousands_of_unnamed_steps() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = String::from("on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n");
    for _ in 0..10_000 {
        body.push_str("      - run: echo\n");
    }
    write(dir.path(), ".github/workflows/steps.yml", &body);
    let out = hybrid_runner(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn validate_takes_thousands_of_comments_right_after_quotes() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = String::from("on: push\nenv:\n");
    for i in 0..10_000 {
        body.push_str(&format!("  K{i}: \"x\"#c\n"));
    }
    body.push_str("jobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo\n");
    write(dir.path(), ".github/workflows/comments.yml", &body);
    let out = hybrid_runner(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

/// 5,000 ready jobs: all are run, and only a few at a time hold their contexts (a job
/// waits in the queue until another ends), so the runner's memory is that of a few jobs
/// (a debug build peaked at 193 MiB when all 5,000 built their contexts at once).
#[test]
fn exec_dry_run_takes_thousands_of_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = String::from("on: push\njobs:\n");
    for i in 0..5_000 {
        body.push_str(&format!(
            "  j{i}:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo\n"
        ));
    }
    write(dir.path(), ".github/workflows/jobs.yml", &body);
    let mut command = harness::cli::command();
    command
        .args(["exec", "-n", "--json"])
        .current_dir(dir.path())
        .env_remove("GITHUB_WORKSPACE");
    let (out, peak_kib) =
        harness::daemon_process::output_with_peak_rss(command, std::time::Duration::from_millis(5));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let finished = text(&out.stdout).matches("\"job_finished\"").count();
    assert_eq!(finished, 5_000, "{}", text(&out.stderr));
    assert!(
        peak_kib < 96 * 1024,
        "exec -n of 5,000 jobs peaked at {peak_kib} KiB"
    );
}
