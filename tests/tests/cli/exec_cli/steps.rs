//! Step semantics: status functions, env precedence, working directories, shells, `GITHUB_*` files, workflow commands, debug, timeouts.

use super::*;

#[test]
fn status_functions_outcome_and_conclusion_with_continue_on_error() {
    let repo = Repo::with(
        "on: push
jobs:
  s:
    runs-on: ubuntu-latest
    steps:
      - id: soft
        continue-on-error: true
        run: exit 3
      - run: echo \"soft=${{ steps.soft.outcome }}/${{ steps.soft.conclusion }} status=${{ job.status }}\"
      - if: failure()
        run: echo failure-after-soft
      - id: hard
        run: exit 5
      - run: echo not-run
      - if: failure()
        run: echo \"failure ran hard=${{ steps.hard.outcome }}/${{ steps.hard.conclusion }}\"
      - if: success()
        run: echo success-not-run
      - if: always()
        run: echo \"always status=${{ job.status }}\"
      - if: cancelled()
        run: echo cancelled-not-run
",
    );
    let run = repo.json(&[]);
    run.assert_code(1);
    assert_eq!(
        run.output("s"),
        lines(&[
            "soft=failure/success status=success",
            "failure ran hard=failure/failure",
            "always status=failure",
        ]),
        "{}",
        run.all()
    );
    assert_eq!(
        run.steps("s"),
        lines(&[
            "soft:failure/success",
            "__run:success/success",
            "__run_2:skipped/skipped",
            "hard:failure/failure",
            "__run_3:skipped/skipped",
            "__run_4:success/success",
            "__run_5:skipped/skipped",
            "__run_6:success/success",
            "__run_7:skipped/skipped",
        ])
    );
    assert_eq!(run.job("s").as_deref(), Some("failure"));
}

#[test]
fn env_precedence_workflow_job_github_env_step() {
    // act's set-env-step-env-override: a step's `env:` wins over GITHUB_ENV, which wins
    // over the job's `env:`.
    let repo = Repo::with(
        "on: push
env:
  A: workflow
  B: workflow
  C: workflow
  D: workflow
jobs:
  e:
    runs-on: ubuntu-latest
    env:
      B: job
      C: job
      D: job
    steps:
      - run: |
          echo \"C=from-file\" >> \"$GITHUB_ENV\"
          echo \"E=from-file\" >> \"$GITHUB_ENV\"
          echo \"before A=$A B=$B C=$C D=$D E=$E\"
      - env:
          D: step
          E: step
        run: echo \"A=$A B=$B C=$C D=$D E=$E\"
      - run: echo \"after C=$C D=$D E=$E ctx=${{ env.C }}/${{ env.E }}\"
      - env:
          C: step
        run: echo \"override C=$C\"
",
    );
    let run = repo.json(&["--env", "A=cli", "--env", "Z=cli"]);
    run.assert_code(0);
    assert_eq!(
        run.output("e"),
        lines(&[
            "before A=workflow B=job C=job D=job E=",
            "A=workflow B=job C=from-file D=step E=step",
            "after C=from-file D=job E=from-file ctx=from-file/from-file",
            "override C=step",
        ]),
        "{}",
        run.all()
    );
}

#[test]
fn working_directory_defaults_and_step_override() {
    let repo = Repo::with(
        "on: push
defaults:
  run:
    working-directory: wf
jobs:
  wd:
    runs-on: ubuntu-latest
    defaults:
      run:
        working-directory: sub
    steps:
      - run: echo \"default=${PWD#$GITHUB_WORKSPACE}\"
      - working-directory: sub/inner
        run: echo \"step=${PWD#$GITHUB_WORKSPACE}\"
      - working-directory: missing
        run: echo never
  wf:
    runs-on: ubuntu-latest
    steps:
      - run: echo \"workflow=${PWD#$GITHUB_WORKSPACE}\"
",
    );
    repo.write("sub/inner/.keep", "");
    repo.write("wf/.keep", "");
    let run = repo.json(&[]);
    run.assert_code(1);
    assert_eq!(
        run.output("wd"),
        lines(&["default=/sub", "step=/sub/inner"]),
        "{}",
        run.all()
    );
    assert_eq!(run.output("wf"), lines(&["workflow=/wf"]));
    let errors = run.annotations("wd");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("error: the working directory ") && errors[0].contains("missing"),
        "{errors:?}"
    );
}

