//! Size caps as GitHub's: the step summary (1 MiB a step), the `GITHUB_*` command files
//! and a job's outputs (1 MB), and the files the command line reads whole.

use super::*;

const SUMMARY: &str = r#"on: push
jobs:
  big:
    runs-on: ubuntu-latest
    outputs:
      first: ${{ steps.one.outputs.first }}
      second: ${{ steps.two.outputs.second }}
      third: ${{ steps.three.outputs.third }}
    steps:
      - run: |
          head -c 1100000 /dev/zero | tr '\0' s >> "$GITHUB_STEP_SUMMARY"
          echo "kept-summary-line" >> "$GITHUB_STEP_SUMMARY"
      - run: echo "second-step-summary" >> "$GITHUB_STEP_SUMMARY"
      - run: |
          { printf 'dropped='; head -c 1100000 /dev/zero | tr '\0' o; echo; } >> "$GITHUB_OUTPUT"
      - id: one
        run: |
          { printf 'first='; head -c 400000 /dev/zero | tr '\0' f; echo; } >> "$GITHUB_OUTPUT"
      - id: two
        run: |
          { printf 'second='; head -c 400000 /dev/zero | tr '\0' g; echo; } >> "$GITHUB_OUTPUT"
      - id: three
        run: |
          { printf 'third='; head -c 400000 /dev/zero | tr '\0' h; echo; } >> "$GITHUB_OUTPUT"
"#;

#[test]
fn oversized_summary_outputs_and_job_outputs_are_dropped_with_github_s_messages() {
    let repo = Repo::with(SUMMARY);
    let run = repo.json(&[]);
    run.assert_code(0);
    let annotations: Vec<(String, String)> = run
        .events_of("annotation")
        .iter()
        .map(|e| {
            let text = |k: &str| e["annotation"][k].as_str().unwrap_or_default().to_string();
            (text("level"), text("message"))
        })
        .collect();
    assert!(
        annotations.iter().any(|(level, message)| level == "error"
            && message.starts_with(
                "$GITHUB_STEP_SUMMARY upload aborted, supports content up to a size of 1024k, got 1074k."
            )),
        "{annotations:?}"
    );
    assert!(
        annotations.iter().any(|(level, message)| level == "warning"
            && message.starts_with("$GITHUB_OUTPUT dropped unread")),
        "{annotations:?}"
    );
    // The oversized summary is left out whole; the next step's is kept.
    let summary = run.events_of("summary");
    let markdown = summary[0]["markdown"].as_str().unwrap();
    assert!(!markdown.contains("kept-summary-line") && !markdown.contains("sss"));
    assert!(markdown.contains("second-step-summary"));
    // Two of 400 kB fit the job's 1 MB of outputs, a third does not. (Each stays under the
    // 1 MiB an expression may hold, 2 bytes a character: 600 kB would fail there first.)
    let finished = run.events_of("job_finished");
    let outputs = finished[0]["outputs"].as_array().unwrap();
    let names: Vec<&str> = outputs.iter().filter_map(|o| o[0].as_str()).collect();
    assert_eq!(names, ["first", "second"], "{}", run.stderr);
    assert!(
        run.stdout
            .contains("warning: skipping output 'third': 400000 bytes would take the job's outputs past 1000000 bytes"),
        "{}",
        run.stderr
    );
}

#[test]
fn flag_files_that_are_not_regular_or_too_large_are_refused() {
    let repo = Repo::with(
        "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n",
    );
    let big = repo.path().join("big.env");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(17 << 20)
        .unwrap();
    let big = big.to_str().unwrap();
    let folder = repo.path().join(".github").to_str().unwrap().to_string();
    for (flag, file, why) in [
        ("--secret-file", big, "larger than 16 MiB"),
        ("--env-file", big, "larger than 16 MiB"),
        ("-e", big, "larger than 16 MiB"),
        ("--secret-file", "/dev/zero", "not a regular file"),
        ("--env-file", folder.as_str(), "not a regular file"),
        ("-e", "/dev/zero", "not a regular file"),
    ] {
        let run = repo.exec(&[flag, file]);
        run.assert_code(2);
        assert!(
            run.stderr.contains(&format!("{flag} file {file} ")) && run.stderr.contains(why),
            "{flag} {file}: {}",
            run.all()
        );
    }
    let mut expr = harness::cli::command();
    let out = expr
        .args(["expr", "--contexts", "/dev/zero", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--contexts file /dev/zero is not a regular file"),
        "{stderr}"
    );
}
