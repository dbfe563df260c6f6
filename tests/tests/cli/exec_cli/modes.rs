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