#[test]
fn shells_bash_sh_python_and_custom() {
    let repo = Repo::with(
        "on: push
jobs:
  sh:
    runs-on: ubuntu-latest
    steps:
      - name: default bash without pipefail
        run: |
          false | true
          echo \"default ${0##*.}\"
      - name: bash with pipefail
        id: pipefail
        continue-on-error: true
        shell: bash
        run: |
          false | true
          echo not-reached
      - name: sh
        shell: sh
        run: |
          echo \"sh ${0##*.}\"
      - name: sh -e
        id: sherr
        continue-on-error: true
        shell: sh
        run: |
          false
          echo not-reached
      - name: python
        shell: python
        run: |
          import os, sys
          print('python', sys.version_info[0], os.path.splitext(sys.argv[0])[1])
      - name: perl
        shell: perl {0}
        run: |
          print \"perl $^O\\n\";
      - name: custom bash
        shell: bash -c \"echo custom; source {0}\"
        run: echo sourced
",
    );
    let run = repo.json(&[]);
    run.assert_code(0);
    assert_eq!(
        run.output("sh"),
        lines(&[
            "default sh",
            "sh sh",
            "python 3 .py",
            "perl linux",
            "custom",
            "sourced"
        ]),
        "{}",
        run.all()
    );
    let steps = run.steps("sh");
    assert!(
        steps.contains(&"pipefail:failure/success".to_string()),
        "{steps:?}"
    );
    assert!(
        steps.contains(&"sherr:failure/success".to_string()),
        "{steps:?}"
    );
}

#[test]
fn github_path_output_heredoc_and_step_summary() {
    let repo = Repo::with(
        "on: push
jobs:
  files:
    runs-on: ubuntu-latest
    steps:
      - run: |
          mkdir -p \"$RUNNER_TEMP/bin\"
          printf '#!/bin/sh\\necho tool ran\\n' > \"$RUNNER_TEMP/bin/mytool\"
          chmod +x \"$RUNNER_TEMP/bin/mytool\"
          echo \"$RUNNER_TEMP/bin\" >> \"$GITHUB_PATH\"
      - run: |
          mytool
          case \"$PATH\" in \"$RUNNER_TEMP/bin:\"*) echo first-on-path;; esac
      - id: multi
        run: |
          {
            echo 'text<<EOF_MARK'
            echo 'line one'
            echo 'line two'
            echo 'EOF_MARK'
            echo 'single=value'
          } >> \"$GITHUB_OUTPUT\"
      - env:
          TEXT: ${{ steps.multi.outputs.text }}
        run: |
          printf '[%s]\\n' \"$TEXT\"
          echo \"single=${{ steps.multi.outputs.single }}\"
      - run: |
          echo '### Results' >> \"$GITHUB_STEP_SUMMARY\"
          echo '- all good' >> \"$GITHUB_STEP_SUMMARY\"
      - run: echo '- still good' >> \"$GITHUB_STEP_SUMMARY\"
",
    );
    let run = repo.json(&[]);
    run.assert_code(0);
    assert_eq!(
        run.output("files"),
        lines(&[
            "tool ran",
            "first-on-path",
            "[line one",
            "line two]",
            "single=value"
        ]),
        "{}",
        run.all()
    );
    let summary = run.events_of("summary");
    assert_eq!(summary.len(), 1, "{}", run.all());
    assert_eq!(
        summary[0]["markdown"],
        "### Results\n- all good\n- still good\n"
    );
    // Human output shows the summary after the table of jobs, at the very end.
    let human = repo.exec(&[]);
    human.assert_code(0);
    let table = human.stdout.find("Job    Result").expect("a table");
    let shown = human
        .stdout
        .find("Step summary: files\n### Results\n")
        .expect("the summary");
    assert!(table < shown, "{}", human.all());
    assert!(
        human.stdout.trim_end().ends_with("- still good"),
        "{}",
        human.all()
    );
}

const COMMANDS: &str = "on: push
jobs:
  cmd:
    runs-on: ubuntu-latest
    steps:
      - id: group
        run: |
          echo '::group::My group'
          echo inside
          echo '::endgroup::'
          echo outside
          echo '::error file=a.txt,line=3::msg'
          echo '::debug::a debug line'
      - id: old
        run: echo '::set-output name=legacy::value'
      - run: echo \"legacy=${{ steps.old.outputs.legacy }}\"
      - id: setenv
        continue-on-error: true
        run: |
          echo '::set-env name=REFUSED::yes'
          echo after-set-env
      - run: echo \"refused=[$REFUSED]\"
      - id: allowed
        env:
          ACTIONS_ALLOW_UNSECURE_COMMANDS: 'true'
        run: echo '::set-env name=ALLOWED::yes'
      - run: echo \"allowed=[$ALLOWED]\"
";

#[test]
fn workflow_commands_group_error_set_output_and_set_env() {
    let repo = Repo::with(COMMANDS);
    let run = repo.json(&[]);
    run.assert_code(0);
    assert_eq!(
        run.output("cmd"),
        lines(&[
            "inside",
            "outside",
            "legacy=value",
            "after-set-env",
            "refused=[]",
            "allowed=[yes]"
        ]),
        "{}",
        run.all()
    );
    let groups = run.events_of("group_started");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["title"], "My group");
    let error = run
        .events_of("annotation")
        .into_iter()
        .find(|e| e["annotation"]["message"] == "msg")
        .unwrap();
    assert_eq!(error["annotation"]["level"], "error");
    assert_eq!(error["annotation"]["file"], "a.txt");
    assert_eq!(error["annotation"]["line"], 3);
    let annotations = run.annotations("cmd");
    assert!(
        annotations.contains(
            &"warning: The `set-output` command is deprecated and will be disabled soon. Please upgrade to using Environment Files. For more information see: https://github.blog/changelog/2022-10-11-github-actions-deprecating-save-state-and-set-output-commands/"
                .to_string()
        ),
        "{annotations:?}"
    );
    // GitHub fails the step whose `::set-env` it refuses, after the script ran.
    assert!(
        annotations.contains(
            &"error: Unable to process command '::set-env name=REFUSED::yes' successfully."
                .to_string()
        ),
        "{annotations:?}"
    );
    assert!(
        annotations
            .iter()
            .any(|a| a.starts_with("error: The `set-env` command is disabled.")),
        "{annotations:?}"
    );
    let steps = run.steps("cmd");
    assert!(
        steps.contains(&"setenv:failure/success".to_string()),
        "{steps:?}"
    );
    assert!(
        steps.contains(&"allowed:success/success".to_string()),
        "{steps:?}"
    );

    // The opt-in also works from the runner's own environment, as on GitHub.
    let opted_in = repo.exec_with(&["--json"], &[("ACTIONS_ALLOW_UNSECURE_COMMANDS", "True")]);
    opted_in.assert_code(0);
    assert!(
        opted_in
            .output("cmd")
            .contains(&"refused=[yes]".to_string()),
        "{}",
        opted_in.all()
    );
    assert!(
        opted_in
            .steps("cmd")
            .contains(&"setenv:success/success".to_string())
    );

    // Human output: the group folds under a header, the annotation names file and line.
    let human = repo.exec(&[]);
    human.assert_code(0);
    assert!(human.stdout.contains("▼ My group"), "{}", human.all());
    assert!(
        human.stdout.contains("error: a.txt:3: msg"),
        "{}",
        human.all()
    );
    assert!(!human.stdout.contains("a debug line"), "{}", human.all());
}

#[test]
fn debug_lines_show_only_with_actions_step_debug() {
    let repo = Repo::with(
        "on: push\njobs:\n  d:\n    runs-on: ubuntu-latest\n    steps:\n      - name: debug\n        run: |\n          echo '::debug::a debug line'\n          echo \"runner.debug=[${{ runner.debug }}] RUNNER_DEBUG=[$RUNNER_DEBUG]\"\n",
    );
    let off = repo.exec(&[]);
    off.assert_code(0);
    assert!(!off.stdout.contains("a debug line"), "{}", off.all());
    let off = repo.json(&[]);
    assert!(!off.stdout.contains("a debug line"), "{}", off.all());
    assert!(
        off.stdout.contains("runner.debug=[] RUNNER_DEBUG=[]"),
        "{}",
        off.all()
    );
    for (args, env) in [
        (&[][..], &[("ACTIONS_STEP_DEBUG", "true")][..]),
        (&["--var", "ACTIONS_STEP_DEBUG=true"][..], &[][..]),
        (&["-s", "ACTIONS_STEP_DEBUG=true"][..], &[][..]),
        (&["--env", "ACTIONS_STEP_DEBUG=true"][..], &[][..]),
    ] {
        let on = repo.exec_with(args, env);
        on.assert_code(0);
        assert!(
            on.stdout.contains("  debug: a debug line"),
            "{args:?} {env:?}: {}",
            on.all()
        );
        assert!(
            on.stdout.contains("runner.debug=[1] RUNNER_DEBUG=[1]"),
            "{args:?} {env:?}: {}",
            on.all()
        );
    }
}

#[test]
fn step_and_job_timeouts_stop_sleeping_steps() {
    let repo = Repo::with(
        "on: push
jobs:
  step:
    runs-on: ubuntu-latest
    steps:
      - id: slow
        timeout-minutes: 0.02
        run: sleep 30
      - if: failure()
        run: echo after-step-timeout
  job:
    runs-on: ubuntu-latest
    timeout-minutes: 0.02
    steps:
      - run: sleep 30
      - run: echo not-run
      - if: always()
        run: echo after-job-timeout
",
    );
    let started = Instant::now();
    let run = repo.json(&[]);
    let took = started.elapsed();
    run.assert_code(1);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(run.steps("step")[0], "slow:failure/failure");
    assert_eq!(
        run.annotations("step"),
        lines(&["error: The action 'Run sleep 30' has timed out after 0.02 minutes."]),
        "{}",
        run.all()
    );
    assert_eq!(run.output("step"), lines(&["after-step-timeout"]));
    assert_eq!(run.job("step").as_deref(), Some("failure"));
    assert_eq!(run.output("job"), lines(&["after-job-timeout"]));
    assert_eq!(run.job("job").as_deref(), Some("failure"));
    assert!(
        run.notes("job")
            .iter()
            .any(|n| n.contains("exceeded the maximum execution time")),
        "{}",
        run.all()
    );
}

#[test]
fn background_processes_live_through_the_job_and_are_stopped_after_it() {
    let repo = Repo::with(
        "on: push
jobs:
  bg:
    runs-on: ubuntu-latest
    steps:
      - run: |
          sleep 300 &
          echo $! > bg.pid
      - run: kill -0 $(cat bg.pid) && echo still-running
",
    );
    let run = repo.json(&[]);
    run.assert_code(0);
    assert_eq!(run.output("bg"), lines(&["still-running"]), "{}", run.all());
    assert!(
        run.stdout.contains("Cleaning up orphan processes"),
        "{}",
        run.all()
    );
    let pid = std::fs::read_to_string(repo.path().join("bg.pid")).unwrap();
    // Killed but not yet reaped (a zombie, state Z) counts as stopped.
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    assert!(
        matches!(state, None | Some('Z') | Some('X')),
        "the background sleep {pid} outlived its job: {stat}"
    );
}
